"""``Store(location)``: a DuckDB file (FileStore) or a DuckLake team store (TeamStore), chosen by the location.

Everything above the store layer holds a ``Store`` and uses only what ``StoreInterface`` names:
``connect()`` for one short operation, ``sync()`` to import the spool, ``signature()`` to notice
new runs, ``spool`` to write a run, and a few facts about where it is.
"""
from __future__ import annotations

import os
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    import duckdb

    from .spool import Spool

PREFIX = "ducklake:"


def is_team_url(location: Any) -> bool:
    return isinstance(location, str) and location.startswith(PREFIX)


@runtime_checkable
class StoreInterface(Protocol):
    """What a store offers the layers above it; FileStore (file.py) and TeamStore (team.py) both do."""

    path: Any          # the file's Path, or the team store's URL without its password
    read_only: bool    # never written: tracked runs stay in the spool
    spool: Spool       # where runs are written, on this machine

    @property
    def location(self) -> str:
        """What a script or child process opens the same store with (no password in it)."""

    def connect(self, read_only: bool = False, timeout: float = 30.0,
                allow_files: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A connection for one short operation; a writable one imports the spool first."""

    def sync(self, blocking: bool = True) -> bool:
        """Import the spool now; False when it could not (read-only, or busy without ``blocking``)."""

    def exists(self) -> bool:
        """Whether there is anything to read yet (the store, or runs waiting in the spool)."""

    def signature(self) -> tuple[Any, ...]:
        """Changes whenever a run is written to the store by anyone (open panels poll it)."""

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], Any], timeout: float = 30.0) -> Any:
        """``fn(con)`` in one transaction (push and pull)."""

    def child_env(self) -> dict[str, str]:
        """Environment variables for a child process to open this store."""

    def maintain(self, keep_days: float = 7.0) -> list[str]:
        """Tidy the store (a team store's files and snapshots; a file store's copies in key order); one
        line per step."""

    def collect(self, before: datetime | None = None, dry_run: bool = False) -> list[str]:
        """Remove runs deleted before ``before`` (all deleted runs: ``None``) for good, and reclaim the
        space; one line per step, each saying how much and where."""


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
