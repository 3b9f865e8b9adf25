"""Logged points into the store: each points file (or a final record's last points) replaces its own
chunk, a run's stored curves are recomputed, and every row says where its run is (locality.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from . import curves, locality, schema

if TYPE_CHECKING:
    import pyarrow as pa


def locate(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[int]:
    """``nbt_us``: these runs' ``started_us`` (locality.py), for those in the store; returns those values."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE nbt_us AS SELECT run_id, {locality.STARTED_US} AS us FROM runs "
                "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids])
    return [r[0] for r in con.execute("SELECT us FROM nbt_us").fetchall()]


def insert_points(con: duckdb.DuckDBPyConnection, points: pa.Table, chunks: list[tuple[str, int]]) -> None:
    """Points files: a re-imported chunk replaces itself, and a run's stored curves are recomputed from
    all its points, whichever chunk arrived. One DELETE and one INSERT for every file: each statement is
    a round trip to a team catalog."""
    import pyarrow as pa

    touched = sorted({run_id for run_id, _ in chunks})
    us = locate(con, touched)
    con.register("nbt_points", points)
    con.register("nbt_chunks", pa.table({"run_id": [r for r, _ in chunks], "chunk": [c for _, c in chunks]}))
    # points of a run not in the store yet (its record set aside, or still to come): no started_us until
    # it arrives, and listed in orphan_points so that its import finds them (adopt)
    homeless = sorted(set(touched) - {r[0] for r in con.execute("SELECT run_id FROM nbt_us").fetchall()})
    if homeless:
        con.execute("INSERT INTO orphan_points SELECT unnest(?::VARCHAR[]) EXCEPT SELECT run_id FROM orphan_points",
                    [homeless])
    chunk_of = "(t.run_id, t.chunk) IN (SELECT (run_id, chunk) FROM nbt_chunks)"
    con.execute(f"DELETE FROM metric_series t WHERE {locality.located('t', us)} AND {chunk_of}")
    if homeless:
        con.execute(f"DELETE FROM metric_series t WHERE t.started_us IS NULL AND {chunk_of}")
    con.execute("INSERT INTO metric_series BY NAME " + schema.series_sql(
        "(SELECT p.run_id, p.key, p.step, p.value, p.chunk, u.us AS started_us FROM nbt_points p "
        "LEFT JOIN nbt_us u USING (run_id))"))
    con.unregister("nbt_points")
    con.unregister("nbt_chunks")
    con.execute(f"DELETE FROM metric_curves t WHERE {locality.located('t', us)}")
    source = curves.points_sql(locality.located("t", us))
    if homeless:
        con.execute("DELETE FROM metric_curves t WHERE t.started_us IS NULL AND t.run_id IN (SELECT unnest(?::VARCHAR[]))",
                    [homeless])
        source += (" UNION ALL " + curves.points_sql("t.started_us IS NULL AND "
                                                     "t.run_id IN (SELECT unnest($homeless::VARCHAR[]))"))
    # the runs' points unnested once: the bucketing reads them three times, and with the unnest inlined
    # in each read DuckDB took 7.7 s and 9 GB for 2 * 10^6 points (0.1 s from a table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE nbt_run_points AS {source}", {"homeless": homeless} if homeless else {})
    con.execute("INSERT INTO metric_curves (run_id, key, step, value, started_us) SELECT d.*, u.us FROM ("
                + curves.stored_curves_sql("SELECT run_id, key, step, value FROM nbt_run_points")
                + ") d LEFT JOIN nbt_us u USING (run_id)")
    con.execute("DROP TABLE nbt_run_points")


def adopt(con: duckdb.DuckDBPyConnection) -> None:
    """Points imported before their run get its ``started_us`` once the run (in ``nbt_us``) is in the
    store."""
    found = [r[0] for r in con.execute("SELECT run_id FROM orphan_points WHERE run_id IN (SELECT run_id FROM nbt_us)")
             .fetchall()]
    if not found:
        return
    for table in ("metric_series", "metric_curves"):
        con.execute(f"UPDATE {table} SET started_us = u.us FROM nbt_us u WHERE {table}.started_us IS NULL "
                    f"AND {table}.run_id = u.run_id AND u.run_id IN (SELECT unnest(?::VARCHAR[]))", [found])
    con.execute("DELETE FROM orphan_points WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [found])
