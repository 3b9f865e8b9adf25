"""Odd values through the real path: a tracked cell or nbtrack.run -> spool -> import -> every way of
reading them back (get, runs, where, the CLI's JSON, CSV/Parquet/JSON exports). Each value comes back
as itself, or as the one representation the README's "How values are stored" table states."""
from __future__ import annotations

import csv
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack import formats
from nbtrack.cli import main
from nbtrack.secrets import is_secret_name, redact_value, scrub_text
from nbtrack.store import codec
from nbtrack.store.records import encode_value

from strategies import FLOATS, ODD_TEXT, SCALARS, VALUES, same

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _plain(value: Any) -> bool:
    """Nothing nbtrack's secret rules would redact (a generated key that happens to read 'auth_x')."""
    return not redact_value(value, (), "")[1]


KEYS = ODD_TEXT.filter(lambda k: k != "" and _plain(k) and not scrub_text(k)[1] and _plain({k: 1}))
NAMES = ODD_TEXT.filter(lambda t: t.strip() != "" and not scrub_text(t)[1])


@dataclass
class Spec:
    name: str
    tags: list[str]
    params: dict[str, Any]
    curve_key: str
    curve: list[float]
    run_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


SPECS = st.builds(Spec, name=NAMES, tags=st.lists(NAMES, max_size=3, unique=True),
                  params=st.dictionaries(st.one_of(KEYS, st.sampled_from(["shared", "mixed"])),
                                         VALUES.filter(_plain), max_size=5),
                  curve_key=KEYS, curve=st.lists(FLOATS, min_size=1, max_size=4))


def _column_value(key: str, specs: list[Spec], value: Any) -> Any:
    """What runs() shows for ``value`` of param ``key``: exact, except that a key holding ints in some
    runs and floats in others is a float column (documented)."""
    vtypes = {encode_value(s.params[key])["vtype"] for s in specs if key in s.params}
    if vtypes == {"float", "int"}:
        return float(value)
    return value


def _cell(frame: pd.DataFrame, run_id: str, column: str) -> Any:
    return formats._plain(frame.set_index("run_id").at[run_id, column])


def _check_read_paths(store: Any, specs: list[Spec], tmp_path: Any) -> None:
    frame = nbtrack.runs(store=store)
    assert sorted(frame["run_id"]) == sorted(s.run_id for s in specs)
    runner = CliRunner()
    out = runner.invoke(main, ["runs", "--json", "--store", str(store)])
    assert out.exit_code == 0, (out.output, out.exception)
    records = {r["run_id"]: r for r in json.loads(out.output)}
    paths = {}
    for fmt in ("csv", "parquet", "json"):
        paths[fmt] = tmp_path / f"runs-{uuid.uuid4().hex[:6]}.{fmt}"
        result = runner.invoke(main, ["export", "--format", fmt, "-o", str(paths[fmt]), "--store", str(store)])
        assert result.exit_code == 0, (result.output, result.exception)
    with open(paths["csv"], newline="", encoding="utf-8") as f:
        csv_rows = {r["run_id"]: r for r in csv.DictReader(f)}
    parquet = formats.read_parquet(paths["parquet"]).set_index("run_id")
    exported = {r["run_id"]: r for r in json.loads(paths["json"].read_text(encoding="utf-8"))}
    assert exported == records

    for spec in specs:
        run = nbtrack.get(spec.run_id, store=store)
        assert run.name == codec.text_safe(spec.name)
        assert run.tags == [codec.text_safe(t) for t in spec.tags]
        for key, value in spec.params.items():   # a key is text: a lone surrogate in it is escaped
            assert same(run.params[codec.text_safe(key)], value), (key, value)
        key = codec.text_safe(spec.curve_key)
        history = run.history(key)["value"].tolist()
        assert len(history) == len(spec.curve) and all(_same_double(a, b) for a, b in zip(history, spec.curve)), \
            (key, history, spec.curve)
        assert _same_double(run.metrics[key], spec.curve[-1])
        assert _same_double(_cell(frame, spec.run_id, f"metrics.{key}"), spec.curve[-1])
        row, csv_row = records[spec.run_id], csv_rows[spec.run_id]
        assert row["name"] == codec.text_safe(spec.name) and row["tags"] == run.tags
        assert json.loads(csv_row["tags"]) == run.tags
        for key, value in spec.params.items():
            column = f"params.{codec.text_safe(key)}"
            shown = _column_value(key, specs, value)
            assert same(_cell(frame, spec.run_id, column), shown), (column, shown)
            in_float_column = pd.api.types.is_float_dtype(frame[column].dtype)
            if in_float_column and math.isnan(shown):   # a float column: NaN reads as missing (documented)
                assert row[column] is None and csv_row[column] == ""
            else:
                assert same(codec.decode(row[column]), shown)
                assert csv_row[column] == formats.csv_text(shown)
            assert same(formats._plain(parquet.at[spec.run_id, column]), shown), \
                (column, parquet.at[spec.run_id, column], shown)
            if _filterable(value):
                quoted = codec.text_safe(key).replace("`", "``")
                hits = nbtrack.runs(where=f"params.`{quoted}` = {_literal(value)}", store=store)
                assert spec.run_id in set(hits["run_id"]), (key, value)
        one = nbtrack.runs(where=f"run_id = '{spec.run_id}'", store=store)
        assert one["run_id"].tolist() == [spec.run_id]


def _same_double(a: float, b: float) -> bool:
    """Metrics and curve points are DOUBLE columns, whose storage may keep -0.0 as 0.0 (documented)."""
    return same(a, b) or (a == 0 and b == 0)


def _filterable(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):   # compared exactly past 2^53 too; past 10^308 a filter refuses the number
        return abs(value) < 10**300
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


@SETTINGS
@given(st.lists(SPECS, min_size=1, max_size=3))
def test_script_runs_round_trip_through_every_read_path(tmp_path, specs):
    store = tmp_path / uuid.uuid4().hex / "runs.duckdb"
    for spec in specs:
        with nbtrack.run(spec.name, params=spec.params, tags=spec.tags, store=store) as run:
            for step, value in enumerate(spec.curve):
                run.log(step=step, **{spec.curve_key: value})
        spec.run_id = run.run_id
    _check_read_paths(store, specs, tmp_path)


# a cell's literal params: what a person can write as a literal (no NaN, no Decimal, no set())
LITERAL_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from([2**64, -(10**400)]),
                            st.floats(allow_nan=False, allow_infinity=False), ODD_TEXT, st.binary(max_size=8))
LITERALS = st.recursive(LITERAL_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, min_size=1, max_size=3).map(tuple),
    st.dictionaries(st.one_of(ODD_TEXT, st.tuples(ODD_TEXT, st.integers())), inner, max_size=3)), max_leaves=8)
CELL_VALUES = SCALARS.filter(lambda v: not isinstance(v, (int, float)) or isinstance(v, bool)
                             or (isinstance(v, int) and abs(v) > 10**308))
# a name like p_pw is a secret's name, redacted by design (tested in test_secrets.py): not drawn here
IDENT = (st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True) | st.sampled_from(["λ", "naïve", "变量"])).filter(
    lambda k: not any(is_secret_name(f"{prefix}_{k}") for prefix in "pvm"))


@SETTINGS
@given(name=NAMES, tags=st.lists(NAMES, max_size=2, unique=True),
       params=st.dictionaries(IDENT, LITERALS.filter(_plain), max_size=4),
       values=st.dictionaries(IDENT, CELL_VALUES.filter(_plain), max_size=4),
       metrics=st.dictionaries(IDENT, FLOATS, max_size=3),
       curve_key=KEYS, curve=st.lists(FLOATS, min_size=1, max_size=3))
def test_a_tracked_cell_round_trips(ip, tmp_path, name, tags, params, values, metrics, curve_key, curve):
    params = {f"p_{k}": v for k, v in params.items()}
    values = {f"v_{k}": v for k, v in values.items()}
    metrics = {f"m_{k}": v for k, v in metrics.items()}
    assume(_plain(list(values)) and _plain(list(params)))
    store = tmp_path / uuid.uuid4().hex / "runs.duckdb"
    nbtrack.connect(store)
    ip.user_ns.update({"_values": values, "_metrics": metrics, "_curve": curve, "_key": curve_key})
    lines = [f"%%track {name!r} " + " ".join(f"-t {t!r}" for t in tags), "import nbtrack"]
    lines += [f"{k} = {v!r}" for k, v in params.items()]
    lines += [f"{k} = _values[{k!r}]" for k in values] + [f"{k} = _metrics[{k!r}]" for k in metrics]
    lines += ["for _i, _x in enumerate(_curve):", "    nbtrack.log(step=_i, **{_key: _x})"]
    result = ip.run_cell("\n".join(lines))
    assert result.success, result.error_in_exec or result.error_before_exec
    run = nbtrack.last()
    assert run.status == "finished" and run.name == codec.text_safe(name)
    assert run.tags == [codec.text_safe(t) for t in tags]
    assert {k: run.param_kinds[k] for k in params} == {k: "literal" for k in params}
    for key, value in params.items():
        assert same(run.params[key], value), (key, run.params[key], value)
    for key, value in values.items():
        assert same(run.values[key], value), (key, run.values[key], value)
    for key, value in metrics.items():
        assert _same_double(run.metrics[key], value)
    assert _same_double(run.metrics[codec.text_safe(curve_key)], curve[-1])
    frame = nbtrack.runs(store=store)
    for key, value in {**params, **values}.items():
        column = f"params.{key}" if key in params else f"values.{key}"
        assert same(_cell(frame, run.run_id, column), value), (column, value)


STEPS = st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(-3, 3),
                  st.sampled_from([-2**63, 2**63 - 1, -2**62 - 1, 2**62 + 1]))
SERIES = st.lists(st.tuples(STEPS, FLOATS), min_size=1, max_size=12)


def _points(rows: list[tuple[str, int, float]]) -> list[tuple[Any, ...]]:
    """Rows as a sorted multiset, NaN comparable; -0.0 may come back as 0.0 (DuckDB's storage, as for
    every stored double: documented)."""
    return sorted((k, s, math.isnan(v), 0.0 if math.isnan(v) else v + 0.0) for k, s, v in rows)


@SETTINGS
@given(series=st.dictionaries(st.sampled_from(["loss", "acc", "lr"]), SERIES, min_size=1, max_size=3),
       evenly=st.booleans())
def test_logged_points_round_trip_whatever_their_steps(tmp_path_factory, series, evenly):
    """A series is stored as one row, its steps as first step and stride when evenly spaced and its
    values as float32 when each is exactly one: any steps (repeated, out of order, the ends of int64)
    and any double come back as logged, through get().history() and the metric_history view, in step
    order."""
    if evenly:   # also the common case: steps 0, 1, 2, ...
        series = {k: [(i, v) for i, (_, v) in enumerate(points)] for k, points in series.items()}
    store = tmp_path_factory.mktemp("points") / "runs.duckdb"
    with nbtrack.run("points", store=store) as run:
        for key, points in series.items():
            for step, value in points:
                run.log(step=step, **{key: value})
    logged = [(k, s, v) for k, points in series.items() for s, v in points]
    history = nbtrack.get(run.run_id, store=store).history()   # (get imports the run first)
    assert _points(list(zip(history["key"], history["step"], history["value"]))) == _points(logged)
    for _, steps in history.groupby("key", sort=False)["step"]:
        assert list(steps) == sorted(steps)
    with nbtrack.store.Store(store).connect(read_only=True) as con:
        view = con.execute("SELECT key, step, value FROM metric_history WHERE run_id = ?", [run.run_id]).fetchall()
        rows = con.execute("SELECT count(*) FROM metric_series WHERE run_id = ?", [run.run_id]).fetchall()[0][0]
    assert _points(view) == _points(logged)
    assert rows == len(series)   # one points file: one row a key


POINT = st.tuples(st.sampled_from(["r1", "r2"]), st.sampled_from(["loss", "acc"]), st.sampled_from([0, 7]),
                  STEPS, FLOATS)


@SETTINGS
@given(points=st.lists(POINT, min_size=1, max_size=40), long=st.integers(0, 2_500), evenly=st.booleans(),
       files=st.booleans())
@example(points=[("r1", "loss", 0, s, 0.5) for s in (-2**63, -2**62, 0, 2**62)], long=0, evenly=True,
         files=False)   # evenly spaced, but first_step + 3 * stride is past int64: steps stored one by one
def test_series_made_at_import_are_those_the_migration_makes(points, long, evenly, files):
    """An import makes a store's series in numpy (points.series), migration 0012 in SQL
    (schema.series_sql): the same rows from the same points, whatever their steps and values, a
    series past one row's SERIES_ROW_POINTS included. (Points of equal step may be in either order.)"""
    import struct

    import duckdb
    import numpy as np
    import pyarrow as pa

    from nbtrack.store import points as store_points
    from nbtrack.store import schema

    steps = range(long) if evenly else np.random.default_rng(long).integers(-5, long + 5, long)
    points = points + [("r1", "loss", 0, int(s), float(s) / 3) for s in steps]

    def points_table(some: list[tuple[Any, ...]]) -> pa.Table:
        run, key, chunk, step, value = (list(c) for c in zip(*some))
        return pa.table({"run_id": pa.array(run).dictionary_encode(), "key": pa.array(key).dictionary_encode(),
                         "step": pa.array(step, pa.int64()), "value": pa.array(value, pa.float64()),
                         "chunk": pa.array(chunk, pa.int32()).dictionary_encode()})

    if files:   # as an import reads them: a table of each points file's points, one after the other
        table = pa.concat_tables([points_table([p for p in points if (p[0], p[2]) == f])
                                  for f in sorted({(p[0], p[2]) for p in points})]).unify_dictionaries()
    else:
        table = points_table(points)
    starts = {"r1": 1_767_225_600_000_000}   # r2: not in the store yet

    def rows(insert: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The series rows (points aside), and every point as (run, key, chunk, step, the value's bits)."""
        con = duckdb.connect()
        con.execute(schema.SERIES_TABLE)
        con.register("p", table)
        con.register("s", store_points.series(table, starts))
        con.execute("CREATE TABLE u AS SELECT 'r1' AS run_id, ?::BIGINT AS us", [starts["r1"]])
        con.execute(insert)
        series = con.execute("SELECT run_id, key, chunk, started_us, n, first_step, stride, steps, values32 IS NULL "
                             "FROM metric_series").fetchall()
        found = con.execute(f"SELECT run_id, key, chunk, {schema.SERIES_POINTS} FROM metric_series").fetchall()
        return sorted(series), sorted((*r[:4], struct.pack("d", r[4])) for r in found)

    python, python_points = rows("INSERT INTO metric_series BY NAME SELECT * FROM s")
    sql, sql_points = rows("INSERT INTO metric_series BY NAME " + schema.series_sql(
        "(SELECT p.*, u.us AS started_us FROM p LEFT JOIN u USING (run_id))"))
    assert python == sql
    assert python_points == sql_points
    assert sum(r[4] for r in python) == len(points)
    assert max(r[4] for r in python) <= schema.SERIES_ROW_POINTS
    made = store_points.series(table, starts)   # in the order runs started (store/locality.py)
    order = list(zip(*(made.column(c).to_pylist() for c in ("started_us", "run_id", "key", "chunk", "first_step"))))
    assert order == sorted(order, key=lambda k: (k[0] is None, k[0] or 0, k[1:]))
