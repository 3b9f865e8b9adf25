"""Helpers shared by the tests (fixtures live in conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_py(code: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter (a real separate process)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def make_runs(path, n: int, n_params: int = 25, n_metrics: int = 25, curves: int = 0, steps: int = 0):
    """A store of ``n`` finished runs written through the recorder (spool, then one import)."""
    import math

    from nbtrack.recorder.run import ActiveRun
    from nbtrack.store import Store

    store = Store(path)
    for i in range(n):
        run = ActiveRun(store, name=f"sweep-{i % 7}", experiment="many", kind="script", tags=["bulk"])
        for k in range(n_params):
            run.params[f"p{k}"] = ((i * (k + 3)) % 101 / 10 if k % 3 else f"opt{i % (k + 2)}", "given")
        run.metrics.update({f"m{k}": (math.sin(i / (k + 1)), None, "cell") for k in range(n_metrics)})
        if i < curves:
            for s in range(steps):
                run.log_dict(s, {"loss": 1 / (s + 1) + (i % 10) / 100})
            run._flush_points()
        run.ended_at, run.status = run.started_at, "finished"
        run._write()
    store.sync()
    return store


def documentation() -> dict[str, str]:
    """The README and every page of docs/, by path: what the user reads."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {str(p.relative_to(ROOT)): p.read_text() for p in pages}


def eight_writers(writer: str, cwd: Path, env: dict | None = None) -> None:
    """Run the script ``writer`` (it gets its number, 0-7, as argv[1]) in 8 processes at once and check
    that each exits cleanly without a warning. Writers 0-3 share a machine's spool; 4-7 each play
    another machine (their own spool), so that DuckLake itself sees concurrent commits."""
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(w)], cwd=cwd, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "NBTRACK_SYSTEM_METRICS": "0", **(env or {}),
                                   "XDG_CACHE_HOME": str(cwd / f"machine{max(w - 3, 0)}")})
             for w in range(8)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert not any("warning" in e for e in errors), errors


class HeldClock:
    """The ``time`` module as the recorder sees it, with ``time()`` held at one instant."""

    def __init__(self, at: float) -> None:
        self.at = at

    def time(self) -> float:
        return self.at

    def __getattr__(self, name: str):
        return getattr(time, name)


def same_start_runs(store, monkeypatch) -> float:
    """Runs a, b and d started in the same microsecond (a and b imported together, d after them), c a
    second later; a alone has the param ``only_a``. Returns the shared start."""
    import nbtrack
    from nbtrack.recorder import run as recorder_run

    at = 1_767_225_600.25

    def record(name: str, when: float, acc: float, **params) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(recorder_run, "time", HeldClock(when))
            with nbtrack.run(name, params=params, store=store) as run:
                run.log(acc=acc)

    record("a", at, 0.9, lr=0.1, only_a=1)
    record("b", at, 0.5, lr=0.2)
    record("c", at + 1, 0.7, lr=0.3)
    store.sync()
    record("d", at, 0.1, lr=0.4)
    store.sync()
    return at


def assert_kept_apart(store) -> None:
    """Every read of many runs gives the runs of same_start_runs their own values: the frame, filters,
    and the paged panel's sort and axis values."""
    import nbtrack
    from nbtrack.store import paging

    frame = nbtrack.runs(store=store).set_index("name").sort_index()
    assert frame["params.lr"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert frame["metrics.acc"].tolist() == [0.9, 0.5, 0.7, 0.1]
    assert frame["params.only_a"].isna().tolist() == [False, True, True, True]
    assert frame.loc["a", "params.only_a"] == 1
    assert sorted(nbtrack.runs(where="params.only_a = 1", store=store)["name"]) == ["a"]
    assert sorted(nbtrack.runs(where="metrics.acc < 0.6", store=store)["name"]) == ["b", "d"]
    assert sorted(nbtrack.runs(where="params.lr in (0.2, 0.3)", store=store)["name"]) == ["b", "c"]
    # terms joined by and are one intersection of starts, with the shared starts by id (locality.has_rows)
    assert sorted(nbtrack.runs(where="metrics.acc < 0.6 and params.lr > 0.15", store=store)["name"]) == ["b", "d"]
    assert sorted(nbtrack.runs(where="params.lr >= 0.1 and metrics.acc > 0.6 and params.lr < 0.35",
                               store=store)["name"]) == ["a", "c"]
    assert sorted(nbtrack.runs(where="params.only_a is null and metrics.acc > 0.2 and params.lr > 0",
                               store=store)["name"]) == ["b", "c"]
    names = dict(zip(frame["run_id"], frame.index))
    with store.connect(read_only=True) as con:
        cond, args = paging.view_sql(con, None, None, None)
        by_acc = paging.ordered_ids(con, cond, args, "metrics.acc", desc=True).to_pylist()
        by_only = paging.ordered_ids(con, cond, args, "params.only_a", desc=True).to_pylist()
        numbers = paging.numbers(con, cond, args, ["metrics.acc", "params.lr"]).to_pylist()
    assert [names[i] for i in by_acc] == ["a", "c", "b", "d"]
    assert [names[i] for i in by_only][0] == "a" and len(by_only) == 4
    assert sorted((names[n["run_id"]], n["metrics.acc"], n["params.lr"]) for n in numbers) == [
        ("a", 0.9, 0.1), ("b", 0.5, 0.2), ("c", 0.7, 0.3), ("d", 0.1, 0.4)]
