"""One transaction helper for every store: BEGIN, COMMIT, or ROLLBACK on any error."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block between BEGIN and COMMIT, rolled back if it raises (KeyboardInterrupt too)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def in_transaction(con: duckdb.DuckDBPyConnection, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
    """``fn(con)`` in one transaction (a callable, for ``retry``)."""
    with transaction(con):
        return fn(con)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open: a failed COMMIT (a DuckLake conflict) already ended it,
    and the error to raise is the conflict, not "no transaction is active"."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass
