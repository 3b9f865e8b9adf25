"""nbtrack at scale: a million runs and a billion points, each figure beside raw DuckDB on the same file.

    python benchmarks/scale.py [--runs 100000 1000000] [--points 1000000000] [--dir DIR] [--only NAME ...]

The stores are made in bulk (bulk.py: the same tables nbtrack's import path writes, checked by
tests/test_scale.py) and kept in DIR between invocations. Each figure is measured in a fresh
process, which reports its own peak RSS: no step may hold the whole store in Python.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bulk  # noqa: E402

WHERE = "metrics.m0 < 0.001"   # 1 run in 1,000


def _ms(fn: Callable[[], Any], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e3


class _raw:
    """Raw DuckDB on the same file, as nbtrack reads it: connect, query, close (two connections to one
    file with different settings cannot be open at once in one process)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def df(self, sql: str, args: Any = None) -> Any:
        import duckdb

        con = duckdb.connect(self.path, read_only=True)
        try:
            return con.execute(sql, args or []).df()
        finally:
            con.close()

    def one(self, sql: str) -> Any:
        return self.df(sql).iloc[0, 0]


def _wide_sql(where: str = "") -> str:
    """Raw DuckDB's wide SELECT of the same runs: the run columns nbtrack shows, a column per param
    (its stored text) and per metric."""
    return f"""
        WITH sel AS (SELECT run_id, started_at FROM runs r {where})
        SELECT r.run_id, r.experiment, r.name, r.status, r.started_at, r.ended_at, r.duration_s, r.tags,
               r.sweep_id, r."user", r.host, r.label, r.starred, r.note, p.* EXCLUDE (run_id), m.* EXCLUDE (run_id)
        FROM runs r JOIN sel USING (run_id)
        LEFT JOIN (PIVOT (SELECT run_id, key, value_json FROM params WHERE run_id IN (SELECT run_id FROM sel))
                   ON key USING first(value_json) GROUP BY run_id) p USING (run_id)
        LEFT JOIN (PIVOT (SELECT run_id, key, value FROM metrics WHERE run_id IN (SELECT run_id FROM sel))
                   ON key USING first(value) GROUP BY run_id) m USING (run_id)
        ORDER BY r.started_at, r.run_id"""


# -- figures: each runs in its own process and returns what it measured --------------------------------

def fig_runs(store: str) -> dict[str, Any]:
    import nbtrack

    con = _raw(store)
    frame = nbtrack.runs(store=store)
    out = {"rows": len(frame), "columns": len(frame.columns),
           "nbtrack_ms": _ms(lambda: nbtrack.runs(store=store), 3),
           "raw_ms": _ms(lambda: con.df(_wide_sql()), 3)}
    out["ratio"] = out["nbtrack_ms"] / out["raw_ms"]
    return out


def fig_where(store: str) -> dict[str, Any]:
    import nbtrack

    con = _raw(store)
    raw_where = "WHERE run_id IN (SELECT run_id FROM metrics WHERE key = 'm0' AND value < 0.001)"
    n = len(nbtrack.runs(where=WHERE, store=store))
    assert n == len(con.df(_wide_sql(raw_where)))
    out = {"rows": n, "nbtrack_ms": _ms(lambda: nbtrack.runs(where=WHERE, store=store)),
           "raw_ms": _ms(lambda: con.df(_wide_sql(raw_where)))}
    out["ratio"] = out["nbtrack_ms"] / out["raw_ms"]
    return out


def fig_get(store: str) -> dict[str, Any]:
    import nbtrack

    con = _raw(store)
    ids = [bulk.run_id(i) for i in (0, 7, 12345 % _count(con), _count(con) - 1)]

    def get_all() -> None:
        for i in ids:
            nbtrack.get(i, store=store)

    def raw_all() -> None:
        for i in ids:
            con.df("SELECT * FROM runs r LEFT JOIN params p USING (run_id) WHERE r.run_id = ?", [i])
    return {"nbtrack_ms": _ms(get_all) / len(ids), "raw_run_and_params_ms": _ms(raw_all) / len(ids)}


def _count(con: Any) -> int:
    return int(con.one("SELECT count(*) FROM runs"))


def fig_history(store: str) -> dict[str, Any]:
    import nbtrack

    con = _raw(store)
    out: dict[str, Any] = {"points": int(con.one("SELECT count(*) FROM metric_history"))}
    # a long run (millions of points) and a short one among the many
    for label, rid in (("long", bulk.run_id(0)), ("short", bulk.run_id(_count(con) // 2))):
        run = nbtrack.get(rid, store=store)
        n = len(run.history())
        out[label] = {"rows": n, "nbtrack_ms": _ms(run.history), "raw_ms": _ms(lambda: con.df(
            "SELECT step, key, value FROM metric_history WHERE run_id = ? ORDER BY key, step", [rid]))}
    return out


def fig_curves(store: str) -> dict[str, Any]:
    from nbtrack.store import Store
    from nbtrack.store import curves

    con = _raw(store)
    # runs 10..109: in every store of the plan they logged two curves of 2,000 steps (runs1m: 90 of them)
    ids = [bulk.run_id(i) for i in range(10, 110)]
    st = Store(store)
    with st.connect(read_only=True) as c:
        rows = len(curves.curves(c, ids))

        def ours() -> None:
            curves.curves(c, ids)
        t = _ms(ours)
    raw = _ms(lambda: con.df("SELECT run_id, key, step, value FROM metric_history "
                             "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY run_id, key, step", [ids]))
    return {"runs": 100, "rows": rows, "nbtrack_ms": t, "raw_all_points_ms": raw}


def fig_overhead(store: str) -> dict[str, Any]:
    """%%track on a trivial cell against the same cell untracked (bench.py's measure), recording into
    this store (a scratch copy); then the time to import what the cells left."""
    import bench
    import nbtrack
    from nbtrack.recorder.sync import syncer

    out = bench.bench_overhead(Path(store).parent, 300, store=Path(store))
    t = time.perf_counter()
    syncer.flush()
    nbtrack.runs(where="name = 'nothing'", store=store)   # imports what is left
    return {**out, "last_import_s": time.perf_counter() - t}


def fig_import(store: str) -> dict[str, Any]:
    """A run of 10^7 points (10 metrics x 10^6 steps) into this store (a scratch copy): the spool is
    written with the store read-only, then imported in one sync; against one Arrow insert of the same
    points into a plain DuckDB table."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    import nbtrack
    from nbtrack.recorder.sync import syncer
    from nbtrack.store import Store

    steps, names = 1_000_000, [f"k{i}" for i in range(10)]
    values = (1.0 / (1.0 + np.arange(steps) * 1e-4)).astype(np.float32).astype(float).tolist()
    with nbtrack.run("big", store=Store(store, read_only=True)) as run:
        for step, v in enumerate(values):
            run.log(step=step, **dict.fromkeys(names, v))
    syncer.flush()
    before = Path(store).stat().st_size
    t = time.perf_counter()
    Store(store).sync()
    took = time.perf_counter() - t
    points = steps * len(names)
    floor = Path(store).with_name("floor.duckdb")
    floor.unlink(missing_ok=True)
    arrow = pa.table({"run_id": pa.array(["r"] * points).dictionary_encode(), "key": np.repeat(names, steps),
                      "step": np.tile(np.arange(steps), len(names)), "value": np.tile(values, len(names))})
    t = time.perf_counter()
    con = duckdb.connect(str(floor))
    con.execute("SET enable_progress_bar = false")
    con.register("arrow", arrow)
    con.execute("CREATE TABLE h AS SELECT * FROM arrow")
    con.close()
    floor_s = time.perf_counter() - t
    floor.unlink()
    got = nbtrack.get(run.run_id, store=store)
    assert got.history()["key"].isin(names).sum() == points   # (and the system sampler's sys.* points)
    return {"points": points, "import_s": took, "arrow_insert_s": floor_s,
            "grew_bytes_per_point": (Path(store).stat().st_size - before) / points}


def fig_panel(store: str) -> dict[str, Any]:
    """The compare panel on the store, kernel side: making it (the first table window, the binned
    scatter, the sample), then a scroll, a sort, a filter and a brush as the page asks for them, and
    the size of the state the page gets (the bundle aside). Raw DuckDB baseline: the wide SELECT of
    one window of 200 rows in the same order (what a page of the table is)."""
    import json

    from ipywidgets.widgets.widget import _remove_buffers

    import nbtrack

    con = _raw(store)
    n = _count(con)
    t = time.perf_counter()
    import nbtrack.widgets.compare  # noqa: F401  (Altair and the widget: once per kernel, counted apart)
    out: dict[str, Any] = {"runs": n, "import_ms": (time.perf_counter() - t) * 1e3}
    t = time.perf_counter()
    panel = nbtrack.compare(store=store)
    out.update(paged=panel.paged, first_table_ms=(time.perf_counter() - t) * 1e3)
    panel._charts.result()
    out["charts_ms"] = (time.perf_counter() - t) * 1e3

    def ask(**message: Any) -> None:
        panel._handle_custom_msg(message, [])
        if message["type"] == "view":   # answered on the panel's own thread
            panel._views.last.result()

    sent: list[float] = []   # when each table went to the page
    panel.observe(lambda change: sent.append(time.perf_counter()), names=["table"])

    def answered(messages: list[dict[str, Any]], name: str) -> None:
        """Median ms until the page's rows are sent (``name``: the first rows, which a sort or filter
        sends before the rest; ``name``_window: the whole window); the charts a filter redraws (on their
        own thread) are waited for between the messages, outside the timing."""
        first, whole = [], []
        for message in messages:
            sent.clear()
            t = time.perf_counter()
            ask(**message, limit=200)
            whole.append((time.perf_counter() - t) * 1e3)
            first.append((sent[0] - t) * 1e3)
            panel._charts.result()
        out[f"{name}_ms"], out[f"{name}_window_ms"] = statistics.median(first), statistics.median(whole)

    answered([{"type": "view", "offset": n // k} for k in (2, 3, 4)], "scroll")
    answered([{"type": "view", "sort": f"metrics.m{k}", "desc": True, "offset": 0} for k in (3, 4, 5)], "sort")
    answered([{"type": "view", "sort": "metrics.m5", "desc": desc, "offset": 0} for desc in (False, True, False)],
             "sort_flip")   # a second click on the header: the keys read for the first, turned round
    answered([{"type": "view", "filter": f"params.i0 < {k} and metrics.m1 > 0.5"} for k in (10, 11, 12)], "filter")
    out["filtered_rows"] = panel.table["total"]
    ask(type="view", filter="", sort=None)
    panel._charts.result()
    x, y = panel.x, panel.y
    out["brush_ms"] = _ms(lambda: ask(type="brush", ranges={x.replace(".", "\\."): [0.1, 0.2],
                                                            y.replace(".", "\\."): [0, 1e9]}), 3)
    out["brushed_runs"] = len(panel.selected)
    state, _, buffers = _remove_buffers(panel.get_state())
    data = {k: v for k, v in state.items() if k not in ("_esm", "_css", "_vega")}
    out["state_bytes"] = len(json.dumps(data)) + sum(len(b) for b in buffers)
    window = " ORDER BY r.started_at, r.run_id LIMIT 200 OFFSET " + str(n // 2)
    out["raw_window_ms"] = _ms(lambda: con.df(_wide_sql().replace(" ORDER BY r.started_at, r.run_id", window)), 3)
    panel.close()
    return out


FIGURES = {"runs": fig_runs, "where": fig_where, "get": fig_get, "history": fig_history, "curves": fig_curves,
           "overhead": fig_overhead, "import": fig_import, "panel": fig_panel}
SCRATCH = {"overhead", "import"}   # these write: they get a copy of the store


def _peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage: Linux carries ru_maxrss over exec, so a child would
    report the parent's peak (12 GB while it built a store)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(name: str, store: str) -> None:
    out = FIGURES[name](store)
    out["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(_tidy(out)))


def measure(name: str, store: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", name, str(store)], capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def store_for(root: Path, n_runs: int, curves: list[tuple[int, int]], mixed: bool = False) -> Path:
    import filelock

    tag = f"{n_runs}-{'-'.join(f'{c}x{s}' for c, s in curves) or 'flat'}{'-mixed' if mixed else ''}"
    path = root / f"runs-{tag}.duckdb"
    # one builder at a time: a second invocation removed a store another was still writing
    with filelock.FileLock(str(root / f"{path.name}.building")):
        return _build_once(root, path, n_runs, curves, mixed)


def _build_once(root: Path, path: Path, n_runs: int, curves: list[tuple[int, int]], mixed: bool) -> Path:
    if not (root / f"{path.name}.done").exists():
        for p in (path, path.with_name(path.name + ".wal")):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        bulk.build(path, n_runs, curves, mixed)
        (root / f"{path.name}.done").write_text(f"{time.perf_counter() - t:.1f}")
        print(f"  built {path.name} in {time.perf_counter() - t:.0f} s ({path.stat().st_size / 1e9:.2f} GB)",
              flush=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "nbtrack-scale")
    ap.add_argument("--only", nargs="+", help="store names (runs100k, mixed100k, runs1m, points1g) or figures")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(*args.child)
    args.dir.mkdir(parents=True, exist_ok=True)
    plan = {   # store: (runs, curves (how many runs, steps), mixed types, figures)
        "runs100k": (100_000, [(100, 2000)], False, ["runs", "where", "get", "panel"]),
        "mixed100k": (100_000, [(100, 2000)], True, ["runs"]),
        "runs1m": (1_000_000, [(100, 2000)], False, ["runs", "where", "get", "history", "curves", "overhead",
                                                     "panel"]),
        # 10^9 points: a few runs with millions of steps, many with thousands
        "points1g": (1_000_000, [(10, 5_000_000), (225_000, 2000)], False,
                     ["get", "history", "curves", "import", "overhead"]),
    }
    only = set(args.only or ())
    sizes = {}
    for name, (n, curves, mixed, figures) in plan.items():
        if only and name not in only and not only & set(figures):
            continue
        store = store_for(args.dir, n, curves, mixed)
        sizes[name] = store.stat().st_size
        for fig in figures:
            if only and fig not in only and name not in only:
                continue
            path = store
            if fig in SCRATCH:
                path = args.dir / "scratch.duckdb"
                shutil.copyfile(store, path)
            print(f"{name:<10} {fig:<9} {json.dumps(measure(fig, path))}", flush=True)
            if fig in SCRATCH:   # the copy, and the spool and lock nbtrack kept beside it
                for leftover in (path, path.with_name(path.name + ".lock"), path.with_name(path.name + ".wal")):
                    leftover.unlink(missing_ok=True)
                shutil.rmtree(path.with_name(path.name + ".spool"), ignore_errors=True)
    if "points1g" in sizes and "runs1m" in sizes:
        points = 10 * 2 * 5_000_000 + 225_000 * 2 * 2000 - 100 * 2 * 2000
        print(f"bytes on disk per point, curves included: {(sizes['points1g'] - sizes['runs1m']) / points:.2f}")


def _tidy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _tidy(v) for k, v in x.items()}
    return float(f"{x:.3g}") if isinstance(x, float) else x


if __name__ == "__main__":
    main()
