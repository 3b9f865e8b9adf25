"""Logged points into the store: each points file (or a final record's last points) replaces its own
chunk, a run's stored curves are recomputed, and every row says where its run is (locality.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb

from . import curves, locality, schema

if TYPE_CHECKING:
    import pyarrow as pa


def locate(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, int]:
    """``nbt_us``: these runs' ``started_us`` (locality.py), for those in the store; returns them by run."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE nbt_us AS SELECT run_id, {locality.STARTED_US} AS us FROM runs "
                "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids])
    return dict(con.execute("SELECT run_id, us FROM nbt_us").fetchall())


def insert_points(con: duckdb.DuckDBPyConnection, points: pa.Table, chunks: list[tuple[str, int]]) -> None:
    """Points files: a re-imported chunk replaces itself, and a run's stored curves are recomputed from
    all its points, whichever chunk arrived. One DELETE and one INSERT for every file: each statement is
    a round trip to a team catalog."""
    import pyarrow as pa

    touched = sorted({run_id for run_id, _ in chunks})
    starts = locate(con, touched)
    us = list(starts.values())
    con.register("nbt_points", points)
    con.register("nbt_chunks", pa.table({"run_id": [r for r, _ in chunks], "chunk": [c for _, c in chunks]}))
    # points of a run not in the store yet (its record set aside, or still to come): no started_us until
    # it arrives, and listed in orphan_points so that its import finds them (adopt)
    homeless = sorted(set(touched) - set(starts))
    if homeless:
        con.execute("INSERT INTO orphan_points SELECT unnest(?::VARCHAR[]) EXCEPT SELECT run_id FROM orphan_points",
                    [homeless])
    chunk_of = "(t.run_id, t.chunk) IN (SELECT (run_id, chunk) FROM nbt_chunks)"
    con.execute(f"DELETE FROM metric_series t WHERE {locality.located('t', us)} AND {chunk_of}")
    if homeless:
        con.execute(f"DELETE FROM metric_series t WHERE t.started_us IS NULL AND {chunk_of}")
    con.register("nbt_series", series(points, starts))
    con.execute("INSERT INTO metric_series BY NAME SELECT * FROM nbt_series")
    con.unregister("nbt_series")
    con.execute(f"DELETE FROM metric_curves t WHERE {locality.located('t', us)}")
    runs = locality.located("t", us)
    if homeless:
        con.execute("DELETE FROM metric_curves t WHERE t.started_us IS NULL AND t.run_id IN (SELECT unnest(?::VARCHAR[]))",
                    [homeless])
        runs = f"({runs} OR (t.started_us IS NULL AND t.run_id IN (SELECT unnest($homeless::VARCHAR[]))))"
    args = {"homeless": homeless} if homeless else {}
    # a run's stored curves are of all its points: those of this import, when it has no others (a run
    # imported at its end, 10^7 points: 1.2 s less than unnesting them back from the series)
    more = con.execute(f"SELECT count(*) FROM metric_series t WHERE {runs} AND NOT {chunk_of}", args).fetchall()[0][0]
    source = (curves.points_sql(runs) if more else
              "SELECT run_id::VARCHAR AS run_id, key::VARCHAR AS key, step, value FROM nbt_points")
    # the runs' points in a table: the bucketing reads them three times, and with the unnest inlined
    # in each read DuckDB took 7.7 s and 9 GB for 2 * 10^6 points (0.1 s from a table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE nbt_run_points AS {source}", args if more else {})
    con.unregister("nbt_points")
    con.unregister("nbt_chunks")
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


def series(points: pa.Table, starts: dict[str, int]) -> pa.Table:
    """``points`` (run_id, key, step, value, chunk) as metric_series rows, the rows schema.series_sql
    makes (a test holds them equal); ``starts``: each run's ``started_us``. In numpy, not SQL: DuckDB
    took 5.5 s for 10^7 points, most of it sorting every series by step twice (a window for the rows,
    ordered lists for the values), where here the points most often come in step order already and
    are only checked. Points of equal step keep the order they were logged in."""
    import pyarrow as pa

    # a points file at a time (a series is of one file): arrays of 10^7 points cost tens of ms each
    # to allocate, and copying the files' points together cost 0.15-0.7 s
    pieces: dict[Any, list[pa.RecordBatch]] = {}
    for batch in points.to_batches():
        if batch.num_rows:
            pieces.setdefault(_one_file(batch), []).append(batch)
    if None in pieces and len(pieces) > 1:   # a batch of points of many files: all of them at once
        pieces = {None: [b for batches in pieces.values() for b in batches]}
    tables = [_series(pa.Table.from_batches(batches), starts) for batches in pieces.values()]
    if not tables:
        return _series(points, starts)
    table = pa.concat_tables(tables)
    # in the order runs started (store/locality.py), as series_sql orders them
    us = table.column("started_us").to_pylist()
    keys = list(zip(*(table.column(c).to_pylist() for c in ("run_id", "key", "chunk", "first_step"))))
    order = sorted(range(len(keys)), key=lambda i: (us[i] is None, us[i] or 0, keys[i]))
    return table if order == list(range(len(order))) else table.take(pa.array(order, pa.int64()))


def _one_file(batch: pa.RecordBatch) -> tuple[Any, ...] | None:
    """(run, chunk) of a batch whose points are all of one points file, else None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = []
    for name in ("run_id", "chunk"):
        column = batch.column(batch.schema.get_field_index(name))
        if column.null_count:
            return None
        codes = column.indices if pa.types.is_dictionary(column.type) else column
        bounds = pc.min_max(codes)
        if bounds["min"] != bounds["max"]:
            return None
        found.append(column[0].as_py())
    return tuple(found)


def _series(points: pa.Table, starts: dict[str, int]) -> pa.Table:
    """``series`` of some points, in the order of their (run, key, chunk) codes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    points = points.unify_dictionaries().combine_chunks()
    codes, dicts = [], []
    for name in ("run_id", "key", "chunk"):
        column = points.column(name)
        column = column.chunk(0) if column.num_chunks else pa.array([], column.type)
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        codes.append(column.indices.to_numpy(zero_copy_only=False))
        dicts.append(column.dictionary)
    # a series is a (run, key, chunk): one number each (every array of 10^7 points costs tens of ms)
    width = np.int32 if len(dicts[0]) * len(dicts[1]) * len(dicts[2]) < 2**31 else np.int64
    group = codes[2].astype(width)
    if len(dicts[1]) > 1:
        group += codes[1].astype(width) * len(dicts[2])
    if len(dicts[0]) > 1:
        group += codes[0].astype(width) * (len(dicts[1]) * len(dicts[2]))
    step = points.column("step").to_numpy()
    value_column = points.column("value").combine_chunks()
    value = value_column.to_numpy(zero_copy_only=False)
    valid = None if not value_column.null_count else ~value_column.is_null().to_numpy(zero_copy_only=False)
    n = len(step)
    if n and np.any(group[1:] < group[:-1]):
        order = np.argsort(group, kind="stable")
        group, step, value = group[order], step[order], value[order]
        valid = None if valid is None else valid[order]
    new_group = np.ones(n, dtype=bool)
    np.not_equal(group[1:], group[:-1], out=new_group[1:])
    if np.any(~new_group[1:] & (step[1:] < step[:-1])):   # some series not in step order: sort them
        order = np.lexsort((step, group))
        step, value = step[order], value[order]
        valid = None if valid is None else valid[order]
    # rows: each series cut every SERIES_ROW_POINTS points
    group_starts = np.flatnonzero(new_group)
    sizes = np.diff(np.append(group_starts, n))
    per_group = -(-sizes // schema.SERIES_ROW_POINTS)
    first = np.repeat(group_starts, per_group) + schema.SERIES_ROW_POINTS * (
        np.arange(per_group.sum()) - np.repeat(np.cumsum(per_group) - per_group, per_group))
    ends = np.minimum(first + schema.SERIES_ROW_POINTS, np.repeat(group_starts + sizes, per_group))
    count = ends - first
    stride, regular = _strides(step, first, count)
    # float32 where each value of the row is exactly one (NaN and the infinities too)
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = value.astype(np.float32)
        fine = narrow == value   # compared as doubles: exact only if the float32 is the same number
        fine |= np.isnan(value)
        if valid is not None:
            fine |= ~valid
    exact = np.logical_and.reduceat(fine, first) if n else np.zeros(0, dtype=bool)

    def lists(picked: Any, items: Any) -> pa.ListArray:
        """The rows' points where ``picked``, null lists elsewhere."""
        offsets = np.zeros(len(first) + 1, dtype=np.int32)
        np.cumsum(np.where(picked, count, 0), out=offsets[1:])
        if picked.all():
            mine = None   # (all of them: no copy)
        else:
            mine = np.repeat(picked, count)
            items = items[mine]
        item_valid = valid if mine is None or valid is None else valid[mine]
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(
            items, mask=None if item_valid is None else ~item_valid), mask=pa.array(~picked))

    rows = group[first].astype(np.int64)   # each row's (run, key, chunk) codes, taken apart
    run_ids = dicts[0].take(pa.array(rows // (len(dicts[1]) * len(dicts[2])))).cast(pa.string())
    table = pa.table({
        "run_id": run_ids,
        "key": dicts[1].take(pa.array(rows // len(dicts[2]) % len(dicts[1]))).cast(pa.string()),
        "chunk": dicts[2].take(pa.array(rows % len(dicts[2]))).cast(pa.int32()),
        "started_us": pa.array([starts.get(r) for r in run_ids.to_pylist()], pa.int64()),
        "n": pa.array(count, pa.int32()),
        "first_step": pa.array(step[first], pa.int64()),
        "stride": pa.array(stride, pa.int64(), mask=~regular),
        "steps": lists(~regular, step),
        "values32": lists(exact, narrow),
        "values64": lists(~exact, value),
    })
    return table


def _strides(step: Any, first: Any, count: Any) -> tuple[Any, Any]:
    """Each row's stride, and whether its steps are all of ``first_step + i * stride`` with the last
    of them a BIGINT (``step``: sorted within each row; rows from ``first``, ``count`` points)."""
    import numpy as np

    n = len(step)
    with np.errstate(over="ignore"):
        gaps = np.empty(n, dtype=np.int64)
        gaps[:-1] = step[1:] - step[:-1]   # wraps past int64: then negative, as no gap of sorted steps is
    stride = np.where(count > 1, gaps[np.minimum(first, max(n - 1, 0))], 1)
    same = np.ones(n, dtype=bool)
    np.equal(gaps[1:], gaps[:-1], out=same[1:])
    same[first] = True
    same[first + count - 1] = True   # the gap to the next row's first point is not the row's
    even = np.logical_and.reduceat(same, first) if n else np.zeros(0, dtype=bool)
    fits = (count == 1) | (stride <= np.iinfo(np.int64).max // np.maximum(count - 1, 1))
    return stride, (count == 1) | ((stride > 0) & even & fits)
