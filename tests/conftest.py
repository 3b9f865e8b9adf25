"""Shared fixtures: a real IPython shell with nbtrack loaded, a store in tmp_path."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import nbtrack
from nbtrack import api

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def _shell():
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_cell("%load_ext nbtrack")
    return shell


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "runs.duckdb"


@pytest.fixture
def ip(_shell, store_path: Path, tmp_path: Path, monkeypatch):
    """The IPython shell, recording into a fresh store, in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    _shell.reset(new_session=False)
    tracker = api._tracker
    nbtrack.connect(store_path)
    tracker.enabled = True
    tracker.summary = True
    tracker._frames.clear()
    tracker._store_checked = None
    from nbtrack.recorder.run import syncer
    syncer.flush()
    syncer.errors.clear()
    yield _shell
    tracker._frames.clear()


def run_py(code: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter (a real separate process)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
