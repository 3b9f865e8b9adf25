"""The team store: the same tables in a DuckLake (catalog in PostgreSQL, data as Parquet in a shared path).

A file store allows one writer process at a time; DuckLake lets many
machines commit to one catalog, with optimistic transactions that DuckLake
retries on conflict. Cells still write only their local spool (spool.py): the
background import sends it to the lake, and when PostgreSQL cannot be reached
it imports into the local file store instead, so a cell never fails and
``nbtrack push`` sends those runs later. How the lake is opened (packaged
extensions, the password kept from DuckDB) is in ducklake.py.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import duckdb

from ..errors import NotAStoreError, StoreError, StoreVersionError, warn
from ..recorder.secrets import redact_passwords as redact
from . import migrations
from .base import Store, is_team_url
from .ducklake import catalog, open_lake, retrying, split_password, unreachable
from .importer import import_spool
from .lock import FileLock
from .spool import Spool

FLUSH_COMMITS = 1000   # commits of inlined rows after which an importer flushes them to Parquet


class TeamStore(Store):
    """A DuckLake team store at ``url``, with a local spool and a local file store as its fallback."""

    def __init__(self, url: str | None = None, *, data_path: str | os.PathLike[str] | None = None,
                 read_only: bool = False, local: Any = None) -> None:
        url = url if url is not None else os.environ.get("NBTRACK_STORE")
        if not is_team_url(url):
            raise StoreError(f"not a team store URL: {redact(str(url))!r}; it starts with 'ducklake:', e.g. "
                             "ducklake:postgres:dbname=runs host=db user=me")
        from . import DEFAULT_RELATIVE, FileStore  # the local file store, for the fallback

        self.url = url
        self.path = redact(url)               # what nbtrack prints and compares; never the password
        raw_data = data_path if data_path is not None else os.environ.get("NBTRACK_DATA_PATH")
        self.data_path = str(Path(raw_data).expanduser().absolute()) if raw_data else None
        self.read_only = read_only
        self.local = local if local is not None else FileStore(DEFAULT_RELATIVE)
        # one spool per user and team store on this machine, whatever the working directory, so any
        # nbtrack process that reaches the store sends what an earlier one left behind
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nbtrack"
        digest = hashlib.sha256(self.path.encode()).hexdigest()[:12]
        self.spool = Spool(cache / f"team-{digest}.spool")
        self.lock_path = cache / f"team-{digest}.lock"
        self.fallback: str | None = None      # why the last import went to the local store, if it did
        self._dbs: dict[bool, duckdb.DuckDBPyConnection] = {}   # read_only -> the lake attached that way
        self._guard = threading.Lock()
        self._migrated = False
        self._catalog: str | None = None

    def __repr__(self) -> str:
        return f"TeamStore({self.path!r})"

    @property
    def location(self) -> str:
        """The URL without its password, for a script to open (libpq then reads PGPASSWORD or ~/.pgpass)."""
        return split_password(self.url)[0]

    def child_env(self) -> dict[str, str]:
        """Environment for a child process to open this store, password included, never on its command line."""
        return {"NBTRACK_STORE": self.url, **({"NBTRACK_DATA_PATH": self.data_path} if self.data_path else {})}

    # -- connection ------------------------------------------------------------------------------------
    def _database(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """The lake attached read-write, or read-only (then even SQL a user types cannot write), per process."""
        read_only = read_only or self.read_only
        with self._guard:
            if read_only not in self._dbs:
                if self._catalog is None:
                    self._catalog = catalog(self.url)   # once: it writes the passfile
                try:
                    self._dbs[read_only] = open_lake(self._catalog, self.data_path, read_only)
                except duckdb.Error as e:
                    raise self._explain(e) from None
            return self._dbs[read_only]

    def _drop(self) -> None:
        with self._guard:
            for db in self._dbs.values():
                try:
                    db.close()
                except duckdb.Error:
                    pass
            self._dbs.clear()
            self._migrated = False

    def _explain(self, exc: BaseException) -> StoreError:
        text = redact(str(exc))
        if unreachable(text):
            at = text.lower().find("connection to server")
            reason = _first_line(text[at:] if at >= 0 else text)
            return TeamUnreachableError(f"cannot reach the team store {self.path}: {reason}; check "
                                        "that PostgreSQL is up and the URL is right")
        if "password" in text.lower() or "authentication" in text.lower():
            at = text.lower().find("connection to server")
            return StoreError(f"the team store {self.path} refused the login: "
                              f"{_first_line(text[at:] if at >= 0 else text)}; check the user and password (in "
                              "the URL, $PGPASSWORD or ~/.pgpass)")
        if "data_path" in text.lower() or "data path" in text.lower():
            return StoreError(f"the team store {self.path} has no data path yet: set NBTRACK_DATA_PATH or pass "
                              f"data_path= (a folder every writer can reach) ({_first_line(text)})")
        if "permission denied" in text.lower() or "read-only" in text.lower() or "read only" in text.lower():
            return StoreError(f"the team store {self.path} refused a write: {_first_line(text)}; this role or "
                              "connection is read-only")
        return StoreError(f"team store {self.path}: {_first_line(text)}")

    @contextmanager
    def connect(self, read_only: bool = False, timeout: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the team catalog for one operation; a writable one sends the spool first."""
        read_only = read_only or self.read_only
        con = self._cursor(read_only)
        try:
            if not read_only:
                self._import(con, self.spool, timeout)
            elif not self._migrated:
                self._check(con)
            yield con
        except duckdb.Error as e:
            error = self._explain(e)
            if isinstance(error, TeamUnreachableError):
                self._drop()
            raise error from None
        finally:
            con.close()

    def _cursor(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        db = self._database(read_only)
        try:
            con = db.cursor()
            con.execute("USE team")
            return con
        except duckdb.Error as e:
            self._drop()
            raise self._explain(e) from None

    def _check(self, con: duckdb.DuckDBPyConnection) -> None:
        pending = migrations.check(con, self.path)
        if pending and len(pending) == len(migrations.MIGRATIONS):
            raise NotAStoreError(f"the team store {self.path} is empty: no run has been pushed or recorded yet")
        if pending:
            raise StoreVersionError(f"the team store {self.path} needs migrations {', '.join(pending)}; open it "
                                    "once without read_only (a role that may write) to apply them")
        self._migrated = True

    @contextmanager
    def _spool_locked(self, timeout: float) -> Iterator[None]:
        """The processes of one machine share the spool: one of them imports at a time (it takes
        everyone's files in one transaction), as for a file store."""
        lock = FileLock(self.lock_path)
        lock.acquire(timeout=timeout)
        try:
            yield
        finally:
            lock.release()

    def _import(self, con: duckdb.DuckDBPyConnection, spool: Spool, timeout: float) -> int:
        """Migrate and import ``spool`` in one transaction, retrying DuckLake's conflicts with backoff."""
        def attempt() -> int:
            if not self._migrated:
                migrations.migrate(con, self.path, team=True)
                self._migrated = True
            n = import_spool(con, spool)
            if n:
                self._flush_if_due(con)
            return n

        with self._spool_locked(timeout):
            return retrying(attempt, timeout)

    def _flush_if_due(self, con: duckdb.DuckDBPyConnection) -> None:
        """Move inlined rows to Parquet once enough commits have piled them up in the catalog.

        Reading rows inlined in PostgreSQL costs more than reading Parquet (runs() over 30,000 inlined
        runs: ~1.1 s, ~0.3 s once flushed), so no team should depend on running `nbtrack maintain`.
        Whichever writer sees the threshold crossed flushes, in its own transaction; if that meets a
        conflict it is left to the next import (the snapshot count says so to everyone)."""
        due = con.execute(
            "SELECT count(*) FROM ducklake_snapshots('team') WHERE map_contains(changes, 'inlined_insert') "
            "AND snapshot_id > coalesce((SELECT max(snapshot_id) FROM ducklake_snapshots('team') "
            "WHERE map_contains(changes, 'flushed_inlined')), -1)").fetchall()[0][0]
        if due < int(os.environ.get("NBTRACK_TEAM_FLUSH_COMMITS", FLUSH_COMMITS)):
            return
        try:
            con.execute("CALL ducklake_flush_inlined_data('team')").fetchall()
        except duckdb.Error:
            pass

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], Any], timeout: float = 120.0) -> Any:
        """Run ``fn(con)`` in one transaction, retried on conflicts (push and pull use it)."""
        with self.connect(timeout=timeout) as con:
            return retrying(lambda: migrations.in_transaction(con, fn), timeout)

    def maintain(self, keep_days: float = 7.0) -> list[str]:
        """Tidy the lake; one line per step. Orphans (files of writers that crashed before commit) are
        only removed after an hour, so a writer still committing never loses its files."""
        steps = [
            ("inlined rows written to Parquet", "CALL ducklake_flush_inlined_data('team')"),
            ("small files merged", "CALL ducklake_merge_adjacent_files('team')"),
            (f"snapshots older than {keep_days:g} days expired",
             f"CALL ducklake_expire_snapshots('team', older_than => now() - INTERVAL '{float(keep_days)} days')"),
            ("files of expired snapshots deleted", "CALL ducklake_cleanup_old_files('team', cleanup_all => true)"),
            ("orphaned files older than an hour deleted",
             "CALL ducklake_delete_orphaned_files('team', older_than => now() - INTERVAL '1 hour')"),
        ]
        out = []
        with self.connect() as con:
            for label, sql in steps:
                rows = con.execute(sql).fetchall()
                out.append(f"{label}: {len(rows)}")
        return out

    # -- what the rest of nbtrack calls ------------------------------------------------------------------
    def exists(self) -> bool:
        return True

    def signature(self) -> tuple[Any, ...]:
        """The catalog's latest snapshot id and the local spool: changes whenever anyone commits a run."""
        pending = tuple(p.name for p in self.spool.pending())
        try:
            con = self._cursor()
            try:
                snapshot = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('team')").fetchall()[0][0]
            finally:
                con.close()
        except (duckdb.Error, StoreError):
            snapshot = None
        return (pending, snapshot)

    def sync(self, blocking: bool = True) -> bool:
        """Send the spool to the lake; when PostgreSQL is out of reach, keep the runs in the local store.

        Always waits for another importer on this machine (imports take milliseconds, and giving up
        could leave a script's last run in the spool when it exits)."""
        if not self.spool.pending() and self._migrated:
            return True
        if self.read_only:
            return self._keep_locally("this connection is read-only")
        try:
            with self.connect():
                pass
        except TeamUnreachableError as e:
            return self._keep_locally(str(e))
        if self.fallback is not None:
            self.fallback = None
            warn(f"the team store {self.path} is reachable again; runs kept in {self.local.path} meanwhile go "
                 "there with: nbtrack push")
        return True

    def _keep_locally(self, why: str) -> bool:
        """Import the spool into the local file store; say so once per outage."""
        if self.fallback is None:
            warn(f"{why}; runs are kept in {self.local.path} (send them later with: nbtrack push --to "
                 f"'{self.path}')")
        self.fallback = why
        with self._spool_locked(30.0), self.local.connect() as con:   # the local store's own spool first
            import_spool(con, self.spool)
        return True


class TeamUnreachableError(StoreError):
    """PostgreSQL behind a team store cannot be reached."""


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else text
