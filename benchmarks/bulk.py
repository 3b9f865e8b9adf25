"""Big stores made fast: the rows nbtrack's import path writes for script runs, generated in DuckDB.

Importing a million runs through the spool would take about 25 minutes (0.3-0.4 ms a run, plus the
records' writes); these are the same tables, made with a few INSERT ... SELECT statements.
``tests/test_scale.py`` makes a small store both ways and compares every table row by row, so a
figure measured on a bulk store is one a real store of that size would show.

Run ``i`` (0-based) is ``with nbtrack.run(f"run{i}", params=params(i), experiment=f"exp{i % 10}")``
logging ``metrics(i)`` at step 0, then, for the runs that have curves, ``curve(i, step)`` at steps
0..steps-1. Not compared: the spool's bookkeeping (``seq``, ``chunk``) and what the machine adds
(host, times, git, environment).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from nbtrack.store import Store, keyorder
from nbtrack.store.curves import stored_curves_sql
from nbtrack.store.schema import series_sql

N_INT, N_FLOAT, N_STR, N_METRICS = 5, 5, 5, 15
CURVE_KEYS = ("acc", "loss")


def params(i: int, mixed: bool = False) -> dict[str, Any]:
    """Run i's params: ints, floats (exact decimals: their text is the same in Python and DuckDB) and
    strings. ``mixed``: the int keys hold a string in every other run (a key whose type differs)."""
    out: dict[str, Any] = {}
    for k in range(N_INT):
        out[f"i{k}"] = f"s{(i * (k + 3)) % 97}" if mixed and i % 2 else (i * (k + 3)) % 97
    for k in range(N_FLOAT):
        out[f"f{k}"] = ((i * 7 + k * 131) % 1000) / 1000
    for k in range(N_STR):
        out[f"s{k}"] = f"opt{(i + k) % 5}"
    return out


def metrics(i: int) -> dict[str, float]:
    return {f"m{k}": ((i * 13 + k * 17) % 10000) / 10000 for k in range(N_METRICS)}


def curve(i: int, step: int) -> dict[str, float]:
    """A training curve: values a float32 model logs (exact in float32, as ``loss.item()`` gives them)."""
    import numpy as np

    loss = np.float32(1.0 / (1.0 + step * 0.001) + ((i * 31 + step * 17) % 101) * 1e-4)
    return {"acc": float(np.float32(1.0) - loss), "loss": float(loss)}


# the same values in SQL; i and k are BIGINT, step BIGINT
_INT = "(i * (k + 3)) % 97"
_FLOAT = "((i * 7 + k * 131) % 1000) / 1000"
_METRIC = "((i * 13 + k * 17) % 10000) / 10000"
# DOUBLE throughout: a literal 1.0 is a DECIMAL in DuckDB, and would round differently from Python
_LOSS = ("CAST(1.0::DOUBLE / (1.0::DOUBLE + step * 0.001::DOUBLE) + ((i * 31 + step * 17) % 101) * 1e-4::DOUBLE "
         "AS FLOAT)")
_T0 = 1_767_225_600   # 2026-01-01, when run 0 started; run i started i seconds later
# (so no two runs share a start, and shared_starts stays empty, as the importer would leave it)


def run_id(i: int) -> str:
    import hashlib

    return hashlib.md5(str(i).encode()).hexdigest()   # random-looking, as uuid4 ids are


def build(path: Path, n_runs: int, curves: list[tuple[int, int]] = (), mixed: bool = False,
          seq: int = 1) -> Store:
    """A store of ``n_runs`` runs; ``curves``: (how many runs, steps each), given to runs 0, 1, ... in order."""
    store = Store(path)
    store.sync()   # the schema, through nbtrack's migrations
    con = duckdb.connect(str(path))
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"CREATE TEMP TABLE ids AS SELECT i, md5(CAST(i AS VARCHAR)) AS run_id, epoch_us(to_timestamp({_T0} + i)) AS us "
                    f"FROM range({n_runs}) t(i)")
        con.execute(f"""
            INSERT INTO runs BY NAME SELECT run_id, {seq} AS seq, 'exp' || (i % 10) AS experiment, 'run' || i AS name,
                'finished' AS status, 'script' AS kind, to_timestamp({_T0} + i) AS started_at,
                to_timestamp({_T0} + i + 0.5) AS ended_at, 0.5 AS duration_s, [] AS tags, [] AS recorded_tags,
                'bench' AS host, 'bench' AS "user"
            FROM ids ORDER BY i""")
        int_value = (f"CASE WHEN i % 2 = 1 THEN 's' || ({_INT}) END" if mixed else "NULL")
        con.execute(f"""
            INSERT INTO params BY NAME
            SELECT run_id, key, 'given' AS kind, vtype, value_json, value_num, value_text, us AS started_us FROM (
                SELECT i, run_id, us, 'i' || k AS key, k AS o,
                       CASE WHEN {int_value} IS NULL THEN 'int' ELSE 'str' END AS vtype,
                       coalesce(to_json({int_value})::VARCHAR, CAST({_INT} AS VARCHAR)) AS value_json,
                       CASE WHEN {int_value} IS NULL THEN CAST({_INT} AS DOUBLE) END AS value_num,
                       {int_value} AS value_text
                FROM ids, range({N_INT}) r(k)
                UNION ALL
                SELECT i, run_id, us, 'f' || k, 100 + k, 'float', CAST({_FLOAT} AS VARCHAR), {_FLOAT}, NULL
                FROM ids, range({N_FLOAT}) r(k)
                UNION ALL
                SELECT i, run_id, us, 's' || k, 200 + k, 'str', '"opt' || ((i + k) % 5) || '"', NULL, 'opt' || ((i + k) % 5)
                FROM ids, range({N_STR}) r(k))
            ORDER BY i, o""")
        first = 0
        for count, steps in curves:
            _points(con, first, first + count, steps)
            first += count
        _points(con, first, n_runs, 0)
        keyorder.rebuild(con)   # metrics and params in key order, as the importer keeps them
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return store


def _points(con: duckdb.DuckDBPyConnection, first: int, end: int, steps: int) -> None:
    """Points of runs first..end-1 (the metrics at step 0, and ``steps`` steps of curves), a few runs at
    a time so that each insert stays within memory; then their stored curves and final metrics, as the
    importer makes them."""
    per = max(1, 20_000_000 // (steps * len(CURVE_KEYS) + N_METRICS))
    for lo in range(first, end, per):
        hi = min(lo + per, end)
        some = f"(SELECT * FROM ids WHERE i >= {lo} AND i < {hi})"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE pts AS SELECT run_id, key, step, value, us FROM (
                SELECT i, run_id, us, 'm' || k AS key, 0 AS step, {_METRIC} AS value FROM {some}, range({N_METRICS}) r(k)
                UNION ALL
                SELECT i, run_id, us, key, step, CASE key WHEN 'loss' THEN {_LOSS} ELSE CAST(1.0 AS FLOAT) - {_LOSS} END
                FROM {some}, (VALUES ('acc'), ('loss')) k(key), range({steps}) s(step))
            ORDER BY i, key, step""")
        con.execute("INSERT INTO metric_series BY NAME " + series_sql(
            "(SELECT run_id, key, step, value, 0 AS chunk, us AS started_us FROM pts)"))
        con.execute("INSERT INTO metric_curves (run_id, key, step, value, started_us) SELECT d.*, u.us FROM ("
                    + stored_curves_sql("SELECT run_id, key, step, value FROM pts") + ") d JOIN ids u USING (run_id)")
        con.execute("INSERT INTO metrics BY NAME SELECT run_id, key, arg_max(value, step) AS value, max(step) AS step, "
                    "'log' AS source, any_value(us) AS started_us FROM pts GROUP BY run_id, key")
    con.execute("DROP TABLE IF EXISTS pts")
