"""Framework-aware capture with real objects (scikit-learn, polars, matplotlib, PIL, Altair), the
capturer plugin API and entry points, and system metrics with a fake NVML."""
from __future__ import annotations

import sys
import textwrap

import pytest

import nbtrack
from nbtrack.recorder import capture, frameworks, system

FAKE_NVML = textwrap.dedent('''
    """A stand-in for nvidia-ml-py with two GPUs."""
    from types import SimpleNamespace
    def nvmlInit(): pass
    def nvmlDeviceGetCount(): return 2
    def nvmlDeviceGetHandleByIndex(i): return i
    def nvmlDeviceGetUtilizationRates(h): return SimpleNamespace(gpu=40 + 10 * h, memory=5)
    def nvmlDeviceGetMemoryInfo(h): return SimpleNamespace(used=(1 + h) * 1024 ** 3, total=80 * 1024 ** 3, free=0)
''')


@pytest.fixture
def sk_ip(ip):
    ip.run_cell("import nbtrack\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)\n"
                "from sklearn.ensemble import RandomForestClassifier\nfrom sklearn.pipeline import make_pipeline\n"
                "from sklearn.preprocessing import StandardScaler\nfrom sklearn.model_selection import GridSearchCV")
    return ip


def test_estimator_params_class_and_fitted_state(sk_ip):
    sk_ip.run_cell("%%track rf\nmodel = RandomForestClassifier(n_estimators=15, max_depth=3, random_state=0)\n"
                   "model.fit(X, y)\nacc = model.score(X, y)")
    run = nbtrack.last()
    assert run.params["model.n_estimators"] == 15 and run.params["model.max_depth"] == 3
    assert run.param_kinds["model.max_depth"] == "capturer"
    assert run.outputs["model"]["summary"] == {"class": "sklearn.ensemble._forest.RandomForestClassifier",
                                               "fitted": True}
    # an unfitted estimator the cell reads is captured as an input, with its params
    sk_ip.run_cell("base = RandomForestClassifier(max_depth=7)")
    sk_ip.run_cell("%%track use\nn = base.get_params()['max_depth'] * 2")
    run = nbtrack.last()
    assert run.params["base.max_depth"] == 7
    assert run.inputs["base"]["summary"]["fitted"] is False


def test_grid_search_best_params_and_score_and_pipelines(sk_ip):
    sk_ip.run_cell("%%track search\nsearch = GridSearchCV(RandomForestClassifier(n_estimators=5, random_state=0),"
                   " {'max_depth': [1, 3]}, cv=3).fit(X, y)\n"
                   "pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0))")
    run = nbtrack.last()
    assert run.params["search.best.max_depth"] == 3
    assert run.metrics["search.best_score"] == pytest.approx(sk_ip.user_ns["search"].best_score_)
    assert run.params["search.estimator"] == "RandomForestClassifier"     # a nested estimator: its class
    assert run.params["pipe.steps"] == "list" and "pipe" in run.outputs


def test_register_capturer_by_type_name_and_predicate(ip):
    ip.run_cell("class Booster:\n    def __init__(self, depth):\n        self.depth = depth\n"
                "class Tuned(Booster):\n    pass")
    seen = []

    def cap(obj):
        seen.append(obj)
        return {"hash": f"depth-{obj.depth}", "params": {"depth": obj.depth}, "metrics": {"size": 2.0 * obj.depth}}

    nbtrack.register_capturer("__main__.Booster", cap)
    ip.run_cell("%%track boost\nb = Tuned(4)")
    run = nbtrack.last()
    assert run.params["b.depth"] == 4 and run.metrics["b.size"] == 8.0
    assert run.outputs["b"]["hash"] == "depth-4" and run.outputs["b"]["hash_method"] == "capturer"
    # a predicate, and a capturer that fails: recorded in the fingerprint, the cell unaffected
    nbtrack.register_capturer(lambda v: getattr(v, "depth", None) == 9, lambda v: 1 / 0)
    result = ip.run_cell("%%track broken\nbad = Tuned(9)\nok = float(3)")
    assert result.success
    run = nbtrack.last()
    assert run.outputs["bad"]["hash_method"] == "error" and run.metrics["ok"] == 3.0
    capture.registry._entries = [e for e in capture.registry._entries if e[1] not in (cap,)][1:]


def test_entry_point_plugins_are_loaded(ip, tmp_path, monkeypatch):
    pkg = tmp_path / "site"
    (pkg / "nbt_plugin_demo-0.1.dist-info").mkdir(parents=True)
    (pkg / "nbt_plugin_demo-0.1.dist-info" / "METADATA").write_text("Name: nbt-plugin-demo\nVersion: 0.1\n")
    (pkg / "nbt_plugin_demo-0.1.dist-info" / "entry_points.txt").write_text(
        "[nbtrack.capturers]\ndemo = nbt_plugin_demo:register\n")
    (pkg / "nbt_plugin_demo.py").write_text(textwrap.dedent('''
        import nbtrack
        class Widget:
            size = 3
        def register():
            nbtrack.register_capturer(Widget, lambda w: {"hash": "w", "params": {"size": w.size}})
    '''))
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.setattr(frameworks, "entry_points_loaded", False)
    ip.run_cell("import nbt_plugin_demo\n")
    ip.run_cell("%%track plug\nw = nbt_plugin_demo.Widget()")
    assert nbtrack.last().params["w.size"] == 3


def test_polars_lazyframe_is_never_collected(ip, tmp_path):
    ip.run_cell("import polars as pl\nlazy = pl.scan_csv('does-not-exist.csv').select(pl.col('a') * 2)\n"
                "def boom(x):\n    raise RuntimeError('collected!')\n")
    result = ip.run_cell("%%track lazy\nplan = lazy.with_columns(b=pl.lit(1))\n"
                         "plan2 = pl.DataFrame({'a': [1, 2]}).lazy().with_columns("
                         "c=pl.col('a').map_elements(boom, return_dtype=pl.Int64))")
    assert result.success
    outputs = nbtrack.last().outputs
    for name in ("plan", "plan2"):
        assert outputs[name]["type"].endswith("LazyFrame")
        assert outputs[name]["hash"] is None and outputs[name]["hash_method"] == "lazy-not-collected"


@pytest.mark.slow
def test_figures_charts_and_images_shown_are_stored_with_the_run(tmp_path):
    """In a real kernel (a terminal shell computes only text/plain for displays)."""
    from test_kernel import _kernel

    km, kc = _kernel(tmp_path)
    try:
        kc.execute_interactive("%matplotlib inline\nimport matplotlib.pyplot as plt\nimport altair as alt\n"
                               "import pandas as pd\nfrom PIL import Image", timeout=60)
        reply = kc.execute_interactive(
            "%%track shows\nfig, ax = plt.subplots(figsize=(2, 2))\nax.plot([1, 2, 3])\nplt.show()\n"
            "display(alt.Chart(pd.DataFrame({'a': [1, 2]})).mark_bar().encode(x='a'))\n"
            "display(Image.new('RGB', (8, 8), 'red'))", timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    run = nbtrack.get(nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb")["run_id"].iloc[-1],
                      store=tmp_path / ".nbtrack" / "runs.duckdb")
    mimes = [d["mime"] for d in run.displays]
    assert mimes.count("image/png") >= 2, mimes              # the figure and the image
    assert any(m.startswith("application/vnd.vegalite") for m in mimes), mimes
    png = next(d for d in run.displays if d["mime"] == "image/png")
    assert png["data"][:8] == b"\x89PNG\r\n\x1a\n" and png["size"] == len(png["data"])


def test_torch_module_and_optimizer(ip):
    pytest.importorskip("torch")
    ip.run_cell("import torch\n%%track net\nnet = torch.nn.Linear(4, 2)\nopt = torch.optim.SGD(net.parameters(), lr=0.05)")
    run = nbtrack.last()
    assert run.params["net.parameters"] == 10 and run.params["opt.lr"] == 0.05


@pytest.fixture
def fast_sampler(monkeypatch, tmp_path):
    (tmp_path / "fake_nvml").mkdir()
    (tmp_path / "fake_nvml" / "pynvml.py").write_text(FAKE_NVML)
    monkeypatch.syspath_prepend(str(tmp_path / "fake_nvml"))
    monkeypatch.setattr(system, "START_AFTER_S", 0.3)
    monkeypatch.setattr(system, "INTERVAL_S", 0.2)
    monkeypatch.setattr(system, "_nvml", None)
    yield
    sys.modules.pop("pynvml", None)
    system._nvml = None


def test_system_metrics_of_a_long_cell_with_a_fake_gpu(ip, fast_sampler):
    ip.run_cell("import time")
    ip.run_cell("%%track busy\nt0 = time.time()\nwhile time.time() - t0 < 1.2:\n    sum(range(10000))\nacc = float(1)")
    run = nbtrack.last()
    history = run.history()
    counts = history.groupby("key").size()
    assert set(counts.index) == {"sys.cpu_percent", "sys.rss_mb", "sys.gpu0.util_percent", "sys.gpu0.mem_mb",
                                 "sys.gpu1.util_percent", "sys.gpu1.mem_mb"}
    assert counts.min() >= 3
    assert run.metrics["sys.gpu1.util_percent"] == 50.0 and run.metrics["sys.gpu0.mem_mb"] == 1024.0
    assert 50 < run.metrics["sys.cpu_percent"] < 150            # a busy loop: about one core
    assert run.metrics["sys.rss_mb"] > 10
    # a short cell is not sampled, and the sampler stops with the run
    ip.run_cell("%%track quick\nq = 1.5 * 2")
    assert not any(k.startswith("sys.") for k in nbtrack.last().metrics)
    assert system.monitor._watches == []      # the run left the sampler when it ended


def test_system_metrics_without_nvml_and_for_scripts(tmp_path, monkeypatch):
    monkeypatch.setattr(system, "START_AFTER_S", 0.2)
    monkeypatch.setattr(system, "INTERVAL_S", 0.1)
    monkeypatch.setattr(system, "_nvml", False)          # no nvidia-ml-py here
    import time

    with nbtrack.run("script", store=tmp_path / "runs.duckdb") as run:
        time.sleep(0.6)
    metrics = nbtrack.get(run.run_id, store=tmp_path / "runs.duckdb").metrics
    assert "sys.rss_mb" in metrics and not any(k.startswith("sys.gpu") for k in metrics)
    monkeypatch.setenv("NBTRACK_SYSTEM_METRICS", "0")
    with nbtrack.run("quiet", store=tmp_path / "runs.duckdb") as run:
        time.sleep(0.4)
    assert not nbtrack.get(run.run_id, store=tmp_path / "runs.duckdb").metrics


def test_a_loop_of_short_runs_does_not_wake_the_sampler_each_run(tmp_path):
    """Each run registers with the sampler; the thread wakes only when a run is due before it would wake
    anyway, so 200 runs of a tight loop cost 200 list appends, not 200 thread switches."""
    assert system.enabled()   # else no run would register and the count below would say nothing
    with nbtrack.run("first", store=tmp_path / "runs.duckdb"):
        pass
    assert system.monitor._thread is not None and system.monitor._thread.is_alive()
    before = system.monitor.wakes
    for i in range(200):
        with nbtrack.run("short", params={"i": i}, store=tmp_path / "runs.duckdb"):
            pass
    assert system.monitor.wakes - before < 10
    assert system.monitor._watches == []


def test_saved_outputs_load_back_in_safe_formats_only(ip, capfd):
    ip.run_cell("import numpy as np, pandas as pd, polars as pl, pyarrow as pa")
    ip.run_cell("%%track make --save frame --save arr --save pl_frame --save table --save objs --save typo\n"
                "frame = pd.DataFrame({'x': np.arange(3.0), 'y': list('abc')})\narr = np.eye(2)\n"
                "pl_frame = pl.DataFrame({'a': [1, 2]})\ntable = pa.table({'t': [1.5]})\n"
                "objs = np.array([object()], dtype=object)")
    err = capfd.readouterr().err
    assert "--save objs: an array of Python objects cannot be saved without pickle" in err
    assert "--save typo: the cell made no such output" in err
    run = nbtrack.last()
    assert run.load("frame").equals(ip.user_ns["frame"])
    assert run.load("arr").tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert run.load("pl_frame").to_dicts() == [{"a": 1}, {"a": 2}]
    assert run.load("table").to_pydict() == {"t": [1.5]}
    assert run.outputs["frame"]["artifact_format"] == "parquet" and run.outputs["arr"]["artifact_format"] == "npy"
    with pytest.raises(nbtrack.NbtrackError, match="no saved output 'objs'"):
        run.load("objs")


def test_reproduce_restores_saved_inputs_instead_of_recomputing(ip):
    ip.run_cell("import numpy as np, pandas as pd\nraw = pd.DataFrame({'x': np.arange(5.0)})")   # untracked
    ip.run_cell("%%track prep --save clean\nclean = raw * 2")
    ip.run_cell("%%track fit\ntotal = float(clean['x'].sum())")
    fit = nbtrack.last().run_id
    script = nbtrack.export_script(fit)
    assert "clean = _restore(" in script and "raw" not in script.split("# --- step 1/1")[1]
    report = nbtrack.reproduce(fit)
    assert report.verdict == "identical", str(report)


def test_cli_lists_the_cells_own_params_unless_asked(sk_ip, store_path):
    from click.testing import CliRunner

    from nbtrack.cli import main

    sk_ip.run_cell("%%track rf\ndepth = 3\nmodel = RandomForestClassifier(n_estimators=5, max_depth=depth).fit(X, y)")
    plain = CliRunner().invoke(main, ["runs", "--store", str(store_path)]).output
    full = CliRunner().invoke(main, ["runs", "--store", str(store_path), "--all-columns"]).output
    assert "params.depth" in plain and "params.model.max_depth" not in plain
    assert "params.model.max_depth" in full
    panel = nbtrack.compare(store=store_path)
    hidden = {c["name"]: c["hidden"] for c in panel.table["columns"]}
    assert hidden["params.model.max_depth"] and not hidden["params.depth"]
    panel.close()
