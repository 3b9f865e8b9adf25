"""The queries behind a panel too big to ship to the page: how many runs a view holds, their ids in the
table's order, the values of a few columns over all of them (for binned charts and exact brushing),
and a random sample (for charts drawn mark by mark).

The view is the panel's runs (experiment, where, an id list) narrowed by the filter box, which speaks
the same language as ``runs(where=...)``: both are compiled by ``filters.compile_filter``.
"""
from __future__ import annotations

from typing import Any, Sequence

import duckdb
import pyarrow as pa

from . import locality
from .filters import RUN_COLUMNS, TIME_COLUMNS, compile_filter
from .results import arrow

IDS = "nbt_view_ids"
RUNS = f"(SELECT runs.*, {locality.run_key('runs')} FROM runs)"   # what a column's rows join (_column)   # the panel's own id list, registered on the connection for one query
# chart_frame's names for two run columns: "label" is name · id there, and the user's label is run_label
FRAME_NAMES = {"label": "r.name", "run_label": "r.label"}


def view_sql(con: duckdb.DuckDBPyConnection, experiment: str | None, where: str | None,
             ids: Sequence[str] | None, box: str | None = None) -> tuple[str, list[Any]]:
    """A condition over ``runs r`` for the view, and its parameters (registers ``ids`` on ``con``)."""
    conds, args = ["r.deleted_at IS NULL"], []
    if experiment is not None:
        conds.append("r.experiment = ?")
        args.append(experiment)
    for text in (where, box):
        if text and text.strip():
            sql, params = compile_filter(text)
            conds.append(sql)
            args.extend(params)
    if ids is not None:
        con.register(IDS, pa.table({"run_id": pa.array(list(ids), pa.string())}))
        conds.append(f"r.run_id IN (SELECT run_id FROM {IDS})")
    return " AND ".join(conds), args


def _column(name: str, n: int) -> tuple[str, str, list[Any]]:
    """A join and a sortable expression for one column of the panel's table (``o{n}`` is its alias)."""
    group, _, key = name.partition(".")
    alias = f"o{n}"
    # NaN and the infinities sort with the missing values, last: the page shows them as missing too
    on = locality.joined(alias, "r")   # by start: locality.keyed; RUNS carries the keys
    if group == "metrics" and key:
        return (f"LEFT JOIN {locality.keyed('metrics', 't.value', 't.key = ?')} {alias} ON {on}",
                f"CASE WHEN isfinite({alias}.value) THEN {alias}.value END", [key, key])
    if group in ("params", "values") and key:
        # value_num is a DOUBLE: ints past 2^53 that it rounds together are told apart by their text
        columns = ("t.value_num, t.value_text, "
                   "CASE WHEN t.vtype = 'int' THEN TRY_CAST(t.value_json AS HUGEINT) END AS exact")
        return (f"LEFT JOIN {locality.keyed(group, columns, 't.key = ?')} {alias} ON {on}",
                f"CASE WHEN isfinite({alias}.value_num) THEN {alias}.value_num END", [key, key])
    expr = FRAME_NAMES.get(name) or RUN_COLUMNS.get(name)
    if expr is None:
        raise KeyError(name)
    return "", expr, []


def count(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any]) -> int:
    return con.execute(f"SELECT count(*) FROM runs r WHERE {cond}", args).fetchall()[0][0]   # not fetchone:
    # DuckDB 2 keeps its result open, and a relation (con.sql) on the connection then refuses to run


def ordered_ids(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], sort: str | None = None,
                desc: bool = False) -> pa.ChunkedArray:
    """The view's run ids in the table's order: by ``sort`` (missing values last either way), then
    oldest first, as ``runs()`` returns them. Ids only: a million of them are ~40 MB of Arrow, left in
    DuckDB's chunks (joining them took 40 ms at 10^6 runs, and every use takes chunks)."""
    join, order, extra = "", "", []
    if sort:
        join, expr, extra = _column(sort, 0)
        direction = "DESC" if desc else "ASC"
        order = f"{expr} {direction} NULLS LAST, "
        if sort.startswith(("params.", "values.")):   # numbers by value, then text ones by text
            order += f"o0.exact {direction} NULLS LAST, o0.value_text {direction} NULLS LAST, "
    query = (f"SELECT r.run_id FROM {RUNS if join else 'runs'} r {join} WHERE {cond} "
             f"ORDER BY {order}r.started_at, r.run_id")
    return arrow(con, query, extra + args).column(0)


def numbers(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], names: Sequence[str]) -> pa.Table:
    """``run_id`` and one float64 column per name (times in ms since the epoch, text as null) for every
    run in the view: what a binned chart counts and a brush selects from, exactly."""
    joins, exprs, extra = [], [], []
    for n, name in enumerate(names):
        join, expr, params = _column(name, n)
        if name in TIME_COLUMNS:
            expr = f"epoch_ms({expr})::DOUBLE"
        elif name in ("duration_s", "cpu_s") or name.startswith(("metrics.", "params.", "values.")):
            expr = f"{expr}::DOUBLE"
        else:
            expr = "NULL::DOUBLE"
        joins.append(join)
        exprs.append(f'{expr} AS "c{n}"')
        extra += params
    query = f"SELECT r.run_id, {', '.join(exprs)} FROM {RUNS if any(joins) else 'runs'} r {' '.join(joins)} WHERE {cond}"
    table = arrow(con, query, extra + args)
    return table.rename_columns(["run_id", *names])


def sample(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], n: int, seed: int = 0) -> list[str]:
    """``n`` run ids drawn at random from the view (the same ones for the same seed and runs)."""
    rows = con.execute(f"SELECT run_id FROM (SELECT r.run_id FROM runs r WHERE {cond}) "
                       f"USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(seed)})", args).fetchall()
    return sorted(r[0] for r in rows)


def keys(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], limit: int,
         whole: bool = False) -> list[tuple[str, str, str]]:
    """(group, key, kind) of the params, metrics and values the view's runs hold, those set in the most
    runs first (at most ``limit``); kind is number, bool or text, from the value types stored. ``whole``:
    the view is every run, and the child tables are read without a join (1.3 s to 0.2 s at 10^6 runs)."""
    sel = ("SELECT run_id FROM runs WHERE deleted_at IS NOT NULL" if whole
           else f"SELECT r.run_id FROM runs r WHERE {cond}")
    test = "NOT IN" if whole else "IN"
    query = f"""
        SELECT 'params' AS g, key, list(DISTINCT vtype), count(*) AS n FROM params
            WHERE run_id {test} ({sel}) GROUP BY key
        UNION ALL SELECT 'values', key, list(DISTINCT vtype), count(*) FROM "values"
            WHERE run_id {test} ({sel}) GROUP BY key
        UNION ALL SELECT 'metrics', key, ['float'], count(*) FROM metrics
            WHERE run_id {test} ({sel}) GROUP BY key
        ORDER BY n DESC, g, key LIMIT {int(limit)}"""
    out = []
    for group, key, vtypes, _ in con.execute(query, [] if whole else args * 3).fetchall():
        kinds = set(vtypes) - {"none"}
        kind = "number" if kinds and kinds <= {"int", "float"} else "bool" if kinds == {"bool"} else "text"
        out.append((group, key, kind))
    return out


def recent_logged(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], n: int,
                  among: int = 1_000) -> list[str]:
    """Up to ``n`` of the view's newest runs that logged points, newest first, looked for among its
    ``among`` newest runs only: their points are in the last row groups (store/locality.py), where a
    search of every run read every metric (1.4 s at 10^6 runs)."""
    return [r[0] for r in con.execute(f"""
        WITH recent AS (SELECT r.run_id, epoch_us(r.started_at) AS us FROM runs r WHERE {cond}
                        ORDER BY r.started_at DESC, r.run_id DESC LIMIT {int(among)})
        SELECT run_id FROM recent
        WHERE run_id IN (SELECT run_id FROM metrics WHERE source = 'log'
                         AND started_us >= (SELECT min(us) FROM recent))
        ORDER BY us DESC, run_id DESC LIMIT {int(n)}""", args).fetchall()]
