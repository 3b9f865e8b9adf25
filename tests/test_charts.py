"""Curves downsampling in the store, and the chart specs nbtrack.charts builds from a real store."""
from __future__ import annotations

import math

import duckdb
import pandas as pd
import pytest

import nbtrack
from nbtrack import charts
from nbtrack.recorder.run import ActiveRun
from nbtrack.store import Store, curves, schema

from helpers import make_runs


def _run(store: Store, name: str, params: dict, points: dict[str, list[float]] | None = None,
         metrics: dict | None = None, chunk_every: int | None = None) -> str:
    run = ActiveRun(store, name=name, experiment="e", kind="script")
    for k, v in params.items():
        run.params[k] = (v, "given")
    for key, values in (points or {}).items():
        for step, value in enumerate(values):
            run.log_dict(step, {key: value})
            if chunk_every and step % chunk_every == chunk_every - 1:
                run._flush_points()
    run.metrics.update({k: (v, None, "cell") for k, v in (metrics or {}).items()})
    run.finish()
    return run.run_id


def test_long_curves_are_downsampled_keeping_spikes_ends_and_order(tmp_path):
    store = Store(tmp_path / "runs.duckdb")
    values = [math.sin(s / 500) for s in range(20_000)]
    values[12_345] = 50.0      # a spike
    values[777] = -40.0        # a dip
    long_id = _run(store, "long", {"lr": 0.1}, {"loss": values})
    short_id = _run(store, "short", {"lr": 0.2}, {"loss": [3.0, 2.0, 1.0]})
    store.sync()
    with store.connect() as con:
        pts = curves.curves(con, [long_id, short_id])
        raw = curves.curves(con, [long_id], max_points=200)   # another level: computed from the history
    long = pts[pts.run_id == long_id]
    assert 900 <= len(long) <= 1002
    assert long["step"].is_monotonic_increasing
    assert {0, 19_999, 12_345, 777} <= set(long["step"])
    assert long["value"].max() == 50.0 and long["value"].min() == -40.0
    short = pts[pts.run_id == short_id]
    assert short[["step", "value"]].values.tolist() == [[0, 3.0], [1, 2.0], [2, 1.0]]
    assert len(raw) <= 202 and raw["value"].max() == 50.0


def test_only_long_series_keep_a_stored_curve_and_short_ones_read_the_same(tmp_path):
    """A series of up to STORED_CURVE_PAST points is bucketed when read (stored twice, it doubled a store's
    bytes per point); a longer one keeps its bucketed curve in metric_curves. Both read the same way."""
    store = Store(tmp_path / "runs.duckdb")
    n = curves.STORED_CURVE_PAST
    short = [math.cos(s / 40) for s in range(n)]
    short[1234] = 9.0
    run_id = _run(store, "both", {}, {"short": short, "long": [math.sin(s / 500) for s in range(n + 1)]})
    store.sync()
    with store.connect() as con:
        kept = dict(con.execute("SELECT key, count(*) FROM metric_curves GROUP BY key").fetchall())
        pts = curves.curves(con, [run_id])
        only_short = curves.curves(con, [run_id], keys=["short"])
        history = curves.history(con, run_id)
    assert "short" not in kept and 900 <= kept["long"] <= 1002
    got = pts[pts.key == "short"]
    assert 900 <= len(got) <= 1002 and got["value"].max() == 9.0 and got["step"].is_monotonic_increasing
    assert only_short[["step", "value"]].values.tolist() == got[["step", "value"]].values.tolist()
    assert len(pts[pts.key == "long"]) == kept["long"]
    assert len(history) == 2 * n + 1   # every point stays in the history


def test_curves_of_a_run_imported_chunk_by_chunk_cover_all_its_points(tmp_path):
    """The importer recomputes a run's stored curves whenever another chunk of its points arrives."""
    store = Store(tmp_path / "runs.duckdb")
    run = ActiveRun(store, name="chunks", experiment="e", kind="script")
    run.start()
    for s in range(3000):
        run.log_dict(s, {"loss": float(s)})
        if s in (999, 1999):
            run._flush_points()
            store.sync()   # a reader imports the first chunks while the run goes on
    run.finish()
    store.sync()
    with store.connect() as con:
        pts = curves.curves(con, [run.run_id])
    assert pts["step"].min() == 0 and pts["step"].max() == 2999
    assert pts["value"].max() == 2999.0


def test_a_store_from_before_the_curves_table_is_backfilled_when_opened(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(schema.INITIAL)
    con.execute("INSERT INTO schema_migrations VALUES ('0001_initial', now(), '0.1.0')")
    con.execute("INSERT INTO runs (run_id, seq, experiment, name, status, kind, started_at) "
                "VALUES ('r1', 1, 'e', 'n', 'finished', 'cell', now())")
    con.execute("INSERT INTO metric_history SELECT 'r1', 'loss', range, range * 2.0, 0 FROM range(5000)")
    con.close()
    store = Store(path)
    with store.connect() as con:
        pts = curves.curves(con, ["r1"])
        applied = [r[0] for r in con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]
        stored = con.execute("SELECT count(*) FROM metric_curves").fetchone()[0]
    assert applied[:2] == ["0001_initial", "0002_metric_curves"] and "0010_short_curves" in applied
    assert stored == 0   # 5,000 points: bucketed when read (0010 removed the curve 0002 stored)
    assert 900 <= len(pts) <= 1002 and pts["value"].max() == 9998.0


@pytest.fixture
def sweep(tmp_path):
    store = Store(tmp_path / "runs.duckdb")
    for model in ("rf", "gb"):
        for lr in (0.1, 0.01, 0.001):
            for seed in (0, 1):
                acc = 0.9 - lr + (0.01 if model == "gb" else 0) + seed / 1000
                _run(store, f"train-{model}", {"lr": lr, "model": model, "seed": seed, "epochs": 5},
                     {"loss": [1 / (s + 1) + lr for s in range(50)]}, {"acc": acc})
    nbtrack.connect(store.path)
    return store


def test_scatter_spec_defaults_fields_and_selection_params(sweep):
    frame = nbtrack.runs(store=sweep)
    chart = charts.scatter(frame)
    spec = chart.to_dict()            # validated against the Vega-Lite schema
    enc = spec["encoding"]
    # the metric most runs have, against the param that varies most (lr: 3 values; model, seed: 2)
    assert enc["y"]["field"] == "metrics\\.acc" and enc["y"]["title"] == "acc"
    assert enc["x"]["field"] == "params\\.lr" and enc["x"]["type"] == "quantitative"
    assert enc["x"]["scale"] == {"type": "log"}          # lr spans two orders of magnitude
    assert enc["y"]["scale"] == {"zero": False}
    assert enc["color"]["field"] in ("params\\.model", "params\\.seed")
    params = {p["name"]: p for p in spec["params"]}
    assert params["selected_ids"]["value"] == []
    assert params["brush"]["select"] == {"type": "interval", "encodings": ["x", "y"]}
    assert "selected_ids" in enc["opacity"]["condition"]["test"]
    values = next(iter(spec["datasets"].values()))
    assert len(values) == 12
    assert {v["run_id"] for v in values} == set(frame["run_id"])
    assert all(v["label"].startswith("train-") for v in values)
    # the same chart for the panel: same encodings, data by name, supplied by the front end
    named = charts.scatter(frame, named_data=True).to_dict()
    assert named["data"] == {"name": "runs"} and "datasets" not in named
    assert named["encoding"] == enc
    assert named["usermeta"]["nbtrack"]["fields"] == ["run_id", "label", "params.lr", "metrics.acc",
                                                      enc["color"]["field"].replace("\\", ""), "status"]


def test_scatter_of_a_categorical_axis_brushes_only_the_numeric_one(sweep):
    spec = charts.scatter(x="params.model", y="metrics.acc", color=None, store=sweep).to_dict()
    assert spec["encoding"]["x"]["type"] == "nominal"
    assert {p["name"]: p for p in spec["params"]}["brush"]["select"]["encodings"] == ["y"]


def test_parallel_spec_folds_varying_params_into_the_metric(sweep):
    spec = charts.parallel(store=sweep).to_dict()
    meta = spec["usermeta"]["nbtrack"]
    assert meta["dims"][-1] == "metrics.acc"
    assert set(meta["dims"][:-1]) == {"params.lr", "params.model", "params.seed"}   # epochs is constant
    calc = {t["as"]: t["calculate"] for t in spec["transform"] if "calculate" in t}
    model_dim = f"nbt_d{meta['dims'].index('params.model')}"
    assert calc[model_dim] == 'indexof(["gb", "rf"], datum["params.model"] + \'\')'
    fold = next(t for t in spec["transform"] if "fold" in t)
    assert len(fold["fold"]) == 4
    assert spec["encoding"]["detail"]["field"] == "run_id"
    assert spec["encoding"]["color"]["field"] == "metrics\\.acc"


def test_bars_show_spread_only_when_a_group_has_repeats(sweep):
    spec = charts.bars(store=sweep).to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["bar", "errorbar", "circle"]
    assert spec["usermeta"]["nbtrack"]["group"] == "name"
    frame = nbtrack.runs(store=sweep)
    one_each = frame.drop_duplicates("name")
    spec = charts.bars(one_each, metric="metrics.acc").to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "circle"]


def test_curves_chart_one_colour_per_run_and_a_panel_per_metric(sweep):
    frame = nbtrack.runs(store=sweep)
    ids = list(frame["run_id"][:3])
    spec = charts.curves(ids, store=sweep).to_dict()
    assert spec["encoding"]["color"]["field"] == "label"
    values = next(iter(spec["datasets"].values()))
    assert {v["run_id"] for v in values} == set(ids)
    assert len(values) == 3 * 50
    assert spec["title"] == "loss"
    curves = charts.curve_points(ids, store=sweep)
    curves2 = pd.concat([curves, curves.assign(key="acc2")])
    faceted = charts.curves(data=curves2).to_dict()
    assert faceted["facet"]["field"] == "key" and faceted["resolve"]["scale"]["y"] == "independent"


def test_a_column_that_does_not_exist_is_named_with_the_fix(sweep):
    with pytest.raises(KeyError, match=r"no column 'lr'.*params\.lr"):
        charts.scatter(x="lr", store=sweep)


def test_dotted_and_hostile_keys_stay_flat_fields(tmp_path):
    store = Store(tmp_path / "runs.duckdb")
    for i in range(3):
        _run(store, "<b>x</b>", {"a.b[0]": i}, metrics={"m": float(i)})
    frame = charts.chart_frame(nbtrack.runs(store=store))
    spec = charts.scatter(frame, x="params.a.b[0]", y="metrics.m").to_dict()
    assert spec["encoding"]["x"]["field"] == "params\\.a\\.b\\[0\\]"
    values = next(iter(spec["datasets"].values()))
    assert values[0]["params.a.b[0]"] == 0 and values[0]["label"].startswith("<b>x</b>")


def test_curves_query_scales_to_many_runs(tmp_path):
    """500 runs x 2,000 steps (the benchmark runs 20,000): at most ~1,000 points a series leave DuckDB."""
    store = make_runs(tmp_path / "runs.duckdb", 500, n_params=2, n_metrics=2, curves=500, steps=2000)
    frame = nbtrack.runs(store=store)
    pts = charts.curve_points(frame, store=store)
    per_run = pts.groupby("run_id").size()
    assert len(per_run) == 500 and per_run.max() <= 1002


def test_container_and_mixed_params_are_charted_as_text(tmp_path):
    store = Store(tmp_path / "runs.duckdb")
    for i, layers in enumerate([[64, 32], [128], None]):
        _run(store, "net", {"layers": layers, "mixed": [1, "a", 2.5][i]}, metrics={"acc": 0.5 + i / 10})
    frame = charts.chart_frame(nbtrack.runs(store=store))
    assert list(frame["params.layers"][:2]) == ["[64, 32]", "[128]"] and frame["params.layers"].isna()[2]
    spec = charts.scatter(frame, x="params.layers", y="metrics.acc").to_dict()
    assert spec["encoding"]["x"]["type"] == "nominal"
    panel = nbtrack.compare(store=store)
    assert panel.table["data"]["params.layers"] == ["[64, 32]", "[128]", None]
    panel.close()


def test_bars_group_by_the_field_asked_for(sweep):
    frame = nbtrack.runs(store=sweep)
    param = next(c for c in frame.columns if c.startswith("params.") and frame[c].nunique() > 1)
    spec = charts.bars(frame, metric="metrics.acc", group=param).to_dict()
    assert spec["usermeta"]["nbtrack"]["group"] == param
    assert spec["layer"][0]["encoding"]["x"]["field"] == charts.field(param)   # one bar per value of it
    with pytest.raises(KeyError, match="no column 'params.nope'"):
        charts.bars(frame, metric="metrics.acc", group="params.nope")


def test_nbtrack_charts_offers_every_builder_and_show():
    from nbtrack import chart_data, plots

    frame = ["chart_frame", "defaults"]   # the runs as the charts take them, and their default axes
    assert set(charts.__all__) == set(plots.__all__) | set(frame) | {"show"}
    assert all(getattr(charts, name) is getattr(plots, name) for name in plots.__all__)
    assert all(getattr(charts, name) is getattr(chart_data, name) for name in frame)
