"""The Python API on a real store: runs(), where filters, get() by prefix, last()."""
from __future__ import annotations

import pandas as pd
import pytest

import nbtrack
from nbtrack.errors import FilterError, FilterSyntaxError, RunNotFoundError
from nbtrack.store.filters import compile_filter


@pytest.fixture
def three_runs(ip):
    for model, depth in [("rf", 4), ("rf", 8), ("gb", 8)]:
        ip.run_cell(f"%%track fit -e demo -t {model}\nmodel = {model!r}\ndepth = {depth}\n"
                    f"acc = round(0.5 + depth / 20 + (model == 'gb') * 0.05, 4)\nnote = model.upper()")
    return nbtrack.runs()


def test_runs_frame_columns_and_types(three_runs):
    df = three_runs
    assert list(df.columns[:8]) == ["run_id", "experiment", "name", "status", "started_at", "ended_at",
                                    "duration_s", "tags"]
    assert {"params.model", "params.depth", "metrics.acc", "values.note"} <= set(df.columns)
    assert df["params.depth"].dtype == "int64" and df["metrics.acc"].dtype == "float64"
    assert df["params.model"].tolist() == ["rf", "rf", "gb"] and df["tags"].tolist() == [["rf"], ["rf"], ["gb"]]
    assert df["values.note"].tolist() == ["RF", "RF", "GB"]
    assert isinstance(df["started_at"].dtype, pd.DatetimeTZDtype) and df["started_at"].is_monotonic_increasing


@pytest.mark.parametrize("where, expected", [
    ("metrics.acc > 0.8", [0.9, 0.95]),
    ("metrics.acc > 0.8 and params.model = 'rf'", [0.9]),
    ("params.model = 'gb' or params.depth < 5", [0.7, 0.95]),
    ("not (params.model = 'rf')", [0.95]),
    ("params.depth in (4, 8) and params.model != 'gb'", [0.7, 0.9]),
    ("params.model like 'r%'", [0.7, 0.9]),
    ("params.depth not in (4)", [0.9, 0.95]),
    ("params.model not like 'r%'", [0.95]),
    ("not params.model like 'g%' and params.depth not in (8)", [0.7]),
    ("tags = 'gb'", [0.95]),
    ("status = 'finished' and metrics.acc >= 0.95", [0.95]),
    ("params.missing is null and values.note = \"GB\"", [0.95]),
    ("metrics.acc is not null", [0.7, 0.9, 0.95]),
    ("params.model = 'x''; DROP TABLE runs; --'", []),
])
def test_where_filters(three_runs, where, expected):
    frame = nbtrack.runs(where=where)
    assert (frame["metrics.acc"].tolist() if "metrics.acc" in frame else []) == expected
    assert len(nbtrack.runs()) == 3


@pytest.mark.parametrize("bad, fragment", [
    ("metrics.acc >", "expected a value"),
    ("metrics.acc > 0.9 and", "expected a field name"),
    ("acc > 0.9", "unknown field 'acc'"),
    ("metrics.acc ~ 3", "unexpected character '~'"),
    ("(status = 'failed'", "expected ')'"),
    ("metrics.acc > 'high'", "compare it with a number"),
])
def test_bad_filters_get_clear_errors(three_runs, bad, fragment):
    with pytest.raises(FilterError) as info:
        nbtrack.runs(where=bad)
    assert fragment in str(info.value)


def test_filters_never_paste_values_into_sql():
    sql, params = compile_filter("params.model = 'rf'' OR 1=1 --' and metrics.acc > 1e-3")
    assert "rf" not in sql and "1=1" not in sql and "acc" not in sql
    # each key's test is in twice (locality.has_rows: by start, and by id where starts are shared)
    assert params == ["model", "rf' OR 1=1 --", "acc", 1e-3] * 2


def test_get_by_prefix_last_and_experiment_filter(three_runs):
    run_id = three_runs.run_id.iloc[1]
    run = nbtrack.get(run_id[:7])
    assert run.run_id == run_id and run.params == {"model": "rf", "depth": 8}
    assert nbtrack.last().run_id == three_runs.run_id.iloc[2]
    assert len(nbtrack.runs(experiment="demo")) == 3 and nbtrack.runs(experiment="other").empty
    with pytest.raises(RunNotFoundError, match="no run matches 'zzzz'"):
        nbtrack.get("zzzz")
    assert "<Run" in repr(run) and "depth=8" in repr(run)


def test_ambiguous_prefix(store_path):
    from nbtrack.recorder.run import ActiveRun
    from nbtrack.store import Store
    for run_id in ("abc123", "abc456"):
        active = ActiveRun(Store(store_path), name="x", experiment="e", kind="script")
        active.run_id = run_id
        active.start().finish()
    assert nbtrack.get("abc1", store=store_path).run_id == "abc123"
    with pytest.raises(RunNotFoundError, match="prefix 'abc' is ambiguous"):
        nbtrack.get("abc", store=store_path)


def test_runs_on_a_store_that_does_not_exist_yet(tmp_path):
    assert list(nbtrack.runs(store=tmp_path / "none.duckdb").columns) == [
        "run_id", "experiment", "name", "status", "started_at", "ended_at", "duration_s", "tags", "sweep_id",
        "user", "host", "label", "starred", "note"]
    with pytest.raises(FilterSyntaxError):
        nbtrack.runs(store=tmp_path / "none.duckdb", where="metrics.x >")


def test_the_wide_view_reads_params_and_metrics_by_name_in_plain_sql(three_runs, store_path):
    import duckdb
    nbtrack.runs()
    con = duckdb.connect(str(store_path), read_only=True)
    rows = con.execute("SELECT name, params['model'], metrics['acc'] FROM runs_wide ORDER BY started_at").fetchall()
    con.close()
    assert rows == [("fit", '"rf"', 0.7), ("fit", '"rf"', 0.9), ("fit", '"gb"', 0.95)]


def test_a_run_with_fifty_thousand_params_reads_back_capped_or_whole(tmp_path, capsys):
    """Once one DuckDB aggregate per key: a run like this took minutes, and crashed the process."""
    store = tmp_path / "runs.duckdb"
    with nbtrack.run("wide", params={f"p{i}": i for i in range(50_000)}, store=store):
        pass
    with nbtrack.run("narrow", params={"p1": 10, "p2": "x"}, store=store):
        nbtrack.log(acc=0.5)
    frame = nbtrack.runs(store=store)
    warning = capsys.readouterr().err
    assert "50001 distinct params, metrics and values" in warning and "max_columns=None" in warning
    wide = [c for c in frame.columns if "." in c]
    assert len(wide) == 1000
    # the keys set in the most runs come first: p1, p2 (both runs) and the metric are kept
    assert {"params.p1", "params.p2", "metrics.acc"} <= set(wide)
    assert frame["params.p1"].tolist() == [1, 10] and frame["params.p1"].dtype == "int64"
    assert frame["params.p2"].tolist() == [2, "x"]     # mixed int and str: the values as they were
    assert frame["metrics.acc"].isna().tolist() == [True, False]
    everything = nbtrack.runs(store=store, max_columns=None)
    assert capsys.readouterr().err == ""
    assert len([c for c in everything.columns if c.startswith("params.")]) == 50_000
    assert everything["params.p49999"].tolist()[0] == 49_999
    assert everything["params.p49999"].dtype == "Int64" and everything["params.p49999"].isna().tolist() == [False, True]


def test_columns_with_holes_keep_their_types(ip):
    ip.run_cell("%%track a\nn = 3\nflag = True\nrate = 0.5\nlabel = 'x'\nshape = (1, 2)")
    ip.run_cell("%%track b\nother = 1")
    frame = nbtrack.runs()
    assert frame["params.n"].dtype == "Int64" and frame["params.n"].tolist()[0] == 3
    assert frame["params.flag"].dtype == "boolean" and frame["params.flag"].tolist()[0] is True
    assert frame["params.rate"].dtype == "float64"
    assert frame["params.label"].tolist()[0] == "x" and frame["params.shape"].tolist() == [(1, 2), None]


def test_import_and_load_ext_leave_the_heavy_libraries_unimported():
    """pandas, pyarrow, numpy, Altair and the widget stack load when first needed: `import nbtrack`
    and `%load_ext nbtrack` stay light (their time is measured in benchmarks/)."""
    import subprocess
    import sys

    code = ("import sys\nimport nbtrack\nfrom IPython.core.interactiveshell import InteractiveShell\n"
            "InteractiveShell.instance().run_line_magic('load_ext', 'nbtrack')\n"
            "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'altair', 'anywidget', 'ipywidgets', 'polars')\n"
            "                if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_each_step_of_a_runs_life_is_its_own_call_and_reads_back_as_its_status(store_path):
    from nbtrack.recorder.run import ActiveRun
    from nbtrack.store import Store, records

    def ended(step, *args):
        active = ActiveRun(Store(store_path), name=step, experiment="life", kind="script").start()
        getattr(active, step)(*args)
        return nbtrack.get(active.run_id, store=store_path)

    assert ended("finish").status == records.FINISHED
    failed = ended("fail", ValueError("bad batch"))
    assert failed.status == records.FAILED and failed.error["type"] == "ValueError"
    assert failed.error["message"] == "bad batch"
    assert ended("interrupt", KeyboardInterrupt()).status == records.INTERRUPTED
    # a with-block's ending picks the step from what ended it
    with pytest.raises(KeyboardInterrupt):
        with nbtrack.run("stopped", store=store_path) as r:
            raise KeyboardInterrupt
    assert nbtrack.get(r.run_id, store=store_path).status == records.INTERRUPTED
    assert set(nbtrack.runs(store=store_path).status) <= set(records.STATUSES)
