"""Shared fixtures: a real IPython shell with nbtrack loaded, a store in tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest

import nbtrack
from nbtrack.recorder.session import session

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
    session.reset(store=nbtrack.connect(store_path))   # no runs, sweeps or checks of earlier tests
    session.tracker.reset()
    yield _shell
    session.tracker.reset()
