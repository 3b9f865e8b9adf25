"""Opening a DuckLake catalog offline and safely: packaged extensions, the password, retries.

DuckDB extensions are never downloaded: they are loaded from the
``duckdb-extension-*`` packages (the ``team`` extra), which are built for one
exact DuckDB version and ship no loader of their own. A password in the URL
never reaches DuckDB: it is moved into a private ``passfile`` for libpq.
"""
from __future__ import annotations

import atexit
import importlib
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import duckdb

from ..retry import retry
from ..errors import StoreError
from ..secrets import KV_PASSWORD, URL_PASSWORD
from . import objectstore
from .base import PREFIX

INSTALL_HINT = "pip install 'nbtrack[team]'"
# One run's batch (a runs row, its params, metrics, displays, a downsampled curve) stays inlined in the
# catalog instead of becoming its own tiny Parquet file; writers and `nbtrack maintain` flush them later.
INLINE_ROWS = 1000
CONNECT_TIMEOUT_S = 5
# (package, file in the package, name DuckDB loads it by)
EXTENSIONS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake", "ducklake"),
    "postgres": ("duckdb_extension_postgres", "postgres", "postgres_scanner"),
    "httpfs": ("duckdb_extension_httpfs", "httpfs", "httpfs"),   # s3:// data paths (objectstore.py)
}


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password (keyword or URI form), if it had one."""
    m = KV_PASSWORD.search(url)
    if m:
        value = m.group("value")
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return (url[:m.start()] + url[m.end():]).strip().replace("  ", " "), value
    m = URL_PASSWORD.search(url)
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


def catalog(url: str) -> str:
    """The catalog part of a team URL as DuckDB is given it: no password (a passfile instead), a timeout."""
    base, password = split_password(url[len(PREFIX):])
    if not base.startswith("postgres:"):
        return base
    extra = {}
    if "connect_timeout" not in base:
        extra["connect_timeout"] = str(CONNECT_TIMEOUT_S)
    if password is not None:
        extra["passfile"] = str(_passfile(password))
    for key, value in extra.items():   # libpq's keyword form, or query parameters of a URI
        base += f" {key}={value}" if "://" not in base else f"{'&' if '?' in base else '?'}{key}={value}"
    return base


def open_lake(catalog_text: str, data_path: str | None, read_only: bool, sandbox: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the extensions loaded and the lake attached as ``team``; read-only and
    ``sandbox``: locked so that no SQL can reach a file outside the lake's data path or change that."""
    # httpfs always: a reader learns the data path (maybe s3://) from the catalog, after attaching
    needed = (["postgres"] if catalog_text.startswith("postgres:") else []) + ["httpfs", "ducklake"]
    files = _extensions.files(needed)
    s3 = objectstore.secret_options()
    db = duckdb.connect(config={"extension_directory": str(_extensions.dir),
                                "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    options = []
    if data_path:
        options.append(f"DATA_PATH '{quote(data_path.rstrip('/') + '/')}'")
    if read_only:
        options.append("READ_ONLY")
    else:  # per attach, so every writer inlines whatever the catalog's stored default
        options.append(f"DATA_INLINING_ROW_LIMIT {INLINE_ROWS}")
    attach = f"ATTACH '{quote(PREFIX + catalog_text)}' AS team ({', '.join(options)})"
    try:
        for file in files:
            db.execute(f"LOAD '{quote(str(file))}'")
        if s3 is not None:
            db.execute(objectstore.create_secret_sql(s3))
        # DuckLake retries a failed commit when the error text holds "conflict", "unique" or "concurrent",
        # and that text quotes the inlined rows: a run named "conflict" retries any failure (a read-only
        # role's permission error too). So its retries are bounded in time (at most 12.6 s of sleep:
        # 20 ms x 1.3^i, 20 times) and real conflicts beyond that go to retrying(), which reads no data.
        db.execute("SET ducklake_max_retry_count = 20")
        db.execute("SET ducklake_retry_wait_ms = 20")
        db.execute("SET ducklake_retry_backoff = 1.3")
        # writers meeting an empty catalog all create its tables; losers retry
        retry(lambda: db.execute(attach), when=_lost_the_creation, attempts=8, delay=0.05, factor=1.5, max_delay=0.5)
        if read_only and sandbox:
            rows = db.execute("SELECT value FROM ducklake_options('team') WHERE option_name = 'data_path'").fetchall()
            folders = ", ".join(f"'{quote(r[0])}'" for r in rows if r[0])
            db.execute(f"SET allowed_directories = [{folders}]")
            db.execute("SET enable_external_access = false")
            db.execute("SET lock_configuration = true")
    except BaseException:
        db.close()
        raise
    return db


def retrying(fn: Callable[[], Any], timeout: float) -> Any:
    """``fn()``, again with backoff while it fails on a transaction conflict, until ``timeout``."""
    return retry(fn, when=lambda e: isinstance(e, duckdb.Error) and conflict(e), timeout=timeout)


def _lost_the_creation(e: Exception) -> bool:
    low = error_parts(e)[1].lower() if isinstance(e, duckdb.Error) else ""
    return "duplicate key" in low or "already exists" in low


_QUERY = 'Failed to execute query "'


def error_parts(exc: BaseException) -> tuple[str, str]:
    """(DuckDB's own words, the server's words) of a team-store error, without the SQL a failed catalog
    query quotes: that SQL holds stored runs' text, so no word in it may decide what the error means.

    DuckDB's words come before the quoted query; the server's after its end (the last ``": ``), from
    PostgreSQL's ``ERROR:``/``FATAL:`` where there is one. An error without a query (a failed login)
    is all DuckDB's words, the server's being what follows its last ``failed:``."""
    text = str(exc)
    at = text.find(_QUERY)
    if at >= 0:
        end = text.rfind('": ')
        head, server = text[:at], (text[end + 3:] if end > at else "")
    else:
        head, server = text, ""
        for marker in ("FATAL:", "ERROR:", " failed: "):
            found = text.rfind(marker)
            if found >= 0:
                server = text[found:].removeprefix(" failed: ")
                break
    for marker in ("ERROR:", "FATAL:"):
        found = server.find(marker)
        if found >= 0:
            server = server[found:]
            break
    lines = server.strip().splitlines()
    return head, " ".join(lines[0].split()) if lines else ""


def unreachable(exc: BaseException) -> bool:
    """PostgreSQL could not be reached (as opposed to: it answered with an error)."""
    if not isinstance(exc, duckdb.Error):
        return False
    head, server = error_parts(exc)
    low = server.lower() if server else head.lower()
    answered = low.startswith(("error:", "fatal:")) and "terminating connection" not in low
    if answered or "password" in low or "authentication" in low or "does not exist" in low:
        return False   # the server answered: a wrong URL or credentials, which waiting will not fix
    words = (head + " " + server).lower()
    if objectstore.refused(head):   # the object store answered: credentials, which waiting will not fix
        return False
    if objectstore.unreachable(head):
        return True
    return any(s in words for s in ("unable to connect", "could not connect", "connection refused",
                                    "server closed the connection", "timeout expired", "no route to host",
                                    "could not translate host name", "terminating connection",
                                    "connection reset", "ssl negotiation", "server conn crashed",
                                    "could not receive data", "could not send data", "no connection to the server"))


def conflict(exc: BaseException) -> bool:
    """A transaction conflict, which a retry resolves (DuckLake's own, or PostgreSQL's serialization)."""
    if not isinstance(exc, (duckdb.TransactionException, duckdb.Error)) or isinstance(exc, _NOT_CONFLICTS):
        return False
    head, server = error_parts(exc)
    return "conflict" in head.lower() or "could not serialize" in server.lower() or "deadlock" in server.lower()


# errors of a statement's content: never a conflict, whatever their text says
_NOT_CONFLICTS = (duckdb.ConstraintException, duckdb.ConversionException, duckdb.BinderException,
                  duckdb.CatalogException, duckdb.ParserException)


def quote(text: str) -> str:
    return text.replace("'", "''")
