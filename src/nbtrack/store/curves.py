"""Logged points out of the store: one run's history, and the curves the panels draw, bucketed so that
a series of millions of points reads as about a thousand."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb

from . import codec, locality, schema
from .results import plain_df

if TYPE_CHECKING:
    import pandas as pd


def history(con: duckdb.DuckDBPyConnection, run_id: str, key: str | None = None) -> pd.DataFrame:
    where = locality.known("t")
    args = locality.bound(con, run_id)
    if key is not None:
        where += " AND t.key = $key"
        args["key"] = codec.text_safe(key)   # as the key was stored: the name logged, not its escape
    try:
        return plain_df(con, f"SELECT step, key, value FROM ({points_sql(where)}) ORDER BY key, step, chunk", args)
    except duckdb.CatalogException:   # asked first: the catalog query that would tell costs a millisecond
        return plain_df(con, f"SELECT step, key, value FROM ({points_sql(where, legacy=True)}) "
                               "ORDER BY key, step, chunk", args)


# Min/max bucketing: each series keeps its first and last point and, per bucket of steps, the points
# with the lowest and highest value, so a spike survives at any zoom. The importer stores the curves of
# long series at CURVE_POINTS (table metric_curves), so the panels read at most that many points per
# series instead of bucketing millions of points on each query. A series of up to STORED_CURVE_PAST
# points is bucketed when read instead: storing it a second time made up half of a store's bytes per
# point (10^9 points: 15.0 bytes a point, 8.0 without), and reading it whole costs a few ms.
CURVE_POINTS = 1000
STORED_CURVE_PAST = 5 * CURVE_POINTS
# h is read twice: MATERIALIZED, or a source that unnests series (metric_series) is unnested twice
DOWNSAMPLE = """
WITH h AS MATERIALIZED ({source}),
s AS (
    SELECT run_id, key, count(*) AS n, min(step) AS lo, max(step) AS hi FROM h GROUP BY run_id, key
),
b AS (
    SELECT h.run_id, h.key, h.step, h.value, s.lo, s.hi,
           CASE WHEN s.n <= {max} THEN h.step
                ELSE (h.step - s.lo) * ({max} // 2) // (s.hi - s.lo + 1) END AS bucket
    FROM h JOIN s USING (run_id, key)
),
agg AS (
    SELECT run_id, key, bucket,
           arg_min(step, value) AS s_lo, min(value) AS v_lo,
           arg_max(step, value) AS s_hi, max(value) AS v_hi,
           min(step) AS s_first, arg_min(value, step) AS v_first,
           max(step) AS s_last, arg_max(value, step) AS v_last,
           any_value(lo) AS lo, any_value(hi) AS hi
    FROM b GROUP BY run_id, key, bucket
)
SELECT DISTINCT run_id, key, step, value FROM (
    SELECT run_id, key, s_lo AS step, v_lo AS value FROM agg
    UNION ALL SELECT run_id, key, s_hi, v_hi FROM agg
    UNION ALL SELECT run_id, key, s_first, v_first FROM agg WHERE s_first = lo
    UNION ALL SELECT run_id, key, s_last, v_last FROM agg WHERE s_last = hi
)
"""


def downsample_sql(source: str, max_points: int = CURVE_POINTS) -> str:
    """The bucketing query over ``source`` (a SELECT of ``run_id, key, step, value``)."""
    return DOWNSAMPLE.format(source=source, max=int(max_points))


def stored_curves_sql(source: str) -> str:
    """What metric_curves keeps of ``source``'s series: the bucketed curves of the long ones only."""
    return (f"SELECT d.* FROM ({downsample_sql(source)}) d JOIN (SELECT run_id, key FROM ({source}) l "
            f"GROUP BY run_id, key HAVING count(*) > {STORED_CURVE_PAST}) l USING (run_id, key)")


SHORT_CURVES_MIGRATION = f"""
DELETE FROM metric_curves WHERE (run_id, key) IN (
    SELECT (run_id, key) FROM metric_history GROUP BY run_id, key HAVING count(*) <= {STORED_CURVE_PAST});
"""


def curves(con: duckdb.DuckDBPyConnection, run_ids: list[str], keys: list[str] | None = None,
           max_points: int = CURVE_POINTS) -> pd.DataFrame:
    """Logged points of these runs (``run_id, key, step, value``), at most about ``max_points`` per series."""
    def chosen(alias: str) -> str:
        cond = locality.some(alias)
        return cond + (f" AND {alias}.key IN (SELECT unnest($keys::VARCHAR[]))" if keys is not None else "")

    args: dict[str, Any] = {"runs": list(run_ids)}
    if keys is not None:
        args["keys"] = list(keys)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                                        "AND table_name IN ('metric_curves', 'metric_series')").fetchall()}
    legacy = "metric_series" not in tables
    if max_points == CURVE_POINTS and "metric_curves" in tables:  # a store opened read-only may predate it
        # long series from their stored curves, the others bucketed now (STORED_CURVE_PAST)
        short = points_sql(f"{chosen('t')} AND NOT EXISTS (SELECT 1 FROM metric_curves c WHERE {chosen('c')} "
                           "AND c.run_id = t.run_id AND c.key = t.key)", legacy)
        query = (f"SELECT run_id, key, step, value FROM metric_curves t WHERE {chosen('t')} "
                 f"UNION ALL SELECT * FROM ({downsample_sql(short, max_points)})")
    else:
        query = downsample_sql(points_sql(chosen("t"), legacy), max_points)
    return plain_df(con, query + " ORDER BY run_id, key, step", args)


def downsample_points(points: Any, max_points: int = CURVE_POINTS) -> pd.DataFrame:
    """The same bucketing over an in-memory Arrow table (a running run's points, not yet in the store)."""
    con = duckdb.connect()
    try:
        con.register("live_points", points)
        query = downsample_sql("SELECT run_id, key, step, value FROM live_points", max_points)
        return plain_df(con, query + " ORDER BY run_id, key, step")
    finally:
        con.close()


def curve_series_count(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> int:
    """How many (run, metric) curves these runs have."""
    return con.execute(f"SELECT count(*) FROM (SELECT DISTINCT run_id, key FROM metric_series t "
                       f"WHERE {locality.some('t')})", {"runs": run_ids}).fetchall()[0][0]


def points_sql(where: str, legacy: bool = False) -> str:
    """``run_id, key, step, value, chunk`` of the points of the series ``t`` of metric_series that ``where``
    picks. ``legacy``: of the rows ``t`` of the points table a store had before 0011 (a store opened
    read-only before its migration: only a writer migrates)."""
    if legacy:
        return f"SELECT t.run_id, t.key, t.step, t.value, t.chunk FROM metric_history t WHERE {where}"
    return f"SELECT t.run_id, t.key, {schema.SERIES_POINTS}, t.chunk FROM metric_series t WHERE {where}"
