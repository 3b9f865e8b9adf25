"""Where a run's rows are: every table of per-run rows carries its run's start, ``started_us``.

A run's rows are imported together, and runs are imported about in the order they start, so the rows
of one run lie in a few of DuckDB's row groups, whose min/max of ``started_us`` (a BIGINT) then tell
DuckDB which groups to skip. Run ids are random: their min/max tell nothing, and a lookup by id alone
compares every row's id. Measured on 1,000,000 runs: a run's 15 params in 0.8 ms instead of 20 ms, and
the lookups of ``get()`` grow no longer with the store. ``started_us`` is not unique (two runs may start
in the same microsecond): a lookup filters on it to skip, and on ``run_id`` to be exact.

Reading many runs, ``started_us`` is also the key that joins a run to its rows: an int, where the run
id is a 32-character string that every row must decompress and hash (at 10^6 runs, a filter on one
metric took 199 ms by id and 77 ms by start). It is exact for a start that one run holds; the starts
that runs share are listed in ``shared_starts``, and rows of those are joined by id as well (``keyed``,
``has_rows``). A file store lists them as its runs are written (``note_shared``); a team store, whose
writers commit side by side and cannot see each other's runs, has a view computed from ``runs``.
"""
from __future__ import annotations

from typing import Any

import duckdb

# the tables whose rows belong to a run, besides runs itself
RUN_ROW_TABLES = ("params", "values", "metrics", "inputs", "outputs", "displays", "metric_series", "metric_curves")
STARTED_US = "epoch_us(started_at)"   # the same value from a runs row, however it was stored


def known(alias: str) -> str:
    """The rows of ``alias`` of one run, bound as ``run`` and ``us`` (its ``started_us``, looked up first:
    a constant lets DuckDB skip row groups by their statistics before reading any)."""
    return f"{alias}.started_us = $us AND {alias}.run_id = $run"


def bound(con: Any, run_id: str) -> dict[str, Any]:
    """What ``known`` binds for one run: its id and ``started_us`` (None when it is not in the store). A
    constant lets DuckDB skip row groups by their statistics before reading them, where the same value
    from a subquery is applied while scanning (among 10^9 points: 78 ms against a few)."""
    found = con.execute(f"SELECT {STARTED_US} FROM runs WHERE run_id = ?", [run_id]).fetchall()
    return {"run": run_id, "us": found[0][0] if found else None}


def starts(con: Any, run_ids: list[str]) -> dict[str, int]:
    """The ``started_us`` of these runs (of those in the store), by id."""
    return dict(con.execute(f"SELECT run_id, {STARTED_US} FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                            [list(run_ids)]).fetchall())


def some(alias: str, runs: str = "$runs") -> str:
    """The rows of ``alias`` of a list of runs bound as ``runs`` (a VARCHAR[]). A subquery, not constants:
    the values of runs scattered over the store span its row groups, and DuckDB filters by a join's
    values faster (curves of 100 runs among 10^9 points: 20 ms, against 74 ms with an IN list)."""
    return (f"{alias}.started_us IN (SELECT {STARTED_US} FROM runs WHERE run_id IN (SELECT unnest({runs}::VARCHAR[]))) "
            f"AND {alias}.run_id IN (SELECT unnest({runs}::VARCHAR[]))")


def inlined(us: list[int]) -> str:
    """Starts as SQL constants, which DuckDB checks against row groups' statistics before reading them."""
    return ", ".join(str(int(v)) for v in sorted(set(us))) or "NULL"   # ints: safe to inline


def located(alias: str, us: list[int], table: str = "nbt_us") -> str:
    """The rows of ``alias`` of the runs in ``table`` (their ``run_id``), whose ``started_us`` are ``us``:
    inlined as constants (they are ints), which DuckDB checks against row groups' statistics before
    reading them. For the few runs of an import, started about together."""
    return f"{alias}.started_us IN ({inlined(us)}) AND {alias}.run_id IN (SELECT run_id FROM {table})"


# 0009: the column, set from each row's run. Points whose run is not in the store yet keep NULL until
# their run arrives; orphan_points lists those runs, so that an import asks a small table whether it
# has points to adopt (importer._adopt) instead of reading every points file of a lake for NULLs.
_TABLES_0009 = ("params", "values", "metrics", "inputs", "outputs", "displays", "metric_history", "metric_curves")
MIGRATION = "\n".join(
    f'ALTER TABLE "{t}" ADD COLUMN started_us BIGINT;\n'
    f'UPDATE "{t}" SET started_us = (SELECT {STARTED_US} FROM runs r WHERE r.run_id = "{t}".run_id);'
    for t in _TABLES_0009) + """
CREATE TABLE orphan_points (run_id VARCHAR NOT NULL);
INSERT INTO orphan_points SELECT DISTINCT run_id FROM metric_history WHERE started_us IS NULL;
"""


# tables kept in key order beside their own (store/keyorder.py), read where every run's rows of one key
# are wanted, for starts that no two runs share (the copy's rows carry no run id)
BY_KEY = {"metrics": "metrics_by_key", "params": "params_by_key"}

SHARED = "shared_starts"
_SHARED_SQL = f"SELECT {STARTED_US} AS us FROM runs GROUP BY 1 HAVING count(*) > 1"
# for a store opened read-only before 0013 ran: the same list, computed for this connection
SHARED_STAND_IN = f"CREATE TEMP VIEW {SHARED} AS {_SHARED_SQL}"


def shared_migration(con: duckdb.DuckDBPyConnection, team: bool) -> None:
    """0013: ``shared_starts``, a table a file store keeps (note_shared), a view in a team store."""
    if team:
        con.execute(f"CREATE VIEW {SHARED} AS {_SHARED_SQL}")
    else:
        con.execute(f"CREATE TABLE {SHARED} (us BIGINT NOT NULL)")
        con.execute(f"INSERT INTO {SHARED} {_SHARED_SQL}")


def note_shared(con: duckdb.DuckDBPyConnection, written: dict[str, int]) -> None:
    """After runs were written (``written``: their ``started_us`` by id): list the starts they share with
    each other or with runs already there. Checked by constants DuckDB skips row groups by (0.7 ms at
    10^6 runs); the catalog is asked only when a start is shared, which a team store's view lists itself."""
    if not written:
        return
    seen: dict[int, int] = {}
    for us in written.values():
        seen[us] = seen.get(us, 0) + 1
    shared = {us for us, n in seen.items() if n > 1}
    consts = ", ".join(f"make_timestamptz({int(us)}::BIGINT)" for us in sorted(seen))
    shared.update(r[0] for r in con.execute(
        f"SELECT DISTINCT {STARTED_US} FROM runs WHERE started_at IN ({consts}) "
        "AND run_id NOT IN (SELECT unnest(?::VARCHAR[]))", [list(written)]).fetchall())
    if shared and con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                              f"AND table_name = '{SHARED}'").fetchall()[0][0]:
        con.execute(f"INSERT INTO {SHARED} SELECT unnest(?::BIGINT[]) EXCEPT SELECT us FROM {SHARED}",
                    [sorted(shared)])


def keyed(table: str, columns: str, where: str = "TRUE", shared: list[int] | None = None, one_key: bool = False) -> str:
    """The rows of ``table`` (alias ``t``) that pass ``where``, as a subquery of ``columns`` beside ``us``,
    their run's start, and ``rid``: their run id where that start is shared, else NULL. It joins to
    runs that carry ``run_key`` by ``joined``; the id is read only from rows whose start is shared
    (none, mostly). ``where`` appears twice, its parameters bound twice, unless ``shared`` is []. ``shared``:
    the starts that are shared (``shared_starts(con)``), inlined as constants, for a read of every row of a
    key: the list's subquery made DuckDB join each row to it (a metric at 10^6 runs: 250 ms instead of 140).
    ``one_key``: ``where`` picks one key of every run, read from the table's copy in key order (BY_KEY);
    never for some runs' rows, which lie together in the table and all over the copy (a window of 200
    runs: 310 -> 550+ ms)."""
    source = BY_KEY.get(table, table) if one_key else table
    plain = f"SELECT t.started_us AS us, NULL::VARCHAR AS rid, {columns} FROM \"{source}\" t WHERE ({where})"
    if shared == []:   # none shared: one scan (the branch that finds none still read the keys, 30 ms at 10^6)
        return f"({plain})"
    listed = f"(SELECT us FROM {SHARED})" if shared is None else f"({inlined(shared)})"
    return (f"({plain} AND t.started_us NOT IN {listed} "
            f"UNION ALL SELECT t.started_us, t.run_id, {columns} FROM \"{table}\" t "
            f"WHERE ({where}) AND t.started_us IN {listed})")


def shared_starts(con: Any) -> list[int]:
    """The starts that runs share (few: runs start a microsecond apart or more, mostly)."""
    return [r[0] for r in con.execute(f"SELECT us FROM {SHARED}").fetchall()]


def run_key(run: str) -> str:
    """Columns to select beside the runs ``run``: what ``joined`` matches ``keyed`` rows by."""
    return (f"epoch_us({run}.started_at) AS nbt_us, CASE WHEN epoch_us({run}.started_at) IN "
            f"(SELECT us FROM {SHARED}) THEN {run}.run_id END AS nbt_rid")


def joined(alias: str, run: str) -> str:
    """The join of ``keyed`` rows (``alias``) to their runs (``run``, with ``run_key``'s columns): two
    equalities, which DuckDB hashes (an OR of the id test took minutes in a LEFT JOIN)."""
    return f"{alias}.us = {run}.nbt_us AND {alias}.rid IS NOT DISTINCT FROM {run}.nbt_rid"


def has_rows(terms: list[tuple[str, str]], shared: bool = True) -> str:
    """A condition over runs ``r``: each (``table``, ``where``) has a row of the run (alias ``f``) that
    passes ``where``. Uncorrelated (DuckDB runs a correlated EXISTS once per run): a run whose start is
    not shared is in the intersection of the starts that pass each, one whose start is shared has rows
    passing each by id (a run's rows carry its start, so for one run only one branch can hold). One set
    joined to the runs, not one per term: two metrics at 10^6 runs, 151 ms against 178. Each ``where``'s
    parameters are bound in order, then again in order; once only without ``shared``, when no two runs
    share a start (``any_shared``): the intersection alone, which DuckDB matches to the runs' own column
    and reads their ids only where a start matched (a filter picking 1,700 of 10^6 runs: 65 ms, against
    100 with the branch by id beside it)."""
    starts = " INTERSECT ".join(f'SELECT make_timestamptz(f.started_us) FROM "{BY_KEY.get(t, t)}" f WHERE ({w}) '
                                f"AND f.started_us NOT IN (SELECT us FROM {SHARED})" for t, w in terms)
    if not shared:
        return f"r.started_at IN ({starts})"
    ids = " AND ".join(f'r.run_id IN (SELECT f.run_id FROM "{t}" f WHERE ({w}) AND f.started_us IN '
                       f"(SELECT us FROM {SHARED}))" for t, w in terms)
    return f"(r.started_at IN ({starts}) OR ({ids}))"


def any_shared(con: Any) -> bool:
    """Whether a filter must allow for runs that share a start (``has_rows``): a file store's list says
    (empty, mostly); a team store's is a view over runs that other writers change meanwhile, and a store
    opened read-only before 0013 has a stand-in: both are taken to have some."""
    table = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                        f"AND table_name = '{SHARED}'").fetchall()[0][0]
    return not table or bool(con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {SHARED} LIMIT 1)").fetchall()[0][0])
