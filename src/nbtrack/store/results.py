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
