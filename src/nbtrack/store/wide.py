"""The wide part of ``runs()``: params, metrics and values as one column per key.

One long read per table and value class, pivoted with numpy matrices. (One filtered aggregate per key
inside DuckDB grew with the square of the keys: 1,000 keys took 11 s, and a run with 50,000 params
crashed the process.) Reads the ``nbt_sel`` temp table of selected runs that ``queries.runs_frame``
makes.
"""
from __future__ import annotations

from typing import Any

import duckdb

from ..errors import warn
from . import codec


MAX_COLUMNS = 1000   # params, metrics and values columns of runs(): more is asked for with max_columns
# How a key's values become one column, by the value types the key holds in the selected runs. An int
# is read from its exact text (a DOUBLE holds only 53 bits); DuckDB's storage may keep -0.0 as 0.0 in a
# DOUBLE column (constant compression), so a float zero's sign is read from the text too.
_TYPED = {
    "int": "CAST(t.value_json AS BIGINT)",
    "bool": "CAST(t.value_num AS BOOLEAN)",
    "float": "CASE WHEN t.value_num = 0 THEN CAST(t.value_json AS DOUBLE) ELSE t.value_num END",
    "str": "t.value_text",
    "json": "t.value_json",   # containers, None and mixed types: decoded in Python
}


def _class(table: str, vtypes: list[str]) -> str:
    if table == "metrics":
        return "float"
    kinds = ",".join(sorted(vtypes))
    return {"int": "int", "bool": "bool", "float": "float", "float,int": "float", "str": "str"}.get(kinds, "json")


def keys(con: duckdb.DuckDBPyConnection, max_columns: int | None) -> list[tuple[str, str, str]]:
    """(table, key, class) of the columns to make, in the frame's order; when there are more than
    ``max_columns``, those set in the most runs, with a warning that says how to get the rest."""
    keys = []
    for table in ("params", "metrics", "values"):
        vtypes = "list(DISTINCT 'float')" if table == "metrics" else "list(DISTINCT vtype)"
        for key, kinds, count in con.execute(
                f'SELECT key, {vtypes}, count(*) FROM "{table}" JOIN nbt_sel USING (run_id) '
                "GROUP BY key").fetchall():
            keys.append((table, key, _class(table, kinds), count))
    if max_columns is not None and len(keys) > max_columns:
        keys.sort(key=lambda k: (-k[3], k[0], k[1]))
        warn(f"runs(): the selected runs have {len(keys)} distinct params, metrics and values; the frame "
             f"keeps the {max_columns} set in the most runs (runs(max_columns=None) for all of them, or "
             "narrow the runs with where= or experiment=)")
        keys = keys[:max_columns]
    order = {"params": 0, "metrics": 1, "values": 2}
    return [(t, k, c) for t, k, c, _ in sorted(keys, key=lambda k: (order[k[0]], k[1]))]


def columns(con: duckdb.DuckDBPyConnection, chosen: list[tuple[str, str, str]], n_rows: int) -> list[Any]:
    """The ``chosen`` columns (from ``keys``) as frames, one per table and value class."""
    import pyarrow as pa

    prefix = {"params": "params.", "metrics": "metrics.", "values": "values."}
    blocks = []
    for table in ("params", "metrics", "values"):
        for cls in _TYPED:
            mine = [(i, key) for i, (t, key, c) in enumerate(chosen) if t == table and c == cls]
            if not mine:
                continue
            con.register("nbt_keys", pa.table({"key": [k for _, k in mine], "col": [i for i, _ in mine]}))
            try:
                value = "t.value" if table == "metrics" else _TYPED[cls]
                # a relation, not execute(): DuckDB 2 warns that Arrow from a DB-API result is one more copy
                long = con.sql(f'SELECT s.row, k.col, {value} AS v FROM "{table}" t JOIN nbt_sel s USING (run_id) '
                               "JOIN nbt_keys k ON k.key = t.key").to_arrow_table()
            finally:
                con.unregister("nbt_keys")
            blocks.append(_pivot(long, cls, {i: prefix[table] + key for i, key in mine}, n_rows))
    return blocks


def _pivot(long: Any, cls: str, names: dict[int, str], n_rows: int) -> Any:
    """Long rows (row, col, v) of one value class as a frame of columns, in the dtypes a DuckDB result
    gives: int64/bool, or nullable Int64/boolean where runs lack the key; str as text; JSON decoded
    into objects (pandas would make Timestamps of datetimes). Built from numpy matrices: pandas' own
    pivot and per-column assignment took minutes for 50,000 keys."""
    import numpy as np
    import pandas as pd

    cols = sorted(names)
    rows = long.column("row").to_numpy()
    where = np.searchsorted(np.array(cols), long.column("col").to_numpy())
    labels = [names[c] for c in cols]
    shape = (n_rows, len(cols))
    values = long.column("v")
    if cls == "float":
        matrix = np.full(shape, np.nan)
        matrix[rows, where] = values.to_numpy()
        return pd.DataFrame(matrix, columns=labels)
    if cls in ("int", "bool"):
        dtype = "int64" if cls == "int" else "bool"
        present = np.zeros(shape, dtype=bool)
        present[rows, where] = True
        matrix = np.zeros(shape, dtype=dtype)
        matrix[rows, where] = values.to_numpy()
        full = present.all(axis=0)
        out = pd.DataFrame(matrix[:, full], columns=[n for n, f in zip(labels, full) if f])
        holes = {label: (pd.arrays.IntegerArray if cls == "int" else pd.arrays.BooleanArray)(
            matrix[:, j].copy(), ~present[:, j]) for j, label in enumerate(labels) if not full[j]}
        return pd.concat([out, pd.DataFrame(holes)], axis=1)[labels] if holes else out
    items = np.empty(len(values), dtype=object)
    for i, v in enumerate(values.to_pylist()):   # one by one: numpy would make arrays of equal-length lists
        items[i] = codec.loads(v) if cls == "json" and v is not None else v
    matrix = np.full(shape, None, dtype=object)
    matrix[rows, where] = items
    if cls == "json":   # object columns as they are: no inference of timedeltas or datetimes
        return pd.DataFrame(matrix, columns=labels, dtype=object)
    return pd.DataFrame(matrix, columns=labels).infer_objects()   # pandas' text dtype, as DuckDB gives
