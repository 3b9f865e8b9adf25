"""nbtrack's speed, each figure against a baseline measured in the same run.

    python benchmarks/bench.py [--quick]

Prints: %%track overhead on a trivial cell vs the same cell untracked, in an IPython
shell and in a real kernel through jupyter_client; nbtrack.log
throughput with the flush to the store included, vs one Arrow insert of the same
points into DuckDB (the floor); nbtrack.runs() over 10,000 runs with 30
params/metrics each; bytes on disk per logged point (noisy values: the worst case) vs a plain DuckDB
table of the same points; Run.history() vs the same query in raw DuckDB; the compare panel's data over
10,000 runs x 50 params/metrics vs nbtrack.runs() alone; curves of 500 runs x
20,000 steps from the stored downsampled curves vs downsampling at query time;
runs() over 10,000 runs holding 10,000 distinct params, capped and whole, vs a raw
read; import nbtrack and %load_ext in fresh interpreters vs import pandas; the
fingerprint speed in GB/s of numpy, pandas, polars, Arrow, bytes and str vs one
numpy sum over the same bytes.
The browser side (nbtrack.compare() to painted, 10,000 runs) is printed by
tests/test_browser.py; %%track --check on a cell with 100 outputs vs the cell
untracked; a 100-combination --grid vs the cell run 100 times untracked; the
CPU the system-metrics sampler costs.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

import nbtrack
from nbtrack.recorder.capture import fingerprint
from nbtrack.recorder.run import ActiveRun
from nbtrack.recorder.sync import syncer
from nbtrack.store import Store
from nbtrack.store.queries import BASE_COLUMNS


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def bench_overhead(root: Path, n: int, store: Path | None = None) -> dict[str, float]:
    """%%track on a trivial cell in an IPython shell vs the same cell untracked (``store``: record into
    that one, e.g. a big store of scale.py)."""
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_cell("%load_ext nbtrack")
    nbtrack.connect(store or root / "overhead.duckdb")
    cell = "x = 1\ny = x + 1"
    plain, tracked = [], []
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(20):  # warm both paths (first run scans package metadata, git)
            ip.run_cell(cell)
            ip.run_cell("%%track\n" + cell)
        for _ in range(n):
            t = time.perf_counter()
            ip.run_cell(cell)
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            ip.run_cell("%%track\n" + cell)
            tracked.append(time.perf_counter() - t)
    syncer.flush()
    return {"untracked_ms": _median_ms(plain), "tracked_ms": _median_ms(tracked),
            "added_ms": _median_ms(tracked) - _median_ms(plain)}


def bench_kernel(root: Path, n: int) -> dict[str, float]:
    """A real kernel through jupyter_client: execute_request to the reply and the kernel idle, a trivial
    cell untracked and tracked (with and without the summary line), interleaved."""
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(root))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kc.execute_interactive("%load_ext nbtrack", timeout=60)
        cell = "x = 1\ny = x + 1"

        def timed(code: str) -> float:
            t = time.perf_counter()
            kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
            return time.perf_counter() - t

        variants = {"untracked": cell, "tracked": "%%track\n" + cell}
        for _ in range(20):   # warm both paths
            for code in variants.values():
                timed(code)
        samples: dict[str, list[float]] = {k: [] for k in (*variants, "no_summary")}
        for _ in range(n):
            for key, code in variants.items():
                samples[key].append(timed(code))
        timed("%nbtrack summary off")
        for _ in range(n):
            samples["no_summary"].append(timed("%%track\n" + cell))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    plain = _median_ms(samples["untracked"])
    return {"untracked_ms": plain, "added_ms": _median_ms(samples["tracked"]) - plain,
            "added_no_summary_ms": _median_ms(samples["no_summary"]) - plain}


def bench_log(root: Path, n: int, per_call: int) -> dict[str, float]:
    """``nbtrack.log`` of noisy values (a loss with noise: what compresses worst), flush and import
    included, against one Arrow insert of the same points into DuckDB; and the bytes each point takes
    on disk, against the same points in a plain DuckDB table."""
    store = Store(root / f"log{per_call}.duckdb")
    store.sync()
    names = [f"m{i}" for i in range(per_call)]
    calls = n // per_call
    noisy = (1.0 / (1.0 + np.arange(calls) * 1e-4) + np.random.default_rng(0).normal(0, 0.01, calls)).tolist()
    log = nbtrack.log  # what a user calls inside a tracked cell
    with nbtrack.run("log", store=store):
        t0 = time.perf_counter()
        if per_call == 1:
            for v in noisy:
                log(loss=v)
        else:
            for v in noisy:
                log(**dict.fromkeys(names, v))
        t_log = time.perf_counter() - t0
    syncer.flush()
    t_spool = time.perf_counter() - t0
    store.sync()
    t_total = time.perf_counter() - t0
    points = calls * per_call

    # the floor: the same points as one Arrow table, inserted into DuckDB in one statement
    floor_db = root / f"floor{per_call}.duckdb"
    t0 = time.perf_counter()
    # key by key, as a run's points are stored (its curves read back in order)
    keys = np.repeat(np.array(names if per_call > 1 else ["loss"]), calls)
    points_table = pa.table({"run_id": pa.array(["r"] * points).dictionary_encode(), "key": pa.array(keys),
                             "step": np.tile(np.arange(calls), per_call), "value": np.tile(np.array(noisy), per_call)})
    con = duckdb.connect(str(floor_db))
    con.execute("CREATE TABLE h (run_id VARCHAR, key VARCHAR, step BIGINT, value DOUBLE)")
    con.register("points_table", points_table)
    con.execute("INSERT INTO h SELECT * FROM points_table")
    con.execute("CHECKPOINT")
    con.close()
    t_floor = time.perf_counter() - t0

    with store.connect() as con:
        con.execute("CHECKPOINT")
    size = store.path.stat().st_size
    empty = root / "empty.duckdb"
    Store(empty).sync()
    with Store(empty).connect() as con:
        con.execute("CHECKPOINT")
    plain_empty = root / f"plain_empty{per_call}.duckdb"
    con = duckdb.connect(str(plain_empty))
    con.execute("CREATE TABLE h (run_id VARCHAR, key VARCHAR, step BIGINT, value DOUBLE)")
    con.execute("CHECKPOINT")
    con.close()
    return {"points": points, "log_only_per_s": points / t_log, "with_flush_per_s": points / t_total,
            "spool_per_s": points / t_spool, "floor_per_s": points / t_floor,
            "ratio_to_floor": t_total / t_floor, "bytes_per_point": (size - empty.stat().st_size) / points,
            "plain_bytes_per_point": (floor_db.stat().st_size - plain_empty.stat().st_size) / points}


def bench_history(root: Path, n_runs: int, steps: int) -> dict[str, float]:
    """``Run.history()`` of one run of 3 curves x ``steps`` points in a store of ``n_runs`` such runs,
    against the same query in raw DuckDB (connect, query, DataFrame)."""
    store = Store(root / "history.duckdb")
    for r in range(n_runs):
        with nbtrack.run(f"h{r}", store=store) as run:
            for i in range(steps):
                run.log(step=i, loss=1 / (i + 1), acc=i / steps, lr=0.1)
    got = nbtrack.get(run.run_id, store=store)
    assert len(got.history()) == 3 * steps

    def raw() -> None:
        con = duckdb.connect(str(store.path), read_only=True)
        con.execute("SELECT step, key, value FROM metric_history WHERE run_id = ? ORDER BY key, step",
                    [run.run_id]).df()
        con.close()

    samples: dict[str, list[float]] = {"history": [], "raw": []}
    for _ in range(7):
        for name, fn in (("history", got.history), ("raw", raw)):
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {"points": 3 * steps, "history_ms": _median_ms(samples["history"]), "raw_ms": _median_ms(samples["raw"])}


def bench_runs(root: Path, n_runs: int) -> dict[str, float]:
    store = Store(root / "many.duckdb")
    store.sync()
    for i in range(n_runs):
        run = ActiveRun(store, name=f"r{i % 50}", experiment="bench", kind="script")
        for k in range(15):
            run.params[f"p{k}"] = (i * k % 97, "given")
        run.metrics.update({f"m{k}": (i / (k + 1), None, "cell") for k in range(15)})
        run.ended_at, run.status = run.started_at, "finished"
        run._write()
    t0 = time.perf_counter()
    store.sync()
    t_import = time.perf_counter() - t0
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        frame = nbtrack.runs(store=store)
        samples.append(time.perf_counter() - t0)
    assert len(frame) == n_runs and frame.shape[1] == len(BASE_COLUMNS) + 30

    # baseline: the same query result read straight from DuckDB with no pivot
    con = duckdb.connect(str(store.path), read_only=True)
    t0 = time.perf_counter()
    con.execute("SELECT * FROM params").df()
    con.execute("SELECT * FROM metrics").df()
    t_raw = time.perf_counter() - t0
    con.close()
    return {"runs": n_runs, "runs_ms": _median_ms(samples), "raw_read_ms": t_raw * 1e3,
            "import_ms": t_import * 1e3}


SCRIPT = """
import json, os, sys, time
import nbtrack

{filler}

def durable(path, record):   # the floor: the same record as one JSON file, written to survive a crash
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

n, store, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
tracked, floor = [], []
for i in range(n):
    params = {{f"p{{k}}": i * k for k in range(10)}}
    metrics = {{f"m{{k}}": i / (k + 1) for k in range(5)}}
    t = time.perf_counter()
    with nbtrack.run("bench", params=params, store=store) as run:
        run.log(step=0, **metrics)
    tracked.append(time.perf_counter() - t)
    t = time.perf_counter()
    durable(os.path.join(os.path.dirname(out), "floor.json"), {{"params": params, "metrics": metrics}})
    floor.append(time.perf_counter() - t)
t = time.perf_counter()
nbtrack.runs(store=store)   # until every run is imported
json.dump({{"tracked": tracked, "floor": floor, "drain": time.perf_counter() - t}}, open(out, "w"))
"""


def bench_script(root: Path, n: int) -> dict[str, float]:
    """``with nbtrack.run(...)`` in a loop of a 500-line script: 10 params and 5 metrics per run, against
    writing the same record durably as one JSON file, in the same process."""
    import json
    import subprocess

    filler = "\n".join(f"def helper_{i}(x):\n    return x + {i}\n" for i in range(160))
    script = root / "script_bench.py"
    script.write_text(SCRIPT.format(filler=filler))
    out = root / "script_bench.json"
    subprocess.run([sys.executable, str(script), str(n), str(root / "script.duckdb"), str(out)], check=True,
                   cwd=root)
    data = json.loads(out.read_text())
    tracked, floor = data["tracked"], data["floor"]
    tenth = max(n // 10, 1)
    return {"n": n, "lines": len(script.read_text().splitlines()), "tracked_ms": _median_ms(tracked),
            "first_ms": _median_ms(tracked[:tenth]), "last_ms": _median_ms(tracked[-tenth:]),
            "floor_ms": _median_ms(floor), "drain_s": data["drain"]}


def bench_check(root: Path, n: int) -> dict[str, float]:
    """A cell binding 100 outputs (arrays and metrics): untracked, tracked, and tracked with --check
    (reference lookup before, import and comparison after)."""
    from IPython import get_ipython

    ip = get_ipython()
    nbtrack.connect(root / "check.duckdb")
    ip.run_cell("import numpy as np")
    body = "\n".join(f"a{i} = np.full(1000, {i}.0)\nm{i} = float(a{i}[0])" for i in range(50))
    plain, tracked, checked = [], [], []
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for _ in range(3):
            ip.run_cell("%%track wide --check\n" + body)
        for _ in range(n):
            for cell, out in ((body, plain), ("%%track wide\n" + body, tracked),
                              ("%%track wide --check\n" + body, checked)):
                t = time.perf_counter()
                ip.run_cell(cell)
                out.append(time.perf_counter() - t)
                syncer.flush()   # the background import, outside the time the user waits
    return {"untracked_ms": _median_ms(plain), "tracked_ms": _median_ms(tracked), "check_ms": _median_ms(checked),
            "check_added_ms": _median_ms(checked) - _median_ms(plain)}


def bench_sweep(root: Path, n: int) -> dict[str, float]:
    """A --grid of n combinations over a trivial cell vs the same cell run n times untracked."""
    from IPython import get_ipython

    ip = get_ipython()
    nbtrack.connect(root / "sweep.duckdb")
    cell = "x = 0\ny = x * 2"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ip.run_cell(f"%%track warm --grid x=range(5)\n{cell}")
        t0 = time.perf_counter()
        for _ in range(n):
            ip.run_cell(cell)
        plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        ip.run_cell(f"%%track grid --grid x=range({n})\n{cell}")
        sweep = time.perf_counter() - t0
    syncer.flush()
    assert len(nbtrack.last_sweep()) == n
    return {"n": n, "sweep_s": sweep, "plain_s": plain}


def bench_sampler(seconds: float) -> dict[str, float]:
    """CPU the system sampler costs: its own thread CPU time per sample, at the default interval."""
    from nbtrack.recorder import system

    interval, after = system.INTERVAL_S, system.START_AFTER_S
    system.INTERVAL_S, system.START_AFTER_S = 0.05, 0.0
    cpu0, samples0 = system.monitor.cpu_s, system.monitor.samples
    try:
        handle = system.monitor.watch(lambda step, values: None, time.time())
        time.sleep(seconds)
        system.monitor.unwatch(handle)
    finally:
        system.INTERVAL_S, system.START_AFTER_S = interval, after
    samples = system.monitor.samples - samples0
    per_sample = (system.monitor.cpu_s - cpu0) / max(samples, 1)
    return {"samples": samples, "per_sample_ms": per_sample * 1e3,
            "percent_at_default": 100 * per_sample / system.INTERVAL_S}


def bench_panel(root: Path, n_runs: int) -> dict[str, float]:
    """The compare panel's data for n runs x 50 params/metrics: the store query, the table payload
    and the chart specs, vs nbtrack.runs() alone (the query the panel cannot avoid)."""
    from nbtrack.widgets import ComparePanel

    store = Store(root / "panel.duckdb")
    for i in range(n_runs):
        run = ActiveRun(store, name=f"sweep-{i % 7}", experiment="bench", kind="script")
        for k in range(25):
            run.params[f"p{k}"] = ((i * (k + 3)) % 101 / 10 if k % 3 else f"opt{i % (k + 2)}", "given")
        run.metrics.update({f"m{k}": (i / (k + 1), None, "cell") for k in range(25)})
        run.ended_at, run.status = run.started_at, "finished"
        run._write()
    store.sync()
    panel = ComparePanel(store=store)
    build, query = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        panel.refresh()
        build.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        nbtrack.runs(store=store)
        query.append(time.perf_counter() - t0)
    panel.close()
    return {"runs": n_runs, "panel_ms": _median_ms(build), "runs_ms": _median_ms(query)}


def bench_curves(root: Path, n_runs: int, steps: int) -> dict[str, float]:
    """Curves of n runs x steps points, at most ~1,000 points per series, vs downsampling the raw
    points at query time and vs reading every raw point."""
    from nbtrack.store import curves

    store = Store(root / "curves.duckdb")
    steps_arr = np.arange(steps, dtype=np.int64)
    ids = []
    for i in range(n_runs):
        run = ActiveRun(store, name="curve", experiment="bench", kind="script")
        values = np.sin(steps_arr / 300.0) + i / n_runs
        run._lists["loss"] = (array("q", steps_arr.tobytes()), array("d", values.tobytes()))
        run._n_points = steps
        run._flush_points()
        run.ended_at, run.status = run.started_at, "finished"
        run._write()
        ids.append(run.run_id)
        if i % 50 == 49:
            store.sync()
    t0 = time.perf_counter()
    store.sync()
    import_s = time.perf_counter() - t0
    stored, on_the_fly, raw = [], [], []
    with store.connect() as con:
        for _ in range(5):
            t0 = time.perf_counter()
            pts = curves.curves(con, ids)
            stored.append(time.perf_counter() - t0)
        for _ in range(2):
            t0 = time.perf_counter()
            curves.curves(con, ids, max_points=curves.CURVE_POINTS + 1)
            on_the_fly.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            con.sql("SELECT run_id, key, step, value FROM metric_history").to_arrow_table()
            raw.append(time.perf_counter() - t0)
    return {"runs": n_runs, "steps": steps, "points_out": len(pts), "stored_ms": _median_ms(stored),
            "on_the_fly_ms": _median_ms(on_the_fly), "raw_ms": _median_ms(raw), "last_import_ms": import_s * 1e3}


def bench_write_options(root: Path, n: int) -> dict[str, float]:
    """Per-run cost of the three ways a kernel could write a run (the store's design choice)."""
    rows = pa.table({"run_id": ["x"] * 20, "key": [f"m{i}" for i in range(20)], "value": [0.5] * 20})
    path = root / "options.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE m (run_id VARCHAR, key VARCHAR, value DOUBLE)")
    con.register("rows", rows)
    held = []
    for _ in range(n):
        t = time.perf_counter()
        con.execute("INSERT INTO m SELECT * FROM rows")
        held.append(time.perf_counter() - t)
    con.close()
    reopen = []
    for _ in range(n // 4):
        t = time.perf_counter()
        c = duckdb.connect(str(path))
        c.register("rows", rows)
        c.execute("INSERT INTO m SELECT * FROM rows")
        c.close()
        reopen.append(time.perf_counter() - t)
    store = Store(root / "spool-opt.duckdb")

    def spool_writes() -> list[float]:
        out = []
        for _ in range(n):
            run = ActiveRun(store, name="w", experiment="bench", kind="script")
            run.params.update({f"p{i}": (i, "given") for i in range(10)})
            run.metrics.update({f"m{i}": (0.5, None, "cell") for i in range(20)})
            run.ended_at, run.status = run.started_at, "finished"
            t = time.perf_counter()
            run._write()  # what a cell pays: build the record (secrets, env, git cache) and write the file
            out.append(time.perf_counter() - t)
        return out

    spool = spool_writes()
    fsync = os.fsync
    os.fsync = lambda fd: None   # the baseline: the same writes without the durability the spool promises
    try:
        unsynced = spool_writes()
    finally:
        os.fsync = fsync
    t = time.perf_counter()
    store.sync()
    t_import = time.perf_counter() - t
    return {"held_ms": _median_ms(held), "reopen_ms": _median_ms(reopen), "spool_ms": _median_ms(spool),
            "spool_p99_ms": sorted(spool)[int(len(spool) * 0.99)] * 1e3, "unsynced_ms": _median_ms(unsynced),
            "unsynced_p99_ms": sorted(unsynced)[int(len(unsynced) * 0.99)] * 1e3,
            "import_ms_per_run": t_import * 1e3 / (2 * n)}


def bench_fingerprint(size: int) -> dict[str, dict[str, float]]:
    """GB/s of the fingerprint of ~``size`` bytes of each kind, beside one numpy sum over the same bytes
    (the memory read speed floor)."""
    import pandas as pd
    import polars as pl

    floats = np.random.default_rng(0).random(size // 8)
    raw = floats.view(np.uint8)
    t0 = time.perf_counter()
    float(floats.sum())
    t_sum = time.perf_counter() - t0
    values = {
        "numpy float64": floats,
        "pandas (4 float columns)": pd.DataFrame({f"c{i}": part for i, part in enumerate(np.array_split(floats, 4))}),
        "polars (4 float columns)": pl.DataFrame({f"c{i}": part for i, part in enumerate(np.array_split(floats, 4))}),
        "Arrow table": pa.table({"c": floats}),
        "bytes": raw.tobytes(),
        "str (ASCII)": "x" * size,
    }
    out = {}
    for name, value in values.items():
        t0 = time.perf_counter()
        fp = fingerprint(value)
        t = time.perf_counter() - t0
        assert fp["hash"], (name, fp)
        out[name] = {"gb_per_s": size / t / 1e9, "ms": t * 1e3}
    out["numpy sum (floor)"] = {"gb_per_s": size / t_sum / 1e9, "ms": t_sum * 1e3}
    return out


def bench_import(n: int) -> dict[str, float]:
    """Fresh interpreters: `import nbtrack`, and %load_ext in a fresh IPython, beside an empty
    interpreter, IPython alone and `import pandas` (what nbtrack no longer pays for up front)."""
    import subprocess

    def median_s(code: str) -> float:
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)

    shell = "from IPython.core.interactiveshell import InteractiveShell\nip = InteractiveShell.instance()\n"
    empty = median_s("pass")
    return {"empty_s": empty, "nbtrack_s": median_s("import nbtrack") - empty,
            "pandas_s": median_s("import pandas") - empty,
            "ipython_s": median_s(shell) - empty,
            "load_ext_s": median_s(shell + "ip.run_line_magic('load_ext', 'nbtrack')") - median_s(shell)}


def bench_wide(root: Path, n_runs: int, n_keys: int) -> dict[str, float]:
    """runs() over ``n_runs`` runs holding ``n_keys`` distinct params between them (10 each)."""
    store = Store(root / "wide.duckdb")
    store.sync()
    for i in range(n_runs):
        run = ActiveRun(store, name="w", experiment="wide", kind="script")
        for j in range(10):
            run.params[f"p{(i * 10 + j) % n_keys}"] = (i, "given")
        run.ended_at, run.status = run.started_at, "finished"
        run._write()
    store.sync()
    nbtrack.runs(store=store, limit=1)
    with contextlib.redirect_stderr(io.StringIO()):
        t0 = time.perf_counter()
        capped = nbtrack.runs(store=store)
        t_capped = time.perf_counter() - t0
    t0 = time.perf_counter()
    whole = nbtrack.runs(store=store, max_columns=None)
    t_whole = time.perf_counter() - t0
    assert whole.shape == (n_runs, len(BASE_COLUMNS) + n_keys) and capped.shape[1] == len(BASE_COLUMNS) + 1000
    con = duckdb.connect(str(store.path), read_only=True)
    t0 = time.perf_counter()
    con.execute("SELECT * FROM params").df()
    t_raw = time.perf_counter() - t0
    con.close()
    return {"runs": n_runs, "keys": n_keys, "capped_ms": t_capped * 1e3, "whole_ms": t_whole * 1e3,
            "raw_read_ms": t_raw * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    q = args.quick
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        here = os.getcwd()
        os.chdir(root)
        try:
            _report(root, q)
        finally:   # back before the folder goes (IPython's exit hook reads the working directory)
            os.chdir(here)


def _report(root: Path, q: bool) -> None:
    """Every figure, each with its baseline."""
    print(f"nbtrack {nbtrack.__version__}, duckdb {duckdb.__version__}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores\n")
    w = bench_write_options(root, 100 if q else 400)
    print(f"writing one run (10 params, 20 metrics): held DuckDB connection {w['held_ms']:.2f} ms (locks "
          f"every other process out), open-insert-close {w['reopen_ms']:.2f} ms, spool file "
          f"{w['spool_ms']:.2f} ms (p99 {w['spool_p99_ms']:.2f} ms) + later import {w['import_ms_per_run']:.2f} "
          "ms/run")
    print(f"  the spool's fsyncs (file and folder, so an acknowledged run survives a crash): "
          f"{w['spool_ms'] - w['unsynced_ms']:.2f} ms per record at the median (p99 with {w['spool_p99_ms']:.2f} ms, "
          f"without {w['unsynced_p99_ms']:.2f} ms)")
    sc = bench_script(root, 1_000 if q else 10_000)
    print(f"with nbtrack.run(...) in a {sc['lines']}-line script, {sc['n']:,} runs (10 params, 5 metrics): "
          f"{sc['tracked_ms']:.2f} ms per run at the median (first tenth {sc['first_ms']:.2f} ms, last tenth "
          f"{sc['last_ms']:.2f} ms; target <= 2 ms, flat), then {sc['drain_s']:.1f} s until all are imported; "
          f"the same record written durably as one JSON file: {sc['floor_ms']:.2f} ms")
    o = bench_overhead(root, 50 if q else 400)
    print(f"%%track overhead, trivial cell: untracked {o['untracked_ms']:.3f} ms, tracked "
          f"{o['tracked_ms']:.3f} ms -> added {o['added_ms']:.3f} ms (median; target <= 2 ms)")
    kn = bench_kernel(root, 50 if q else 300)
    print(f"%%track overhead, trivial cell, in a real kernel (execute request to idle, jupyter_client): untracked "
          f"{kn['untracked_ms']:.2f} ms, added {kn['added_ms']:.2f} ms, {kn['added_no_summary_ms']:.2f} ms with "
          "the summary line off (median; target <= 2 ms)")
    for per_call in (1, 10):
        lg = bench_log(root, 100_000 if q else 10_000_000, per_call)
        print(f"nbtrack.log, {lg['points']:,} points, {per_call} metric(s) per call: "
              f"{lg['log_only_per_s']:,.0f} points/s logging, {lg['with_flush_per_s']:,.0f} points/s with "
              f"flush + import (target >= 1,000,000); Arrow insert floor {lg['floor_per_s']:,.0f}/s, "
              f"ratio {lg['ratio_to_floor']:.1f}x; {lg['bytes_per_point']:.2f} bytes/point on disk (the same "
              f"points in a plain DuckDB table: {lg['plain_bytes_per_point']:.2f})")
    hs = bench_history(root, 5 if q else 20, 2_000 if q else 20_000)
    print(f"Run.history() of a {hs['points']:,}-point run: {hs['history_ms']:.1f} ms (median of 7; target within "
          f"2x of the raw read); the same query in raw DuckDB (connect, query, DataFrame) {hs['raw_ms']:.1f} ms")
    r = bench_runs(root, 1_000 if q else 10_000)
    print(f"nbtrack.runs() over {r['runs']:,} runs x 30 params/metrics: {r['runs_ms']:.0f} ms (median of 5; "
          f"target < 300 ms); raw read of the long tables {r['raw_read_ms']:.0f} ms; "
          f"spool import {r['import_ms']:.0f} ms")
    sw = bench_sweep(root, 100)
    print(f"%%track --grid of {sw['n']} combinations over a trivial cell: {sw['sweep_s']:.2f} s; the cell run "
          f"{sw['n']} times untracked: {sw['plain_s']:.3f} s (target: under 1 s plus the cells' own time)")
    sm = bench_sampler(2.0 if q else 5.0)
    print(f"system metrics sampler: {sm['per_sample_ms']:.3f} ms of CPU per sample ({sm['samples']} samples); "
          f"at one sample every 2 s that is {sm['percent_at_default']:.3f} % of a core (target < 1 %)")
    ck = bench_check(root, 10 if q else 40)
    print(f"%%track --check on a cell with 100 outputs: untracked {ck['untracked_ms']:.1f} ms, tracked "
          f"{ck['tracked_ms']:.1f} ms, tracked with --check {ck['check_ms']:.1f} ms -> added "
          f"{ck['check_added_ms']:.1f} ms (median; target <= 50 ms)")
    pn = bench_panel(root, 1_000 if q else 10_000)
    print(f"compare panel data over {pn['runs']:,} runs x 50 params/metrics (query, table, chart specs): "
          f"{pn['panel_ms']:.0f} ms (median of 5; target < 300 ms); nbtrack.runs() alone {pn['runs_ms']:.0f} ms")
    cv = bench_curves(root, 50 if q else 500, 2_000 if q else 20_000)
    print(f"curves of {cv['runs']} runs x {cv['steps']:,} steps: {cv['stored_ms']:.0f} ms for "
          f"{cv['points_out']:,} points (target < 300 ms); downsampling the raw points at query time "
          f"{cv['on_the_fly_ms']:.0f} ms; reading every raw point {cv['raw_ms']:.0f} ms")
    wd = bench_wide(root, 1_000 if q else 10_000, 1_000 if q else 10_000)
    print(f"nbtrack.runs() over {wd['runs']:,} runs holding {wd['keys']:,} distinct params: "
          f"{wd['capped_ms']:.0f} ms for the default 1,000 columns, {wd['whole_ms']:.0f} ms for all of them "
          f"(target <= 1 s); raw read of the params table {wd['raw_read_ms']:.0f} ms")
    im = bench_import(3 if q else 7)
    print(f"import nbtrack: {im['nbtrack_s']:.2f} s (target <= 0.3 s); %load_ext nbtrack in IPython: "
          f"{im['load_ext_s']:.2f} s; for scale: import pandas {im['pandas_s']:.2f} s, IPython's own shell "
          f"{im['ipython_s']:.2f} s (each beyond an empty interpreter, {im['empty_s']:.2f} s; medians)")
    fps = bench_fingerprint((100 << 20) if q else (800 << 20))
    floor = fps.pop("numpy sum (floor)")
    print(f"fingerprint speed, {800 if not q else 100} MB of each (numpy sum over the same bytes: "
          f"{floor['gb_per_s']:.1f} GB/s):")
    for name, f in fps.items():
        print(f"  {name}: {f['gb_per_s']:.1f} GB/s ({f['ms']:.0f} ms)")


if __name__ == "__main__":
    main()
