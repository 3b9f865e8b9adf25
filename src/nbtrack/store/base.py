"""``Store(location)``: a DuckDB file (FileStore) or a DuckLake team store (TeamStore), chosen by the location.

Everything above the store layer holds a ``Store`` and calls the same four
things on it: ``connect()`` for one short operation, ``sync()`` to import the
spool, ``signature()`` to notice new runs, and ``spool`` to write a run.
"""
from __future__ import annotations

import os
from typing import Any

PREFIX = "ducklake:"


def is_team_url(location: Any) -> bool:
    return isinstance(location, str) and location.startswith(PREFIX)


class Store:
    """A run store; ``Store(path)`` opens a file store, ``Store("ducklake:...")`` a team store.

    The location defaults to ``$NBTRACK_STORE``, else ``./.nbtrack/runs.duckdb``.
    """

    path: Any
    read_only: bool

    def __new__(cls, location: str | os.PathLike[str] | None = None, *args: Any, **kwargs: Any) -> Any:
        if cls is Store:
            raw = location if location is not None else os.environ.get("NBTRACK_STORE")
            if is_team_url(raw):
                from .team import TeamStore as cls  # noqa: N813
            else:
                from .file import FileStore as cls  # noqa: N813
        return super().__new__(cls)
