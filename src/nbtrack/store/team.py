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
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import duckdb

from ..errors import NotAStoreError, StoreError, StoreVersionError, warn
from ..secrets import redact_passwords as redact
from . import gc, migrations, objectstore
from .base import Store, is_team_url
from .ducklake import catalog, error_parts, open_lake, retrying, split_password, unreachable
from .importer import import_spool
from .lock import held
from .transaction import in_transaction
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
        from .file import DEFAULT_RELATIVE, FileStore  # the local file store, for the fallback

        self.url = url
        self.path = redact(url)               # what nbtrack prints and compares; never the password
        raw_data = data_path if data_path is not None else os.environ.get("NBTRACK_DATA_PATH")
        if raw_data and not objectstore.is_remote(str(raw_data)):
            raw_data = str(Path(raw_data).expanduser().absolute())
        self.data_path = str(raw_data) if raw_data else None
        self.read_only = read_only
        self.local = local if local is not None else FileStore(DEFAULT_RELATIVE)
        # one spool per user and team store on this machine, whatever the working directory, so any
        # nbtrack process that reaches the store sends what an earlier one left behind
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nbtrack"
        digest = hashlib.sha256(self.path.encode()).hexdigest()[:12]
        self.spool = Spool(cache / f"team-{digest}.spool")
        self.lock_path = cache / f"team-{digest}.lock"
        self.fallback: str | None = None      # why the last import went to the local store, if it did
        self._dbs: dict[tuple[bool, bool], duckdb.DuckDBPyConnection] = {}   # (read_only, allow_files) -> lake
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
    def _database(self, read_only: bool, allow_files: bool = False) -> duckdb.DuckDBPyConnection:
        """The lake attached read-write, or read-only (then even SQL a user types cannot write, nor touch a
        file outside the lake's data path unless ``allow_files``), one of each per process."""
        read_only = read_only or self.read_only
        mode = (read_only, read_only and allow_files)
        with self._guard:
            if mode not in self._dbs:
                if self._catalog is None:
                    self._catalog = catalog(self.url)   # once: it writes the passfile
                try:
                    self._dbs[mode] = open_lake(self._catalog, self.data_path, read_only, sandbox=not mode[1])
                except duckdb.Error as e:
                    raise self._explain(e) from None
            return self._dbs[mode]

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
        """The one line for a failure of the team store, decided by the exception's type and by DuckDB's and
        PostgreSQL's own words (ducklake.error_parts), never by SQL text, which holds stored runs' text."""
        head, server = error_parts(exc)
        head, server = redact(head), redact(server)
        first = _first_line(head)
        if isinstance(exc, duckdb.InvalidInputException) and "data_path is not set" in first:
            return StoreError(f"the team store {self.path} has no data path yet: set NBTRACK_DATA_PATH or pass "
                              "data_path= (a folder every writer can reach) to create it")
        refusal = objectstore.explain(head)
        if refusal:
            return StoreError(refusal)
        if objectstore.unreachable(head):
            return TeamUnreachableError(f"cannot reach the object store of the team store {self.path}: {first}; "
                                        "check that the endpoint (AWS_ENDPOINT_URL) is up")
        if unreachable(exc):
            return TeamUnreachableError(f"cannot reach the team store {self.path}: {server or first}; check "
                                        "that PostgreSQL is up and the URL is right")
        low = server.lower()
        if "authentication failed" in low or "password" in low and "fatal" in low:
            return StoreError(f"the team store {self.path} refused the login: {server}; check the user and "
                              "password (in the URL, $PGPASSWORD or ~/.pgpass)")
        if "does not exist" in low and "database" in low:
            return StoreError(f"the team store {self.path} names a database that does not exist: {server}; "
                              "create it (createdb NAME) or fix dbname= in the URL")
        if "permission denied" in low or "read-only" in low or "read only" in low:
            return StoreError(f"the team store {self.path} refused a write: {server}; this role or "
                              "connection may only read")
        if isinstance(exc, duckdb.IOException) and self.data_path and first.startswith(
                ("IO Error: Failed to create directory", "IO Error: Cannot open file", "IO Error: Could not write")):
            reason = first.rsplit(": ", 1)[-1]
            return StoreError(f"cannot write the team store's data path {self.data_path}: {reason}; give every "
                              "writer a folder it can write (NBTRACK_DATA_PATH)")
        return StoreError(f"team store {self.path}: {server or first}")

    @contextmanager
    def connect(self, read_only: bool = False, timeout: float = 30.0,
                allow_files: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the team catalog for one operation; a writable one sends the spool first."""
        read_only = read_only or self.read_only
        con = self._cursor(read_only, allow_files)
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

    def _cursor(self, read_only: bool = False, allow_files: bool = False) -> duckdb.DuckDBPyConnection:
        db = self._database(read_only, allow_files)
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
        with held(self.lock_path, timeout):
            yield

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
            return retrying(lambda: in_transaction(con, fn), timeout)

    def collect(self, before: datetime | None = None, dry_run: bool = False) -> list[str]:
        """Remove runs deleted before ``before`` for good, in one transaction; the lake's files are freed
        by ``maintain`` once the snapshots that still see the rows expire."""
        with self.connect() as con:
            ids = gc.deleted_before(con, before)
            if dry_run or not ids:
                found = gc.measure(con, ids)
            else:
                found = retrying(lambda: in_transaction(con, lambda c: gc.remove(c, ids)), 120.0)
        lines = gc.report(found, str(self.path), dry_run, None, None)
        if ids and not dry_run:
            lines.append(f"{self.path}: the data files of these rows are deleted by nbtrack maintain once the "
                         "snapshots that still see them expire (--keep-days)")
        return lines

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
