"""The queries behind a panel too big to ship to the page: how many runs a view holds, their ids in the
table's order, the values of a few columns over all of them (for binned charts and exact brushing),
and a random sample (for charts drawn mark by mark).

The view is the panel's runs (experiment, where, an id list) narrowed by the filter box, which speaks
the same language as ``runs(where=...)``: both are compiled by ``filters.compile_filter``.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import locality
from .codec import int_order_sql
from .filter_text import GROUPS, RUN_COLUMNS, TIME_COLUMNS
from .filters import compile_filter
from .results import arrow, arrow_texts, text

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
    for words in (where, box):
        if words and words.strip():
            sql, params = compile_filter(words, con)
            conds.append(sql)
            args.extend(params)
    if ids is not None:
        con.register(IDS, pa.table({"run_id": pa.array(list(ids), pa.string())}))
        conds.append(f"r.run_id IN (SELECT run_id FROM {IDS})")
    return " AND ".join(conds), args


def _column(name: str, n: int) -> tuple[str, str, list[str]]:
    """A join and an expression for one column of the panel's table (``o{n}`` is its alias), and the key it
    reads as text ``n`` (arrow_texts)."""
    group, _, key = name.partition(".")
    alias = f"o{n}"
    # NaN and the infinities count with the missing values: the page shows them as missing too
    on = locality.joined(alias, "r")   # by start: locality.keyed; RUNS carries the keys
    if group == "metrics" and key:
        return (f"LEFT JOIN {locality.keyed('metrics', 't.value', f't.key = {text(n)}', one_key=True)} {alias} ON {on}",
                f"CASE WHEN isfinite({alias}.value) THEN {alias}.value END", [key])
    if group in ("params", "values") and key:
        return (f"LEFT JOIN {locality.keyed(group, 't.value_num', f't.key = {text(n)}', one_key=True)} {alias} ON {on}",
                f"CASE WHEN isfinite({alias}.value_num) THEN {alias}.value_num END", [key])
    expr = FRAME_NAMES.get(name) or RUN_COLUMNS.get(name)
    if expr is None:
        raise KeyError(name)
    return "", expr, [""]   # no key, but text n stays the n-th column's


def count(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any]) -> int:
    return con.execute(f"SELECT count(*) FROM runs r WHERE {cond}", args).fetchall()[0][0]   # not fetchone:
    # DuckDB 2 keeps its result open, and a relation (con.sql) on the connection then refuses to run


def ordered_ids(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], sort: str | None = None,
                desc: bool = False) -> pa.ChunkedArray:
    """The view's run ids in the table's order: by ``sort`` (missing values last either way), then
    oldest first, as ``runs()`` returns them."""
    rows = view_rows(con, cond, args)
    return Ordered(rows.column("run_id"), ranks(rows, sort_keys(con, sort, desc)) if sort else None).all()


class Ordered:
    """Run ids in a table's order, kept as the ids (oldest first) and each one's rank in the order
    (``ranks``; None: the ids' own order). Only as much of the order is sorted as a window needs: the
    top rows of 10^6 runs take 5 ms (np.argpartition), the whole order 65-100 ms (a stable argsort),
    made once a window far down or a selection (``all``) needs it. Taking 10^6 ids in a new order took
    30-220 ms, so only a window's ids are taken. Ids: a million are ~40 MB of Arrow, in DuckDB's chunks."""

    def __init__(self, ids: pa.ChunkedArray, rank: np.ndarray | None = None) -> None:
        self._ids, self._rank = ids, rank
        self._order: np.ndarray | None = None   # positions of the whole order, once sorted
        self._head = np.empty(0, dtype="int64")   # positions of its first rows, until then
        self._all = ids if rank is None else None

    def __len__(self) -> int:
        return len(self._ids)

    def window(self, offset: int, limit: int) -> list[str]:
        if self._rank is None:
            return self._ids.slice(offset, limit).to_pylist()
        end = min(offset + limit, len(self._ids))
        if self._order is None and end > len(self._head):
            n = max(2 * end, 1_000)   # a scroll near the top needs no second partition
            if n * 8 < len(self._rank):
                self._head = head(self._rank, n)
            else:
                self._order = np.argsort(self._rank, kind="stable")
        order = self._order if self._order is not None else self._head
        return self._ids.take(order[offset:end]).to_pylist()

    def all(self) -> pa.ChunkedArray:
        if self._all is None:
            if self._order is None:
                self._order = np.argsort(self._rank, kind="stable")
            self._all = self._ids.take(self._order)
        return self._all


def head(rank: np.ndarray, n: int) -> np.ndarray:
    """The positions of the ``n`` least ranks in order, a tie kept in position order: the first ``n`` of
    ``np.argsort(rank, kind="stable")``, without sorting the rest. ``rank`` holds no NaN."""
    if n >= len(rank):
        return np.argsort(rank, kind="stable")
    edge = rank[np.argpartition(rank, n - 1)[n - 1]]   # the n-th least rank
    below = np.flatnonzero(rank < edge)
    tied = np.flatnonzero(rank == edge)[:n - len(below)]   # the oldest of those the edge ties
    chosen = np.concatenate([below, tied])   # each part in position order: a stable sort keeps it
    return chosen[np.argsort(rank[chosen], kind="stable")]


def view_rows(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any]) -> pa.Table:
    """The view's runs oldest first, as ``runs()`` returns them: ``run_id`` and ``us``, its start. What a
    sort orders (``ranks``): a panel keeps it while only the sort changes."""
    return arrow(con, f"SELECT r.run_id, {locality.STARTED_US} AS us FROM runs r WHERE {cond} "
                      "ORDER BY r.started_at, r.run_id", args)


# a param's or value's row: 1 int, 2 float, 4 bool, 8 text (0: none, a container), + 16 from 2^53 on (a
# DOUBLE of 2^53 may be an int it rounded)
_KIND = ("(CASE k.vtype WHEN 'int' THEN 1 WHEN 'float' THEN 2 WHEN 'bool' THEN 4 WHEN 'str' THEN 8 ELSE 0 END "
         "+ CASE WHEN abs(k.value_num) >= 9007199254740992 THEN 16 ELSE 0 END)::UTINYINT")   # 2^53+1 rounds to 2^53


class SortKeys:
    """A column's keys over the store (``sort_keys``), ordered by start once, so that each filter's
    ``ranks`` only looks its runs up (sorting 10^6 keys by start again took 30-40 ms of every filter):
    ``us`` ascending, ``k`` (NaN: no value), ``rid`` the run id where a start is shared (else null).
    ``one_way``: ``k`` does not simply turn round for the other direction (``reversed_keys``)."""

    def __init__(self, table: pa.Table, one_way: bool = False) -> None:
        us = table.column("us").to_numpy(zero_copy_only=False)
        k = table.column("k").to_numpy(zero_copy_only=False).astype("float64")
        rid = table.column("rid").combine_chunks()
        shared = rid.is_valid().to_numpy(zero_copy_only=False)
        if (us[1:] < us[:-1]).any():   # DuckDB's threads hand a scan's chunks back in any order
            order = np.argsort(us, kind="stable")   # a few sorted stretches: 10 ms at 10^6
            us, k, shared = us[order], k[order], shared[order]
            rid = rid.take(pa.array(order)) if shared.any() else rid
        self.us, self.k, self.rid, self.one_way = us, k, rid, one_way
        self.shared = shared if shared.any() else None   # which keys are matched by id too


def sort_keys(con: duckdb.DuckDBPyConnection, name: str, desc: bool = False) -> SortKeys:
    """For every run (of the store, not only of a view) with a value in column ``name`` (as SortKeys): its
    start ``us``, its id ``rid`` where that start is shared (else null) and ``k``, a number whose ascending order is the
    column's order, ``desc`` or not. A number sorts by value (NaN and the infinities with the missing
    values, as the page shows them); a param or value by its number, then its exact int (a DOUBLE rounds
    ints past 2^53 together), then its text; a run column by itself.

    Sorted by numpy (``ranks``, ``Ordered``), not by DuckDB: ordering 10^6 runs' ids by a metric took 400-450 ms,
    most of it carrying the 32-character ids through the sort; this reads ints and floats (a metric: 140
    ms, cold)."""
    group, _, key = name.partition(".")
    direction = "DESC" if desc else "ASC"
    shared = locality.shared_starts(con) if group in GROUPS else None
    where = f"t.key = {text(0)}"   # (arrow_texts: a parameter made this read 110 ms instead of 70)
    if group == "metrics" and key:
        return SortKeys(arrow_texts(con, f"SELECT k.us, k.rid, CASE WHEN isfinite(k.value) THEN {'-' if desc else ''}k.value "
                                         f"END AS k FROM {locality.keyed('metrics', 't.value', where, shared, one_key=True)} k", [key]))
    if group in ("params", "values") and key:
        # a key of one number type, ints within 2^53: sorted by its number alone (no window in SQL); a
        # flag per row says which (its type as a string made the read 226 ms instead of 161)
        fast = arrow_texts(con, f"SELECT k.us, k.rid, CASE WHEN isfinite(k.value_num) THEN "
                                f"{'-' if desc else ''}k.value_num END AS k, {_KIND} AS kind "
                                f"FROM {locality.keyed(group, 't.value_num, t.vtype', where, shared, one_key=True)} k", [key])
        if int(np.bitwise_or.reduce(fast.column("kind").to_numpy(), initial=0)) in (0, 1, 2, 4):
            return SortKeys(fast)
        # else by its number, then its exact int, then its text: NULLS LAST at each step, either way
        number = "CASE WHEN isfinite(k.value_num) THEN k.value_num END"
        rows = locality.keyed(group, f"t.value_num, t.value_text, {int_order_sql('t')} AS exact", where, shared,
                              one_key=True)
        ranked = arrow_texts(con, f"SELECT k.us, k.rid, dense_rank() OVER (ORDER BY {number} {direction} NULLS LAST, "
                                  f"k.exact {direction} NULLS LAST, k.value_text {direction} NULLS LAST)::DOUBLE AS k "
                                  f"FROM {rows} k WHERE {number} IS NOT NULL OR k.exact IS NOT NULL "
                                  "OR k.value_text IS NOT NULL", [key])
        return SortKeys(ranked, one_way=True)
    expr = FRAME_NAMES.get(name) or RUN_COLUMNS.get(name)
    if expr is None:
        raise KeyError(name)
    return SortKeys(arrow(con, f"SELECT r.nbt_us AS us, r.nbt_rid AS rid, dense_rank() OVER (ORDER BY {expr} {direction})::DOUBLE "
                               f"AS k FROM {RUNS} r WHERE {expr} IS NOT NULL"))


def reversed_keys(keys: SortKeys) -> SortKeys | None:
    """The keys sorted the other way, from ``keys`` (sort_keys), where the order simply reverses; else
    None (a param of text, or of ints and floats: each part's missing values sort last either way). A
    second click on a header sorts without reading the store again."""
    if keys.one_way:
        return None
    turned = copy.copy(keys)
    turned.k = -keys.k
    return turned


def ranks(rows: pa.Table, keys: SortKeys) -> np.ndarray:
    """The rank of each of ``rows`` (view_rows) by ``keys`` (sort_keys): ``Ordered`` sorts by it, stably
    (a tie keeps the rows' order, oldest first); a row without a key ranks last (inf). Matched by start,
    which both hold in ascending order, and by id where a start is shared (locality.py)."""
    starts = rows.column("us").to_numpy()
    if keys.shared is None and np.array_equal(starts, keys.us):   # a whole store's column that every run has
        return np.where(np.isnan(keys.k), np.inf, keys.k)
    rank = np.full(len(starts), np.inf)   # no key: last
    by_id = keys.shared
    us, plain = (keys.us[~by_id], keys.k[~by_id]) if by_id is not None else (keys.us, keys.k)
    # both ascending: the fewer looked up among the more (a filtered view's runs among the keys, or a
    # rare key's runs among the view's; searching 10^6 starts among 10^6 took 30-50 ms)
    if len(starts) <= len(us):
        row, key = _found(starts, us)
    else:
        key, row = _found(us, starts)
    rank[row] = plain[key]
    if by_id is not None:   # starts that runs share (rare): the view's runs at those starts, by id
        near = np.flatnonzero(np.isin(starts, keys.us[by_id]))
        found = pc.index_in(rows.column("run_id").take(near), value_set=keys.rid.filter(pa.array(by_id)))
        found = found.to_numpy(zero_copy_only=False).astype("float64")
        known = ~np.isnan(found)
        rank[near[known]] = keys.k[by_id][found[known].astype("int64")]
    rank[np.isnan(rank)] = np.inf   # a key without a value: last too
    return rank


def _found(few: np.ndarray, many: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the values of ``few`` are in ``many`` (ascending; a value looked for is in it once): the positions of
    those found in ``few`` and theirs in ``many``."""
    at = np.searchsorted(many, few)
    hit = at < len(many)
    hit[hit] = many[at[hit]] == few[hit]
    return np.flatnonzero(hit), at[hit]


def numbers(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], names: Sequence[str]) -> pa.Table:
    """``run_id`` and one float64 column per name (times in ms since the epoch, text as null) for every
    run in the view: what a binned chart counts and a brush selects from, exactly."""
    joins, exprs, keys = [], [], []
    for n, name in enumerate(names):
        join, expr, key = _column(name, n)
        if name in TIME_COLUMNS:
            expr = f"epoch_ms({expr})::DOUBLE"
        elif name in ("duration_s", "cpu_s") or name.startswith(("metrics.", "params.", "values.")):
            expr = f"{expr}::DOUBLE"
        else:
            expr = "NULL::DOUBLE"
        joins.append(join)
        exprs.append(f'{expr} AS "c{n}"')
        keys += key
    query = f"SELECT r.run_id, {', '.join(exprs)} FROM {RUNS if any(joins) else 'runs'} r {' '.join(joins)} WHERE {cond}"
    table = arrow_texts(con, query, keys, args)   # at 10^6 runs, without a filter: 740 -> 330 ms
    return table.rename_columns(["run_id", *names])


def sample(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], n: int, seed: int = 0) -> list[str]:
    """``n`` run ids drawn at random from the view (the same ones for the same seed and runs)."""
    rows = con.execute(f"SELECT run_id FROM (SELECT r.run_id FROM runs r WHERE {cond}) "
                       f"USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE ({int(seed)})", args).fetchall()
    return sorted(r[0] for r in rows)


def keys(con: duckdb.DuckDBPyConnection, cond: str, args: list[Any], limit: int,
         whole: bool = False) -> tuple[list[tuple[str, str, str]], dict[str, dict[str, int]] | None]:
    """(group, key, kind) of the params, metrics and values the view's runs hold, those set in the most
    runs first (at most ``limit``); kind is number, bool or text, from the value types stored. ``whole``:
    the view is every run, and the child tables are read without a join (1.3 s to 0.2 s at 10^6 runs), and
    without testing each row's run id when no run is deleted (the test read every id: 300 -> 190 ms).
    Then the same scan also gives what ``queries.metric_key_counts`` of every run would (the second
    item, else None), which the panel need not read again (~100 ms at 10^6 runs)."""
    sel = ("SELECT run_id FROM runs WHERE deleted_at IS NOT NULL" if whole
           else f"SELECT r.run_id FROM runs r WHERE {cond}")
    where = f"WHERE run_id {'NOT IN' if whole else 'IN'} ({sel})"
    if whole and not con.execute("SELECT count(*) FROM runs WHERE deleted_at IS NOT NULL").fetchall()[0][0]:
        where = ""
    query = f"""
        SELECT 'params' AS g, key, list(DISTINCT vtype), count(*) AS n, 0 FROM params {where} GROUP BY key
        UNION ALL SELECT 'values', key, list(DISTINCT vtype), count(*), 0 FROM "values" {where} GROUP BY key
        UNION ALL SELECT 'metrics', key, ['float'], count(*), count(*) FILTER (WHERE source = 'log')
            FROM metrics {where} GROUP BY key
        ORDER BY n DESC, g, key"""
    out, counts = [], {}
    for group, key, vtypes, n, logged in con.execute(query, [] if whole else args * 3).fetchall():
        if group == "metrics":
            counts[key] = {"runs": n, "logged": logged}
        if len(out) < limit:
            kinds = set(vtypes) - {"none"}
            kind = "number" if kinds and kinds <= {"int", "float"} else "bool" if kinds == {"bool"} else "text"
            out.append((group, key, kind))
    return out, (counts if whole and not where else None)


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
