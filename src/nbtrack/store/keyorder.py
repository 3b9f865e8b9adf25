"""``metrics_by_key``: every row of ``metrics`` as its key, its run's start and its value, in key order.

A filter's term (``metrics.acc > 0.9``) and a column's sort keys read one key's rows of every run. In
``metrics``, kept in the order runs are imported (store/locality.py), every row group holds every key:
the read compared all 15 million keys of 10^6 runs. Here a key's rows fill row groups of their own,
whose min and max key let DuckDB skip the others: a term 60 -> 24 ms, a metric's sort keys 73 -> 18 ms,
for 34 MB beside the 132 MB of ``metrics``. (Ordering ``metrics`` itself by key was measured and
rejected: one run's rows then lie in one row group per key, and ``get`` took 26 ms instead of 15.)

Not a cache with a watermark, but a mirror: every write of ``metrics`` rows (import, pull, ``gc``) does
the same here, in its transaction (``deleted``, ``added``), so the copy holds what ``metrics`` holds
whenever it is read. Its rows carry no run id: a start that runs share (``shared_starts``) is read from
``metrics`` by id, and the copy's rows of it are never read. Rows appended since the last sort sit
at the end, every key mixed; past ``SORT_AFTER`` of them, that end is sorted again (``_sort_tail``).

A team store, whose writers commit side by side, has a view of ``metrics`` of the same name; so does a
store opened read-only from before this table (``STAND_IN``): their reads are those of ``metrics``.
"""
from __future__ import annotations

import duckdb

from . import locality

TABLE = locality.BY_KEY["metrics"]
STATE = "metrics_by_key_state"
_VIEW = "SELECT key, started_us, value FROM metrics"
STAND_IN = f"CREATE TEMP VIEW {TABLE} AS {_VIEW}"
# rows appended in key disorder before the end is sorted: at 15 metrics a run, about 130,000 runs, one
# row group per key once sorted (a sort of 2 M rows: about 0.4 s, once)
SORT_AFTER = 2_000_000
_LEAST = -(2 ** 63)


def migration(con: duckdb.DuckDBPyConnection, team: bool) -> None:
    """0014: the copy, sorted, in a file store (about 3 s at 10^6 runs, once); a view in a team store."""
    if team:
        con.execute(f"CREATE VIEW {TABLE} AS {_VIEW}")
        return
    con.execute(f"CREATE TABLE {TABLE} (key VARCHAR NOT NULL, started_us BIGINT, value DOUBLE)")
    con.execute(f"CREATE TABLE {STATE} (sorted_us BIGINT NOT NULL, appended BIGINT NOT NULL)")
    con.execute(f"INSERT INTO {STATE} VALUES ({_LEAST}, 0)")
    _sort_tail(con)


def kept(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this store keeps the copy (a file store does; a team store has a view)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                            f"AND table_name = '{STATE}'").fetchall()[0][0])


def deleted(con: duckdb.DuckDBPyConnection, us: list[int]) -> None:
    """After ``metrics``' rows of the runs that started at ``us`` were deleted: theirs here too. A start
    that runs share loses every run's rows here; it is read from ``metrics`` by id (see above)."""
    if us and kept(con):
        con.execute(f"DELETE FROM {TABLE} t WHERE t.started_us IN ({locality.inlined(us)})")


def added(con: duckdb.DuckDBPyConnection, rows: str) -> None:
    """After the rows of query ``rows`` (``key``, ``started_us``, ``value``) were inserted into ``metrics``:
    the same here, and the end sorted once it has grown past SORT_AFTER rows."""
    if not kept(con):
        return
    n = con.execute(f"INSERT INTO {TABLE} SELECT key, started_us, value FROM ({rows})").fetchall()[0][0]
    appended = con.execute(f"UPDATE {STATE} SET appended = appended + ? RETURNING appended", [n]).fetchall()[0][0]
    if appended > SORT_AFTER:
        _sort_tail(con)


def _sort_tail(con: duckdb.DuckDBPyConnection) -> None:
    """Rows of starts past the last sort, again, in key order, from ``metrics`` (a row appended since with
    an earlier start, from a long run imported late, stays where it is: right, only not in order)."""
    since = con.execute(f"SELECT sorted_us FROM {STATE}").fetchall()[0][0]
    con.execute(f"DELETE FROM {TABLE} WHERE started_us > {int(since)}")
    con.execute(f"INSERT INTO {TABLE} SELECT key, started_us, value FROM metrics WHERE started_us > {int(since)} "
                "ORDER BY key, started_us")
    last = con.execute(f"SELECT max(started_us) FROM {TABLE}").fetchall()[0][0]
    con.execute(f"UPDATE {STATE} SET sorted_us = ?, appended = 0", [max(int(since), last or _LEAST)])


def drift(con: duckdb.DuckDBPyConnection) -> int:
    """How many rows of starts no two runs share differ between the copy and ``metrics`` (0: in step)."""
    plain = f"WHERE started_us NOT IN (SELECT us FROM {locality.SHARED})"
    return con.execute(f"""SELECT count(*) FROM (
        (SELECT key, started_us, value FROM metrics {plain} EXCEPT ALL SELECT key, started_us, value FROM {TABLE} {plain})
        UNION ALL
        (SELECT key, started_us, value FROM {TABLE} {plain} EXCEPT ALL SELECT key, started_us, value FROM metrics {plain}))
        """).fetchall()[0][0]


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """The whole copy again from ``metrics``, in key order (after a write that did not keep it)."""
    con.execute(f"DELETE FROM {TABLE}")
    con.execute(f"UPDATE {STATE} SET sorted_us = {_LEAST}, appended = 0")
    _sort_tail(con)
