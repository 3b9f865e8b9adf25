"""The DuckDB store: where it is, how it is opened, and everything that speaks SQL.

Several writers at once (two notebooks, a script, the CLI) is the normal case,
and DuckDB allows one read-write process per file, refusing every other
opener at once. Measured here (DuckDB 2.0.1, 2 cores): a held connection
commits a run in ~2-4 ms but locks out every other process, even readers;
opening and closing the file around each write costs ~25 ms and, with four
writers, p99 waits of 1.6-2.5 s from lock fights; DuckDB 2.0.1 can also lose
commits when processes take turns opening a file without an outer lock.

So the write path never touches DuckDB: a run is written as spool files
(spool.py, ~0.3 ms, no lock), and whoever reads the store - the API, the CLI,
or the kernel's background thread after each run - takes a sidecar ``flock``
(lock.py), imports the spool in one transaction (importer.py), queries and
closes. Nobody holds the file between operations, so a plain DuckDB client
can open it too.
"""
from __future__ import annotations

from typing import Any

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ..errors import NotAStoreError, StoreBusyError, StoreError, StoreVersionError
from ..recorder.secrets import redact_passwords
from . import migrations
from .base import Store, is_team_url
from .importer import import_spool
from .lock import FileLock
from .spool import Spool
# imported eagerly: ducklake.py registers its exit clean-up before the recorder registers its last import
from . import ducklake  # noqa: F401

DEFAULT_RELATIVE = Path(".nbtrack") / "runs.duckdb"
# A file made by DuckDB 2.x is unreadable by 1.5.5, the version the team extra pins: new files keep the
# 1.5 storage format so one store moves freely between an environment with and one without the extra.
FILE_CONFIG = {"storage_compatibility_version": "v1.5.0"}


def resolve_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The store path: the argument, else ``$NBTRACK_STORE``, else ``./.nbtrack/runs.duckdb``."""
    raw = path if path is not None else os.environ.get("NBTRACK_STORE") or DEFAULT_RELATIVE
    if is_team_url(raw):
        raise StoreError(f"{redact_passwords(str(raw))} is a team store URL, not a file; open it with "
                         "nbtrack.connect(url) or open_store(url)")
    return Path(os.path.abspath(Path(raw).expanduser()))



def _explain(exc: BaseException, path: Path) -> StoreError:
    text = str(exc)
    low = text.lower()
    if "not a valid duckdb database" in low:
        return NotAStoreError(f"{path} is not an nbtrack store (not a DuckDB file); "
                              "point NBTRACK_STORE or --store at another path")
    if "newer version" in low or "version number" in low or "storage version" in low:
        first = text.strip().splitlines()[0] if text.strip() else text
        return StoreVersionError(f"{path} was written by a newer DuckDB than this {duckdb.__version__} ({first}); "
                                 "upgrade with: pip install -U nbtrack duckdb (where the team extra pins DuckDB "
                                 "1.5.5, copy the runs over with nbtrack push/pull from an environment with "
                                 "the newer DuckDB)")
    if isinstance(exc, OSError) and exc.errno is not None:
        from .spool import _os_message

        return StoreError(_os_message(exc, path))
    if "no space left" in low:
        return StoreError(f"the disk is full: cannot write {path}; free space or set NBTRACK_STORE "
                          "to another disk")
    if "permission denied" in low or "read-only file system" in low:
        return StoreError(f"cannot write {path}: permission denied; point NBTRACK_STORE at a "
                          "writable path")
    return StoreError(f"cannot open {path}: {text}")


class FileStore(Store):
    """One store file, its spool folder and its lock file."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, data_path: Any = None,
                 read_only: bool = False) -> None:
        self.path = resolve_path(path)
        self.read_only = read_only
        self.spool = Spool(self.path.with_name(self.path.name + ".spool"))
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"FileStore({str(self.path)!r})"

    @property
    def location(self) -> str:
        return str(self.path)

    def write(self, fn: Any, timeout: float = 30.0) -> Any:
        """Run ``fn(con)`` in one transaction (push and pull use it, as on a team store)."""
        with self.connect(timeout=timeout) as con:
            return migrations.in_transaction(con, fn)

    def child_env(self) -> dict[str, str]:
        return {"NBTRACK_STORE": str(self.path)}

    def exists(self) -> bool:
        return self.path.exists() or bool(self.spool.pending())

    def signature(self) -> tuple[Any, ...]:
        """Changes whenever a run is written here by anyone: the spool's files and the file's size and time."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        return (tuple(p.name for p in self.spool.pending()), stamp)

    def _open(self, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise _explain(e, self.path) from None
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=FILE_CONFIG)
            except duckdb.Error as e:
                # a DuckDB client outside nbtrack (no sidecar lock) holds the file: wait for it
                if "lock" in str(e).lower() and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                if "lock" in str(e).lower():
                    raise StoreBusyError(f"{self.path} is held open by another DuckDB client; "
                                         "close it and retry") from None
                raise _explain(e, self.path) from None
            except OSError as e:
                raise _explain(e, self.path) from None

    @contextmanager
    def _opened(self, read_only: bool, timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._open(read_only, timeout)
        try:
            if read_only:
                pending = migrations.check(con, str(self.path))
                if pending and len(pending) == len(migrations.MIGRATIONS):
                    raise NotAStoreError(f"{self.path} is empty: no run has been recorded yet")
            else:
                try:
                    migrations.migrate(con, str(self.path))
                    import_spool(con, self.spool)
                except duckdb.Error as e:
                    raise _explain(e, self.path) from None
            yield con
        finally:
            con.close()

    @contextmanager
    def connect(self, read_only: bool = False, timeout: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the store for one short operation; a writable open imports the spool first."""
        read_only = read_only or self.read_only
        lock = FileLock(self.lock_path)
        lock.acquire(timeout=timeout)
        try:
            with self._opened(read_only, timeout) as con:
                yield con
        finally:
            lock.release()

    def sync(self, blocking: bool = True) -> bool:
        """Import the spool now; without ``blocking``, give up at once if another process holds the lock."""
        if self.read_only:
            return False
        lock = FileLock(self.lock_path)
        if not lock.acquire(blocking=blocking):
            return False
        try:
            with self._opened(False, 30.0):
                return True
        finally:
            lock.release()

