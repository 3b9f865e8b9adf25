"""Named, recorded forward migrations, applied in one transaction when a store opens."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb

from .. import __version__
from ..errors import NotAStoreError, StoreVersionError
from . import queries, schema

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_initial", schema.INITIAL),
    ("0002_metric_curves", schema.CURVES.format(
        backfill=queries.downsample_sql("SELECT run_id, key, step, value FROM metric_history"))),
    ("0003_repro", schema.REPRO),
    ("0004_sweeps", schema.SWEEPS),
    ("0005_saved_outputs", schema.SAVED),
]
KNOWN = {name for name, _ in MIGRATIONS}


def check(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    """Raise when the file is not a store or is newer than this code; return pending migrations."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'main'").fetchall()}
    if "schema_migrations" not in tables:
        if tables:
            msg = (f"{path} is a DuckDB file but not an nbtrack store (it has no schema_migrations "
                   "table); point NBTRACK_STORE or --store at another path")
            raise NotAStoreError(msg)
        return [name for name, _ in MIGRATIONS]
    names = [r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()]
    unknown = sorted(n for n in names if n not in KNOWN)
    if unknown:
        msg = (f"{path} was written by a newer nbtrack (migration {unknown[-1]} is unknown to "
               f"nbtrack {__version__}); upgrade with: pip install -U nbtrack")
        raise StoreVersionError(msg)
    return [name for name, _ in MIGRATIONS if name not in names]


def migrate(con: duckdb.DuckDBPyConnection, path: str, team: bool = False) -> None:
    """Apply pending migrations; a store that is already current costs one catalog query.

    ``team``: the DDL for DuckLake, which has no PRIMARY KEY or UNIQUE constraints (the importer
    replaces rows by run id and skips known hashes, so the constraints only guard the file store)."""
    pending = check(con, path)
    if not pending:
        return
    now = datetime.now(timezone.utc)
    con.execute("BEGIN TRANSACTION")
    try:
        for name, ddl in MIGRATIONS:
            if name in pending:
                con.execute(_without_keys(ddl) if team else ddl)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [name, now, __version__])
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open: a failed COMMIT (a DuckLake conflict) already ended it,
    and the error to raise is the conflict, not "no transaction is active"."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def in_transaction(con: duckdb.DuckDBPyConnection, fn: Any) -> Any:
    """``fn(con)`` between BEGIN and COMMIT, rolled back if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        result = fn(con)
        con.execute("COMMIT")
        return result
    except BaseException:
        rollback(con)
        raise


def _without_keys(ddl: str) -> str:
    return ddl.replace(" PRIMARY KEY", "")
