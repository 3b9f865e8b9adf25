"""``metrics_by_key`` and ``params_by_key``: the rows of ``metrics`` and ``params`` again, in key order.

A filter's term (``metrics.acc > 0.9``, ``params.model = 'rf'``) and a column's sort keys read one key's
rows of every run. In ``metrics`` and ``params``, kept in the order runs are imported (store/locality.py),
every row group holds every key: the read compared all 15 million keys of 10^6 runs. In a copy a key's
rows fill row groups of their own, whose min and max key let DuckDB skip the others. At 10^6 runs, on
a fresh connection: a metric's term 145-160 -> 49-53 ms and its sort keys 157-159 -> 38-40 ms, a float
param's sort keys 179-182 -> 51-55 ms, for 35 MB beside each table's ~137 MB. Ordering the tables themselves by key was measured and
rejected: one run's rows then lie in one row group per key, and ``get`` took 26 ms instead of 15.

Not a cache with a watermark, but a mirror: every write of these tables' rows (import, pull, ``gc``)
does the same to the copy, in its transaction (``deleted``, ``added``), so the copy holds what the table
holds whenever it is read. Its rows carry no run id: a start that runs share (``shared_starts``) is read
from the table itself by id, and the copy's rows of it are never read. Rows appended since the last
sort sit at the end, every key mixed; past ``SORT_AFTER`` of them, that end is sorted again.

A team store, whose writers commit side by side, has views of the tables by these names; so does a
store opened read-only from before the copies (``STAND_IN``): their reads are those of the tables.
"""
from __future__ import annotations

import duckdb

from . import locality

# what each copy holds: the columns filters and sorts read (store/filters.py, store/paging.py)
COLUMNS = {"metrics": "key, started_us, value",
           "params": "key, started_us, vtype, value_json, value_num, value_text"}
STATE = "by_key_state"
STAND_IN = ";\n".join(f"CREATE TEMP VIEW {locality.BY_KEY[t]} AS SELECT {c} FROM {t}" for t, c in COLUMNS.items())
# rows appended in key disorder before the end is sorted: at 15 metrics a run, about 130,000 runs, one
# row group per key once sorted (a sort of 2 M rows: about 0.4 s, once)
SORT_AFTER = 2_000_000
_LEAST = -(2 ** 63)


def migration(con: duckdb.DuckDBPyConnection, team: bool) -> None:
    """0014: the copies, sorted, in a file store (about 10 s at 10^6 runs, once); views in a team store."""
    for table, columns in COLUMNS.items():
        if team:
            con.execute(f"CREATE VIEW {locality.BY_KEY[table]} AS SELECT {columns} FROM {table}")
        else:
            con.execute(f"CREATE TABLE {locality.BY_KEY[table]} AS SELECT {columns} FROM {table} LIMIT 0")
    if not team:
        con.execute(f"CREATE TABLE {STATE} (source VARCHAR NOT NULL, sorted_us BIGINT NOT NULL, "
                    "appended BIGINT NOT NULL)")
        for table in COLUMNS:
            con.execute(f"INSERT INTO {STATE} VALUES (?, {_LEAST}, 0)", [table])
            _sort_tail(con, table)


def kept(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this store keeps the copies (a file store does; a team store has views)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                            f"AND table_name = '{STATE}'").fetchall()[0][0])


def deleted(con: duckdb.DuckDBPyConnection, us: list[int]) -> None:
    """After the rows of the runs that started at ``us`` were deleted from every table: theirs here too.
    A start that runs share loses every run's rows here; it is read from the tables by id (see above)."""
    if us and kept(con):
        for table in COLUMNS:
            con.execute(f"DELETE FROM {locality.BY_KEY[table]} t WHERE t.started_us IN ({locality.inlined(us)})")


def added(con: duckdb.DuckDBPyConnection, table: str, rows: str) -> None:
    """After the rows of query ``rows`` were inserted into ``table`` (one of COLUMNS'): the same here, and
    the end sorted once it has grown past SORT_AFTER rows."""
    if table not in COLUMNS or not kept(con):
        return
    n = con.execute(f"INSERT INTO {locality.BY_KEY[table]} SELECT {COLUMNS[table]} FROM ({rows})").fetchall()[0][0]
    appended = con.execute(f"UPDATE {STATE} SET appended = appended + ? WHERE source = ? RETURNING appended",
                           [n, table]).fetchall()[0][0]
    if appended > SORT_AFTER:
        _sort_tail(con, table)


def _sort_tail(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Rows of starts past the last sort, again, in key order, from ``table`` (a row appended since with
    an earlier start, from a long run imported late, stays where it is: right, only not in order)."""
    since = int(con.execute(f"SELECT sorted_us FROM {STATE} WHERE source = ?", [table]).fetchall()[0][0])
    copy = locality.BY_KEY[table]
    con.execute(f"DELETE FROM {copy} WHERE started_us > {since}")
    con.execute(f"INSERT INTO {copy} SELECT {COLUMNS[table]} FROM {table} WHERE started_us > {since} "
                "ORDER BY key, started_us")
    last = con.execute(f"SELECT max(started_us) FROM {copy}").fetchall()[0][0]
    con.execute(f"UPDATE {STATE} SET sorted_us = ?, appended = 0 WHERE source = ?",
                [max(since, last if last is not None else _LEAST), table])


def rebuild(con: duckdb.DuckDBPyConnection) -> int:
    """Every copy again from its table, in key order (after rows were written without keeping them); the
    rows copied."""
    for table in COLUMNS:
        con.execute(f"DELETE FROM {locality.BY_KEY[table]}")
        con.execute(f"UPDATE {STATE} SET sorted_us = {_LEAST}, appended = 0 WHERE source = ?", [table])
        _sort_tail(con, table)
    return sum(con.execute(f"SELECT count(*) FROM {locality.BY_KEY[t]}").fetchall()[0][0] for t in COLUMNS)


def drift(con: duckdb.DuckDBPyConnection) -> int:
    """How many rows of starts no two runs share differ between the copies and their tables (0: in step)."""
    plain = f"WHERE started_us NOT IN (SELECT us FROM {locality.SHARED})"
    return sum(con.execute(f"""SELECT count(*) FROM (
        (SELECT {c} FROM {t} {plain} EXCEPT ALL SELECT {c} FROM {locality.BY_KEY[t]} {plain})
        UNION ALL
        (SELECT {c} FROM {locality.BY_KEY[t]} {plain} EXCEPT ALL SELECT {c} FROM {t} {plain}))
        """).fetchall()[0][0] for t, c in COLUMNS.items())
