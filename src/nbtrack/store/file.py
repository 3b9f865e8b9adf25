"""The DuckDB file store: where the file is, how it is opened (under the sidecar lock, importing the
spool first), and how DuckDB's errors about the file become one clear message."""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ..errors import CorruptStoreError, NotAStoreError, StoreBusyError, StoreError, StoreVersionError, warn
from ..secrets import redact_passwords
from . import attached, gc, keyorder, migrations
from .base import Store, is_team_url
from .importer import import_spool
from .lock import held
from .transaction import in_transaction
from ..retry import retry
from .spool import Spool, fsync_dir

DEFAULT_RELATIVE = Path(".nbtrack") / "runs.duckdb"
# A file made by DuckDB 2.x is unreadable by 1.5.5, the version the team extra pins: new files keep the
# 1.5 storage format so one store moves freely between an environment with and one without the extra.
FILE_CONFIG = {"storage_compatibility_version": "v1.5.0"}


# DuckDB (1.5.5 seen) can leave a write-ahead log behind when a process is killed after a checkpoint
# wrote the file and before it removed the log; the next open then refuses the file, although the log's
# commits are in it (the file's checkpoint iteration is past the log's)
_STALE_WAL = re.compile(r"WAL was created for an older version of this database\. File checkpoint iteration: "
                        r"(\d+), WAL checkpoint iteration: (\d+)")


def _set_aside_stale_wal(exc: BaseException, path: Path) -> bool:
    """Rename a write-ahead log older than its file's last checkpoint (kept, never deleted), with one
    line saying so; True if it was, so the file can be opened again."""
    m = _STALE_WAL.search(str(exc))
    wal = path.with_name(path.name + ".wal")
    if m is None or int(m[1]) <= int(m[2]) or not wal.exists():
        return False
    kept = wal.with_name(f"{wal.name}.stale-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    try:
        wal.rename(kept)
    except OSError:
        return False
    warn(f"{wal} was older than the last checkpoint of {path.name} (a process was killed as DuckDB finished "
         f"a checkpoint: its commits are in the file); it is kept as {kept.name} and the store opened without it")
    return True


def resolve_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The store path: the argument, else ``$NBTRACK_STORE``, else ``./.nbtrack/runs.duckdb``."""
    raw = path if path is not None else os.environ.get("NBTRACK_STORE") or DEFAULT_RELATIVE
    if is_team_url(raw):
        raise StoreError(f"{redact_passwords(str(raw))} is a team store URL, not a file; open it with "
                         "nbtrack.connect(url) or open_store(url)")
    return Path(os.path.abspath(Path(raw).expanduser()))



# DuckDB reports a damaged, foreign, newer, locked or unwritable file with these exceptions and fixed
# phrases; a record's own text can only appear in a data error (constraint, conversion), which is never
# matched, and the store's path is cut out of the message before matching (a path can say "lock" too).
_STORE_ERRORS = tuple(getattr(duckdb, n) for n in ("IOException", "InternalException", "FatalException",
                                                   "SerializationException", "PermissionException")
                      if hasattr(duckdb, n))


def _cause(exc: BaseException, path: Path) -> str | None:
    """The fixed part of a DuckDB error about the file itself (path removed), or None for any other error."""
    if not (type(exc) is duckdb.Error or isinstance(exc, _STORE_ERRORS)):
        return None
    text = str(exc)
    for form in (str(path), path.name):
        text = text.replace(form, "<store>")
    return text


def _is_lock_conflict(exc: BaseException, path: Path) -> bool:
    cause = _cause(exc, path)
    return cause is not None and "Could not set lock on file" in cause


def _explain(exc: BaseException, path: Path) -> StoreError | None:
    """The StoreError that names what is wrong with the file, or None when ``exc`` is not about the file."""
    if isinstance(exc, OSError) and exc.errno is not None:
        from .spool import os_message

        return StoreError(os_message(exc, path))
    cause = _cause(exc, path)
    if cause is None:
        return None
    first = " ".join(cause.strip().splitlines()[0].split()) if cause.strip() else type(exc).__name__
    if "not a valid DuckDB database file" in cause:
        return NotAStoreError(f"{path} is not an nbtrack store (not a DuckDB file); "
                              "point NBTRACK_STORE or --store at another path")
    if "version number" in cause or "newer version" in cause:
        return StoreVersionError(f"{path} was written by a newer DuckDB than this {duckdb.__version__} ({first}); "
                                 "upgrade with: pip install -U nbtrack duckdb (where the team extra pins DuckDB "
                                 "1.5.5, copy the runs over with nbtrack push/pull from an environment with "
                                 "the newer DuckDB)")
    if "Corrupt database file" in cause or "Could not read enough bytes" in cause or "checksum" in cause:
        return CorruptStoreError(f"{path} is damaged and cannot be read ({first}); move it aside "
                                 f"(mv {path} {path}.damaged) and nbtrack starts a new store; runs not yet "
                                 f"imported wait in {path}.spool and go into the new one")
    if "No space left" in cause:
        return StoreError(f"the disk is full: cannot write {path}; free space or set NBTRACK_STORE "
                          "to another disk")
    if "Permission denied" in cause or "Read-only file system" in cause:
        return StoreError(f"cannot write {path}: permission denied; point NBTRACK_STORE at a "
                          "writable path")
    if "Could not set lock on file" in cause:
        return StoreBusyError(f"{path} is held open by another DuckDB client; close it and retry")
    return StoreError(f"cannot use {path}: {first}")


def _size(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _sql_text(path: Path) -> str:
    return str(path).replace("'", "''")


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
            return in_transaction(con, fn)

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

    def _open(self, read_only: bool, timeout: float, allow_files: bool = False) -> duckdb.DuckDBPyConnection:
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise _explain(e, self.path) from None
        # a read-only connection touches nothing but this file: no COPY TO, EXPORT, ATTACH, INSTALL or
        # LOAD, and no reading other files unless asked (nbtrack sql --allow-files); nor can SQL undo it
        config = dict(FILE_CONFIG, **({"enable_external_access": allow_files} if read_only else {}))

        def connect() -> duckdb.DuckDBPyConnection:
            if not read_only:   # to the process's kept instance (attached.py): 2 ms instead of 8-10
                return attached.attach(self.path, FILE_CONFIG["storage_compatibility_version"])
            con = duckdb.connect(str(self.path), read_only=True, config=config)
            con.execute("SET enable_progress_bar = false")   # DuckDB draws one on the user's terminal
            con.execute("SET lock_configuration = true")
            return con

        def connect_once_more_without_a_stale_wal() -> duckdb.DuckDBPyConnection:
            try:
                return connect()
            except duckdb.Error as e:
                if read_only or not _set_aside_stale_wal(e, self.path):
                    raise
            return connect()

        try:   # a DuckDB client outside nbtrack (no sidecar lock) may hold the file: wait for it
            return retry(connect_once_more_without_a_stale_wal,
                         when=lambda e: isinstance(e, duckdb.Error) and _is_lock_conflict(e, self.path),
                         timeout=timeout, delay=0.005, max_delay=0.2)
        except duckdb.Error as e:
            raise (_explain(e, self.path) or StoreError(f"cannot open {self.path}: {e}")) from None
        except OSError as e:
            raise _explain(e, self.path) from None

    @contextmanager
    def _opened(self, read_only: bool, timeout: float, allow_files: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._open(read_only, timeout, allow_files)
        try:
            if read_only:
                pending = migrations.check(con, str(self.path))
                if pending and len(pending) == len(migrations.MIGRATIONS):
                    raise NotAStoreError(f"{self.path} is empty: no run has been recorded yet")
                migrations.stand_in(con, pending)
            else:
                migrations.migrate(con, str(self.path))
                import_spool(con, self.spool)
            yield con
        except duckdb.Error as e:   # the file itself failing under a query (a damaged block) is named as such
            problem = _explain(e, self.path)
            if problem is None:
                raise
            raise problem from None
        finally:
            if read_only:
                con.close()
            else:
                attached.detach(con, self.path)

    @contextmanager
    def connect(self, read_only: bool = False, timeout: float = 30.0,
                allow_files: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the store for one short operation; a writable open imports the spool first. A read-only
        connection can read this file only (``allow_files``: other files too, for ``nbtrack sql``)."""
        read_only = read_only or self.read_only
        with held(self.lock_path, timeout):
            with self._opened(read_only, timeout, allow_files) as con:
                yield con

    def collect(self, before: datetime | None = None, dry_run: bool = False) -> list[str]:
        """Remove runs deleted before ``before`` for good, then rewrite the file without the space they
        held (DuckDB reuses freed blocks but never gives them back: a copy does)."""
        with held(self.lock_path):
            with self._opened(False, 30.0) as con:
                ids = gc.deleted_before(con, before)
                found = gc.measure(con, ids) if dry_run or not ids else in_transaction(con, lambda c: gc.remove(c, ids))
                size = _size(self.path)
                if ids and not dry_run:
                    con.execute("CHECKPOINT")
                    fresh = self.path.with_name(f".{self.path.name}.compact-{os.getpid()}")
                    fresh.unlink(missing_ok=True)
                    db = con.execute("SELECT current_database()").fetchone()[0]
                    con.execute(f"ATTACH '{_sql_text(fresh)}' AS nbt_fresh (STORAGE_VERSION 'v1.5.0')")
                    try:
                        con.execute(f'COPY FROM DATABASE "{db}" TO nbt_fresh')
                    finally:
                        con.execute("DETACH nbt_fresh")
            if ids and not dry_run:   # the connection is closed: the old file can be replaced
                with open(fresh, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(fresh, self.path)
                fsync_dir(self.path.parent)
        return gc.report(found, str(self.path), dry_run, size, None if dry_run or not ids else _size(self.path))

    def maintain(self, keep_days: float = 7.0) -> list[str]:
        """Copy ``metrics`` and ``params`` in key order again (store/keyorder.py): after rows were changed
        with SQL outside nbtrack, which does not keep the copies. ``keep_days`` is for team stores."""
        with self.connect() as con:
            rows = in_transaction(con, keyorder.rebuild)
        return [f"{' and '.join(keyorder.COLUMNS)} copied again in key order: {rows:,} rows"]

    def sync(self, blocking: bool = True) -> bool:
        """Import the spool now; without ``blocking``, give up at once if another process holds the lock."""
        if self.read_only:
            return False
        with held(self.lock_path, blocking=blocking) as got:
            if not got:
                return False
            with self._opened(False, 30.0):
                return True

