"""Query results out of DuckDB as pandas or Arrow, the fast way for the DuckDB version installed."""
from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import duckdb

if TYPE_CHECKING:   # imported where a frame is made: `import nbtrack` does not pay for pandas
    import pandas as pd
    import pyarrow as pa

_QUIET = threading.Lock()
# DuckDB 1.x runs a relation that has parameters twice (con.sql(q, params=...) took 0.68 s where
# execute() took 0.36 s, sorting 10^6 run ids); DuckDB 2 warns that Arrow from execute() is one more
# copy of the rows, and its relations run once (both 0.25 s)
_RELATION_PARAMS_SLOW = int(duckdb.__version__.split(".")[0]) < 2


def fetch_df(cursor: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``cursor.df()`` without the pandas deprecation warnings some DuckDB versions trigger inside it
    (DuckDB 1.5 calls ``DataFrame.drop(inplace=True)``, deprecated in pandas 3.1): they are not the
    user's to fix, and would be attributed to nbtrack. Under a lock: ``catch_warnings`` swaps the
    process-wide filters, and two threads in it at once restore each other's (seen: the panel's
    refresh and a read on another thread, and the warning came through)."""
    with _QUIET, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return cursor.df()


def arrow(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
    """The query's rows as one Arrow table."""
    if params and _RELATION_PARAMS_SLOW:
        return con.execute(query, params).to_arrow_table()
    return con.sql(query, params=params or None).to_arrow_table()


def plain_df(con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
    """A query of plain columns (text, ints, floats) as pandas, through Arrow: pandas 3 keeps Arrow's text as
    its own, where ``df()`` makes a Python string of every value first (the curves of 100 runs, 181,620
    points: 335 -> 154 ms). Not for timestamps or lists, whose pandas types the two paths make differently."""
    return arrow(con, query, params).to_pandas()


def text(i: int) -> str:
    """The SQL that reads text ``i`` of ``arrow_texts`` (where another query would have a ``?``)."""
    return f"getvariable('nbt_text_{int(i)}')"


def arrow_texts(con: duckdb.DuckDBPyConnection, query: str, texts: Sequence[str],
                params: Sequence[Any] | None = None) -> pa.Table:
    """The rows of a big result as one Arrow table, for a query that reads texts (keys) as ``text(i)`` and
    may have ``params`` too. The texts are bound as the connection's variables, which DuckDB folds as
    constants as it does literals, so that a query without other parameters runs as a relation: with
    DuckDB 1.x, execute() holds the whole result before Arrow gets it, and a relation with parameters
    runs twice (a metric's values over 10^6 runs: 110 ms, 1.3 s; this way 70)."""
    for i, value in enumerate(texts):
        con.execute(f"SET VARIABLE nbt_text_{i} = ?::VARCHAR", [value])
    return arrow(con, query, params)
