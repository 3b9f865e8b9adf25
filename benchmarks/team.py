"""The team store (DuckLake + PostgreSQL) next to the local file store, measured in the same run.

    python benchmarks/team.py [--quick]

Needs the team extra (pip install -e '.[team]') and PostgreSQL's server binaries
(apt-get install postgresql); starts a throwaway cluster on 127.0.0.1 like the tests.
Prints: runs/s with 1, 4 and 8 writer processes (each run: 10 params, 5 metrics, a
20-point curve), on the team store with one shared spool per machine and with one
machine per writer, and on a local file; nbtrack.runs() over 100,000 runs; curves
over 10 million logged points (500 runs x 20,000 steps).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbtrack  # noqa: E402
from nbtrack.store import Store, curves, schema  # noqa: E402
from pgcluster import Cluster  # noqa: E402

WRITER = textwrap.dedent("""
    import sys, nbtrack
    store, data, n, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    nbtrack.connect(store, data_path=data or None)
    for i in range(n):
        with nbtrack.run("w", params={f"p{k}": i * k for k in range(10)} | {"writer": w}) as r:
            for s in range(20):
                r.log(loss=1 / (s + 1), step=s)
            r.log(**{f"m{k}": i / (k + 1) for k in range(5)})
    """)


def writers(store: str, data: str, n_writers: int, n_runs: int, tmp: Path, own_machines: bool) -> float:
    """Runs per second, start of the first writer to the last run landed in the store."""
    env = {**os.environ, "NBTRACK_SYSTEM_METRICS": "0"}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store, data, str(n_runs), str(w)], cwd=tmp,
                              env={**env, "XDG_CACHE_HOME": str(tmp / f"machine{w if own_machines else 0}")})
             for w in range(n_writers)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("a writer failed")
    elapsed = time.perf_counter() - t0
    got = len(nbtrack.runs(store=Store(store)))
    if got != n_writers * n_runs:
        raise SystemExit(f"expected {n_writers * n_runs} runs, found {got}")
    return n_writers * n_runs / elapsed


def fill_local(path: Path, n_runs: int, curve_runs: int, steps: int) -> list[str]:
    """A file store with n_runs x (15 params, 15 metrics) and curve_runs x steps logged points, made in SQL."""
    store = Store(path)
    store.sync()   # creates and migrates it
    con = duckdb.connect(str(path))
    con.execute("""
        INSERT INTO runs (run_id, seq, experiment, name, status, kind, started_at, ended_at, duration_s, host, "user", tags)
        SELECT printf('%032x', i), 1, 'bench', 'r' || (i % 50), 'finished', 'script',
               TIMESTAMPTZ '2026-01-01' + i * INTERVAL 1 SECOND, TIMESTAMPTZ '2026-01-01' + i * INTERVAL 1 SECOND,
               1.0, 'host' || (i % 4), 'user' || (i % 8), []::VARCHAR[]
        FROM range(?) t(i)""", [n_runs])
    con.execute("""
        INSERT INTO params (run_id, key, kind, vtype, value_json, value_num)
        SELECT printf('%032x', i), 'p' || k, 'given', 'int', CAST(i * k % 97 AS VARCHAR), i * k % 97
        FROM range(?) t(i), range(15) u(k)""", [n_runs])
    con.execute("""
        INSERT INTO metrics (run_id, key, value, step, source)
        SELECT printf('%032x', i), 'm' || k, i / (k + 1), NULL, 'cell' FROM range(?) t(i), range(15) u(k)""",
                [n_runs])
    con.execute("INSERT INTO metric_series BY NAME " + schema.series_sql("""(
        SELECT printf('%032x', i) AS run_id, 'loss' AS key, s AS step, sin(s / 300.0) + i / ? AS value, 0 AS chunk,
               NULL::BIGINT AS started_us FROM range(?) t(i), range(?) u(s))"""), [curve_runs, curve_runs, steps])
    con.execute("INSERT INTO metric_curves " + curves.stored_curves_sql(
        "SELECT run_id, key, step, value FROM metric_history"))
    con.close()
    return [f"{i:032x}" for i in range(curve_runs)]


def copy_to_team(local: Path, team: Store) -> float:
    """Bulk copy every table (a benchmark's setup, not how runs normally arrive); seconds taken."""
    t0 = time.perf_counter()
    with team.connect() as con:
        con.execute(f"ATTACH '{local}' AS src (READ_ONLY)")
        for table in ("runs", "params", "metrics", "metric_series", "metric_curves"):
            con.execute(f'INSERT INTO team."{table}" BY NAME SELECT * FROM src."{table}"')
        con.execute("DETACH src")
    return time.perf_counter() - t0


def timed(fn, repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    q = parser.parse_args().quick
    print(f"nbtrack {nbtrack.__version__}, duckdb {duckdb.__version__}, {os.cpu_count()} cores\n")
    cluster = Cluster()
    tmp = Path(tempfile.mkdtemp(prefix="nbtrack-bench-"))
    try:
        n_runs = 20 if q else 100
        print(f"write throughput, {n_runs} runs per writer (10 params, 5 metrics, 20-step curve each), runs/s:")
        for n in (1, 4, 8):
            local_url, team_url = str(tmp / f"local{n}" / "runs.duckdb"), cluster.url(cluster.new_database())
            local = writers(local_url, "", n, n_runs, tmp, False)
            shared = writers(team_url, str(tmp / f"lake{n}"), n, n_runs, tmp, False)
            spread = writers(cluster.url(cluster.new_database()), str(tmp / f"lakeb{n}"), n, n_runs, tmp, True)
            print(f"  {n} writer(s): local file {local:6.1f}   team, one machine {shared:6.1f}   "
                  f"team, one machine per writer {spread:6.1f}")

        # runs that arrived one commit at a time sit inlined in the catalog until `nbtrack maintain`
        lake, file = Store(team_url), Store(local_url)
        inlined = timed(lambda: nbtrack.runs(store=lake))
        maintain_s = time.perf_counter()
        lake.maintain()
        maintain_s = time.perf_counter() - maintain_s
        flushed = timed(lambda: nbtrack.runs(store=lake))
        print(f"nbtrack.runs() over those {8 * n_runs} runs: local file {timed(lambda: nbtrack.runs(store=file)):.0f} "
              f"ms; team store {inlined:.0f} ms inlined in the catalog, {flushed:.0f} ms after nbtrack maintain "
              f"({maintain_s:.1f} s)")

        big, curve_runs, steps = (10_000, 50, 2_000) if q else (100_000, 500, 20_000)
        local_path = tmp / "big" / "runs.duckdb"
        ids = fill_local(local_path, big, curve_runs, steps)
        team = Store(cluster.url(cluster.new_database()), data_path=tmp / "biglake")
        load_s = copy_to_team(local_path, team)
        local = Store(local_path)
        r_local = timed(lambda: nbtrack.runs(store=local))
        r_team = timed(lambda: nbtrack.runs(store=team))
        print(f"\nnbtrack.runs() over {big:,} runs x 30 params/metrics: local file {r_local:.0f} ms, "
              f"team store {r_team:.0f} ms (median of 5; bulk load into the lake {load_s:.1f} s)")

        def read_curves(store: Store) -> None:
            with store.connect(read_only=True) as con:
                curves.curves(con, ids)

        c_local, c_team = timed(lambda: read_curves(local)), timed(lambda: read_curves(team))
        print(f"curves of {curve_runs} runs x {steps:,} steps ({curve_runs * steps / 1e6:g} M points, "
              f"downsampled at import): local file {c_local:.0f} ms, team store {c_team:.0f} ms (median of 5)")
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
