"""The team store: the same tables in a DuckLake (catalog in PostgreSQL, data as Parquet in a shared path).

A file store allows one writer process at a time; DuckLake lets many
machines commit to one catalog, with optimistic transactions that DuckLake
retries on conflict. Cells still write only their local spool (spool.py): the
background import sends it to the lake, and when PostgreSQL cannot be reached
it imports into the local file store instead, so a cell never fails and
``nbtrack push`` sends those runs later.

DuckDB extensions are never downloaded: they are loaded from the
``duckdb-extension-*`` packages (the ``team`` extra), which are built for one
exact DuckDB version. A password in the URL never reaches DuckDB: it is moved
into a private ``passfile`` for libpq, and every URL nbtrack prints is redacted.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ..errors import StoreError, StoreVersionError, warn
from ..recorder.secrets import URL_PASSWORD as URI_PASSWORD
from ..recorder.secrets import KV_PASSWORD
from ..recorder.secrets import redact_passwords as redact
from . import migrations
from .migrations import rollback
from .base import PREFIX, Store, is_team_url
from .importer import import_spool
from .spool import Spool

INSTALL_HINT = "pip install 'nbtrack[team]'"
# One run's batch (a runs row, its params, metrics, displays, a downsampled curve) stays inlined in the
# catalog instead of becoming its own tiny Parquet file; `nbtrack maintain` flushes them to Parquet.
INLINE_ROWS = 1000
CONNECT_TIMEOUT_S = 5
FLUSH_COMMITS = 1000   # commits of inlined rows after which an importer flushes them to Parquet
# (package, file in the package, name DuckDB loads it by)
EXTENSIONS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake", "ducklake"),
    "postgres": ("duckdb_extension_postgres", "postgres", "postgres_scanner"),
}



def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password (keyword or URI form), if it had one."""
    m = KV_PASSWORD.search(url)
    if m:
        value = m.group("value")
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return (url[:m.start()] + url[m.end():]).strip().replace("  ", " "), value
    m = URI_PASSWORD.search(url)
    if m:
        from urllib.parse import unquote

        return url[:m.start("pw") - 1] + url[m.end("pw"):], unquote(m.group("pw"))
    return url, None


class _Extensions:
    """Symlinks to the packaged extension files under the names DuckDB loads them by, made once per process."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._guard = threading.Lock()

    def files(self, names: list[str]) -> list[Path]:
        with self._guard:
            if self._dir is None:
                self._dir = _private_dir("nbtrack-ext-")
            out = []
            for name in names:
                package, stem, load_name = EXTENSIONS[name]
                link = self._dir / f"{load_name}.duckdb_extension"
                if not link.exists():
                    link.symlink_to(_packaged(name, package, stem))
                out.append(link)
            return out

    @property
    def dir(self) -> Path:
        assert self._dir is not None
        return self._dir


def _packaged(name: str, package: str, stem: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise StoreError(f"the team store needs DuckDB's {name} extension, which is not installed; "
                         f"install it with: {INSTALL_HINT}") from None
    root = Path(module.__file__).parent / "extensions"
    wanted = root / f"v{duckdb.__version__}" / f"{stem}.duckdb_extension"
    if not wanted.exists():
        built = ", ".join(sorted(p.name.lstrip("v") for p in root.glob("v*"))) or "no version"
        raise StoreError(f"the installed {package.replace('_', '-')} is built for DuckDB {built}, but DuckDB "
                         f"{duckdb.__version__} is installed; DuckDB loads only extensions built for its exact "
                         f"version: {INSTALL_HINT} (it pins matching versions)")
    return wanted


_extensions = _Extensions()
_made: list[Path] = []


def _private_dir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    _made.append(folder)
    return folder


@atexit.register   # registered on import, before the recorder's exit flush, so it runs after it
def _remove_private_dirs() -> None:
    for folder in _made:
        shutil.rmtree(folder, ignore_errors=True)


def _passfile(password: str) -> Path:
    """A private libpq password file, so the password is never part of a string DuckDB keeps."""
    path = _private_dir("nbtrack-pg-") / "pgpass"
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"*:*:*:*:{escaped}\n")
    return path


def _unreachable(text: str) -> bool:
    low = text.lower()
    if "password" in low or "authentication" in low or "does not exist" in low:
        return False   # the server answered: a wrong URL or credentials, which waiting will not fix
    return any(s in low for s in ("unable to connect", "could not connect", "connection refused",
                                  "server closed the connection", "connection to server", "timeout expired",
                                  "no route to host", "could not translate host name", "terminating connection",
                                  "connection reset", "ssl negotiation", "server conn crashed"))


def _conflict(text: str) -> bool:
    low = text.lower()
    return "conflict" in low or "could not serialize" in low or "deadlock" in low


class TeamStore(Store):
    """A DuckLake team store at ``url``, with a local spool and a local file store as its fallback."""

    def __init__(self, url: str | None = None, *, data_path: str | os.PathLike[str] | None = None,
                 read_only: bool = False, local: Any = None) -> None:
        url = url if url is not None else os.environ.get("NBTRACK_STORE")
        if not is_team_url(url):
            raise StoreError(f"not a team store URL: {redact(str(url))!r}; it starts with 'ducklake:', e.g. "
                             "ducklake:postgres:dbname=runs host=db user=me")
        from . import FileStore  # the local file store, for the fallback

        self.url = url
        self.path = redact(url)               # what nbtrack prints and compares; never the password
        raw_data = data_path if data_path is not None else os.environ.get("NBTRACK_DATA_PATH")
        self.data_path = str(Path(raw_data).expanduser().absolute()) if raw_data else None
        self.read_only = read_only
        self.local = local if local is not None else FileStore(_local_default())
        # one spool per user and team store on this machine, whatever the working directory, so any
        # nbtrack process that reaches the store sends what an earlier one left behind
        digest = hashlib.sha256(self.path.encode()).hexdigest()[:12]
        self.spool = Spool(_cache_dir() / f"team-{digest}.spool")
        self.lock_path = _cache_dir() / f"team-{digest}.lock"
        self.fallback: str | None = None      # why the last import went to the local store, if it did
        self._db: duckdb.DuckDBPyConnection | None = None
        self._guard = threading.Lock()
        self._migrated = False
        self._sql: str | None = None

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
    def _attach_sql(self) -> str:
        base, password = split_password(self.url[len(PREFIX):])
        if base.startswith("postgres:") and "connect_timeout" not in base:
            base += f" connect_timeout={CONNECT_TIMEOUT_S}" if "://" not in base else \
                f"{'&' if '?' in base else '?'}connect_timeout={CONNECT_TIMEOUT_S}"
        if password is not None and base.startswith("postgres:"):
            file = _passfile(password)
            base += f" passfile={file}" if "://" not in base else f"{'&' if '?' in base else '?'}passfile={file}"
        options = []
        if self.data_path:
            options.append(f"DATA_PATH '{_quote(self.data_path.rstrip('/') + '/')}'")
        if self.read_only:
            options.append("READ_ONLY")
        else:  # per attach, so every writer inlines whatever the catalog's stored default
            options.append(f"DATA_INLINING_ROW_LIMIT {INLINE_ROWS}")
        extra = f" ({', '.join(options)})" if options else ""
        return f"ATTACH '{_quote(PREFIX + base)}' AS team{extra}"

    def _database(self) -> duckdb.DuckDBPyConnection:
        with self._guard:
            if self._db is not None:
                return self._db
            needed = ["postgres", "ducklake"] if self.url.startswith(PREFIX + "postgres:") else ["ducklake"]
            files = _extensions.files(needed)
            db = duckdb.connect(config={"extension_directory": str(_extensions.dir),
                                        "autoinstall_known_extensions": False,
                                        "autoload_known_extensions": False})
            try:
                for file in files:
                    db.execute(f"LOAD '{_quote(str(file))}'")
                db.execute("SET ducklake_max_retry_count = 30")
                db.execute("SET ducklake_retry_wait_ms = 20")
                db.execute("SET ducklake_retry_backoff = 1.6")
                self._attach(db)
            except duckdb.Error as e:
                db.close()
                raise self._explain(e) from None
            self._db = db
            return db

    def _attach(self, db: duckdb.DuckDBPyConnection) -> None:
        """ATTACH; writers that meet an empty catalog all create DuckLake's tables, and the losers retry."""
        if self._sql is None:
            self._sql = self._attach_sql()
        sql = self._sql
        for attempt in range(8):
            try:
                db.execute(sql)
                return
            except duckdb.Error as e:
                low = str(e).lower()
                if attempt == 7 or not ("duplicate key" in low or "already exists" in low):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _drop(self) -> None:
        with self._guard:
            if self._db is not None:
                try:
                    self._db.close()
                except duckdb.Error:
                    pass
                self._db = None
                self._migrated = False

    def _explain(self, exc: BaseException) -> StoreError:
        text = redact(str(exc))
        if _unreachable(text):
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
        con = self._cursor()
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

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        db = self._database()
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
            from ..errors import NotAStoreError

            raise NotAStoreError(f"the team store {self.path} is empty: no run has been pushed or recorded yet")
        if pending:
            raise StoreVersionError(f"the team store {self.path} needs migrations {', '.join(pending)}; open it "
                                    "once without read_only (a role that may write) to apply them")
        self._migrated = True

    def _import(self, con: duckdb.DuckDBPyConnection, spool: Spool, timeout: float) -> int:
        """Migrate and import ``spool`` in one transaction, retrying DuckLake's conflicts with backoff.

        The processes of one machine share the spool: a sidecar lock lets one of them import at a time
        (it takes everyone's files in one transaction), as for a file store."""
        from .lock import FileLock

        lock = FileLock(self.lock_path)
        lock.acquire(timeout=timeout)
        try:
            return self._import_locked(con, spool, timeout)
        finally:
            lock.release()

    def _import_locked(self, con: duckdb.DuckDBPyConnection, spool: Spool, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            try:
                if not self._migrated:
                    migrations.migrate(con, self.path, team=True)
                    self._migrated = True
                n = import_spool(con, spool)
                if n:
                    self._flush_if_due(con)
                return n
            except duckdb.Error as e:
                if not _conflict(str(e)) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

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

    def write(self, fn: Any, timeout: float = 120.0) -> Any:
        """Run ``fn(con)`` in one transaction, retried on conflicts (push and maintenance use it)."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        with self.connect(timeout=timeout) as con:
            while True:
                try:
                    con.execute("BEGIN TRANSACTION")
                    try:
                        result = fn(con)
                        con.execute("COMMIT")
                        return result
                    except BaseException:
                        rollback(con)
                        raise
                except duckdb.Error as e:
                    if not _conflict(str(e)) or time.monotonic() > deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)

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
        from .lock import FileLock

        spool_lock = FileLock(self.lock_path)
        spool_lock.acquire(timeout=30.0)
        try:
            with self.local.connect() as con:   # imports the local store's own spool first
                import_spool(con, self.spool)
        finally:
            spool_lock.release()
        return True


class TeamUnreachableError(StoreError):
    """PostgreSQL behind a team store cannot be reached."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nbtrack"


def _local_default() -> Path:
    return Path(os.path.abspath(Path(".nbtrack") / "runs.duckdb"))


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[0].split()) if text.strip() else text
