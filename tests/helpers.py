"""Helpers shared by the tests (fixtures live in conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys
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
