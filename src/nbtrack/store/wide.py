"""The wide part of ``runs()``: params, metrics and values as one column per key.

One long read per table (each scan of a child table costs the same whatever it selects: at 10^6 runs
about 50 ms, most of it comparing run ids), split into columns in Python with numpy matrices. (One
filtered aggregate per key inside DuckDB grew with the square of the keys: 1,000 keys took 11 s, and a
run with 50,000 params crashed the process.) Reads the ``nbt_sel`` temp table of selected runs (``row``,
``run_id`` and locality.run_key's columns) that ``queries.runs_frame`` makes.
"""
from __future__ import annotations

from typing import Any

import duckdb

from ..errors import warn
from . import codec, locality
from .results import arrow


MAX_COLUMNS = 1000   # params, metrics and values columns of runs(): more is asked for with max_columns
TABLES = ("params", "metrics", "values")
PREFIX = {"params": "params.", "metrics": "metrics.", "values": "values."}
# Each value in typed columns, so that no value is parsed in Python unless it is a container: an int
# is read from its exact text (a DOUBLE holds only 53 bits); DuckDB's storage may keep -0.0 as 0.0 in
# a DOUBLE column (constant compression), so a float zero's sign is read from the text too.
_LONG = """k.key, k.vtype,
           CASE WHEN k.vtype = 'int' THEN TRY_CAST(k.value_json AS BIGINT) END AS i,
           CASE WHEN k.vtype = 'float' AND k.value_num = 0 THEN CAST(k.value_json AS DOUBLE)
                WHEN k.vtype IN ('float', 'int', 'bool') THEN k.value_num END AS f,
           CASE WHEN k.vtype = 'str' THEN k.value_text END AS s,
           CASE WHEN k.vtype NOT IN ('int', 'float', 'bool', 'str', 'none') THEN k.value_json END AS j"""
_LONG_COLUMNS = "t.key, t.vtype, t.value_json, t.value_num, t.value_text"
_METRICS = "k.key, k.value AS f"


def _class(vtypes: set[str]) -> str:
    """How a key's values become one column, by the value types the key holds in the selected runs."""
    return {frozenset({"int"}): "int", frozenset({"bool"}): "bool", frozenset({"float"}): "float",
            frozenset({"float", "int"}): "float", frozenset({"str"}): "str"}.get(frozenset(vtypes), "object")


def read(con: duckdb.DuckDBPyConnection, max_columns: int | None, n_rows: int,
         span: tuple[int, int] | None = None) -> list[Any]:
    """The columns of the selected runs as frames, in the frame's order (params, metrics, values; by key
    within each); when there are more than ``max_columns``, those set in the most runs, with a warning
    that says how to get the rest. ``span``: the selected runs' least and greatest ``started_us``, as
    constants DuckDB skips row groups by (a page of the panel's table: 200 runs started together)."""
    import pyarrow.compute as pc

    near = f"t.started_us BETWEEN {int(span[0])} AND {int(span[1])}" if span else "TRUE"
    longs = {}
    shared = locality.shared_starts(con)   # as constants: the branch for shared starts is left out when none are
    for table in TABLES:   # joined by the runs' starts (locality.keyed): at 10^6 runs, 1.6x faster than by id
        metrics = table == "metrics"
        # the typed values are made after the join: before it, they were made for every row (0.6 s)
        rows = locality.keyed(table, "t.key, t.value" if metrics else _LONG_COLUMNS, near, shared)
        longs[table] = arrow(con, f"SELECT s.row, {_METRICS if metrics else _LONG} FROM {rows} k "
                                  f"JOIN nbt_sel s ON {locality.joined('k', 's')}")
    keys = []   # (table, key, class, runs)
    for table, long in longs.items():
        if not long.num_rows:
            continue
        if table == "metrics":
            counts = long.group_by("key").aggregate([("row", "count")])
            keys += [(table, k, "float", n) for k, n in zip(counts["key"].to_pylist(), counts["row_count"].to_pylist())]
            continue
        groups = long.group_by("key").aggregate([("row", "count"), ("vtype", "distinct")])
        keys += [(table, k, _class(set(v)), n) for k, v, n in
                 zip(groups["key"].to_pylist(), groups["vtype_distinct"].to_pylist(), groups["row_count"].to_pylist())]
    if max_columns is not None and len(keys) > max_columns:
        keys.sort(key=lambda k: (-k[3], k[0], k[1]))
        warn(f"runs(): the selected runs have {len(keys)} distinct params, metrics and values; the frame "
             f"keeps the {max_columns} set in the most runs (runs(max_columns=None) for all of them, or "
             "narrow the runs with where= or experiment=)")
        keys = keys[:max_columns]
    order = {t: i for i, t in enumerate(TABLES)}
    keys.sort(key=lambda k: (order[k[0]], k[1]))
    blocks = []
    for table, long in longs.items():
        mine = [(key, cls) for t, key, cls, _ in keys if t == table]
        if not mine:
            continue
        for cls in ("int", "bool", "float", "str", "object"):
            names = [key for key, c in mine if c == cls]
            if names:
                part = long.filter(pc.is_in(long["key"], value_set=_strings(names)))
                blocks.append((table, names, _pivot(part, cls, names, n_rows, PREFIX[table])))
    return [frame for _, _, frame in blocks], [f"{PREFIX[t]}{k}" for t, k, _, _ in keys]


def _strings(names: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(names, pa.string())


def _pivot(long: Any, cls: str, names: list[str], n_rows: int, prefix: str) -> Any:
    """Long rows (row, key, typed values) of one value class as a frame of columns, in the dtypes a
    DuckDB result gives: int64/bool, or nullable Int64/boolean where runs lack the key; str as text;
    a key of mixed or container values as objects (pandas would make Timestamps of datetimes). Built
    from numpy matrices: pandas' own pivot and per-column assignment took minutes for 50,000 keys."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = long.column("row").to_numpy()
    where = pc.index_in(long.column("key"), value_set=_strings(names)).to_numpy()
    labels = [prefix + n for n in names]
    shape = (n_rows, len(names))
    if cls == "float":
        matrix = np.full(shape, np.nan)
        matrix[rows, where] = long.column("f").to_numpy(zero_copy_only=False)
        return pd.DataFrame(matrix, columns=labels)
    if cls in ("int", "bool"):
        values = (long.column("i").to_numpy(zero_copy_only=False) if cls == "int"
                  else long.column("f").to_numpy(zero_copy_only=False) != 0)
        present = np.zeros(shape, dtype=bool)
        present[rows, where] = True
        matrix = np.zeros(shape, dtype="int64" if cls == "int" else "bool")
        matrix[rows, where] = values
        full = present.all(axis=0)
        out = pd.DataFrame(matrix[:, full], columns=[n for n, f in zip(labels, full) if f])
        holes = {label: (pd.arrays.IntegerArray if cls == "int" else pd.arrays.BooleanArray)(
            matrix[:, j].copy(), ~present[:, j]) for j, label in enumerate(labels) if not full[j]}
        return pd.concat([out, pd.DataFrame(holes)], axis=1)[labels] if holes else out
    if cls == "str":
        matrix = np.full(shape, None, dtype=object)
        matrix[rows, where] = long.column("s").to_numpy(zero_copy_only=False)
        return pd.DataFrame(matrix, columns=labels).infer_objects()   # pandas' text dtype, as DuckDB gives
    # mixed types and containers: each value from its typed column, vectorized by type; only the
    # containers (and ints past 64 bits, and text DuckDB could not hold as str) are parsed
    vtype = long.column("vtype").cast(pa.string()).to_numpy(zero_copy_only=False)
    items = np.full(len(rows), None, dtype=object)
    for kind, column, convert in (("int", "i", None), ("float", "f", None), ("str", "s", None),
                                  ("bool", "f", bool)):
        mask = vtype == kind
        if mask.any():
            picked = long.column(column).filter(pa.array(mask)).to_pylist()
            items[mask] = [convert(v) for v in picked] if convert else picked
    other = ~np.isin(vtype, ["int", "float", "str", "bool", "none"])
    if other.any():
        parsed = np.empty(int(other.sum()), dtype=object)
        for i, v in enumerate(long.column("j").filter(pa.array(other)).to_pylist()):
            parsed[i] = codec.loads(v)   # one by one: numpy would make arrays of equal-length lists
        items[other] = parsed
    matrix = np.full(shape, None, dtype=object)
    matrix[rows, where] = items
    return pd.DataFrame(matrix, columns=labels, dtype=object)   # as they are: no inference of timedeltas
