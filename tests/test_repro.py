"""Reproducibility checks, lineage and hand-off, each scenario with real code run in a real IPython shell."""
from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import nbformat
import pytest
from click.testing import CliRunner

import nbtrack
from nbtrack import repro
from nbtrack.cli import main


def _checked_twice(ip, cell: str) -> repro.CheckReport:
    """Run a ``--check`` cell twice; the second run's report."""
    ip.run_cell(cell)
    ip.run_cell(cell)
    return nbtrack.last_check()


def _ids(n: int = 2) -> list[str]:
    return list(nbtrack.runs()["run_id"].iloc[-n:])


@pytest.fixture
def np_ip(ip):
    ip.run_cell("import numpy as np, pandas as pd, random, nbtrack")
    return ip


def test_deterministic_cell_is_identical(np_ip):
    cell = "%%track det --check\nn = 50\nvalues = np.arange(n) ** 2\ntotal = float(values.sum())\n"
    report = _checked_twice(np_ip, cell)
    assert report.verdict == "identical"
    assert {o.name: o.status for o in report.outputs} == {"total": "identical", "values": "identical"}
    assert report.causes == []
    # the new run is linked to the one it was checked against
    a, b = _ids()
    assert nbtrack.get(b).info["checked_against"] == a


@pytest.mark.parametrize("draw, generator", [("np.random.rand()", "numpy"), ("random.random()", "random")])
def test_unseeded_randomness_differs_and_is_named(np_ip, draw, generator):
    cell = f"%%track noisy --check\nscale = 2.0\nacc = {draw} * scale\n"
    report = _checked_twice(np_ip, cell)
    assert report.verdict == "differs"
    assert report.outputs[0].name == "acc" and report.outputs[0].status == "differs"
    assert report.causes[0].kind == "randomness"
    assert report.causes[0].evidence["generator"] == generator
    assert "without a fixed seed" in report.causes[0].detail


@pytest.mark.parametrize("seed, draw", [("np.random.seed(7)", "np.random.rand()"), ("random.seed(7)", "random.random()")])
def test_the_same_cell_seeded_is_identical(np_ip, seed, draw):
    cell = f"%%track seeded --check\n{seed}\nacc = {draw}\n"
    np_ip.run_cell(cell)
    np_ip.run_cell("np.random.rand(3); random.random()")   # something else draws in between
    np_ip.run_cell(cell)
    report = nbtrack.last_check()
    assert report.verdict == "identical", str(report)
    assert report.causes == []


def test_unseeded_default_rng_is_named_through_its_state(np_ip):
    cell = "%%track gen --check\nrng = np.random.default_rng()\nacc = float(rng.random())\n"
    report = _checked_twice(np_ip, cell)
    assert report.verdict == "differs"
    kinds = [(c.kind, c.evidence.get("name")) for c in report.causes]
    assert ("randomness", "rng") in kinds


def test_input_changed_upstream_names_the_input_and_the_producing_run(np_ip):
    load = "%%track load -p rows={rows}\nrows = 100\ndf = pd.DataFrame({{'x': np.arange(rows, dtype=float)}})\n"
    fit = "%%track fit --check\nslope = 2.0\nscore = float((df['x'] * slope).mean())\n"
    np_ip.run_cell(load.format(rows=100))
    np_ip.run_cell(fit)
    first_load = nbtrack.runs()["run_id"].iloc[0]
    np_ip.run_cell(load.format(rows=120))
    second_load = nbtrack.runs()["run_id"].iloc[-1]
    np_ip.run_cell(fit)
    report = nbtrack.last_check()
    assert report.verdict == "differs"
    cause = report.causes[0]
    assert cause.kind == "input_data" and cause.evidence["name"] == "df"
    assert cause.evidence["produced_by"]["a"]["run_id"] == first_load
    assert cause.evidence["produced_by"]["b"]["run_id"] == second_load
    assert second_load[:8] in cause.detail and "`df`" in cause.detail


def test_a_package_version_changed_in_the_recorded_env_is_named(np_ip, store_path):
    cell = "%%track env --check\nacc = float(np.random.default_rng(0).random())\n"
    np_ip.run_cell(cell)
    np_ip.run_cell(cell)
    a, b = _ids()
    # the reference run as if recorded with another NumPy: a second environment record
    nbtrack.runs()
    con = duckdb.connect(str(store_path))
    env_id, packages = con.execute("SELECT e.env_id, e.packages FROM environments e JOIN runs r USING (env_id) "
                                   "WHERE r.run_id = ?", [a]).fetchall()[0]
    changed = json.loads(packages)
    changed["numpy"] = "1.0.0"
    con.execute("INSERT INTO environments SELECT 'old-env', python, implementation, platform, machine, ?, "
                "created_at FROM environments WHERE env_id = ?", [json.dumps(changed), env_id])
    con.execute("UPDATE runs SET env_id = 'old-env' WHERE run_id = ?", [a])
    con.execute("UPDATE metrics SET value = value + 1 WHERE run_id = ?", [a])   # and its result differed
    con.close()
    report = nbtrack.check(a, b)
    assert report.verdict == "differs"
    env = next(c for c in report.causes if c.kind == "environment")
    assert env.evidence["packages"] == {"numpy": ("1.0.0", changed_back(packages))}
    assert "numpy 1.0.0 → " in env.detail


def changed_back(packages: str) -> str:
    return json.loads(packages)["numpy"]


def test_float_noise_below_tolerance_is_within_tolerance(np_ip):
    np_ip.run_cell("%%track sum\nacc = float(sum([0.1, 0.2]))\n")
    np_ip.run_cell("%%track sum --check\nacc = float('0.3')\n")
    report = nbtrack.last_check()
    assert report.verdict == "within_tolerance"
    assert report.outputs[0].status == "within_tolerance"
    assert nbtrack.check(*_ids(), rtol=0).verdict == "differs"
    assert nbtrack.check(*_ids(), rtol=0, tolerances={"acc": 1e-12}).verdict == "within_tolerance"


def test_tolerance_options_on_the_magic(np_ip):
    np_ip.run_cell("%%track tol\nacc = float(1.0)\n")
    np_ip.run_cell("%%track tol --check --tol acc=0.05\nacc = float(1.03)\n")
    assert nbtrack.last_check().verdict == "within_tolerance"
    first = nbtrack.runs()["run_id"].iloc[0]
    np_ip.run_cell(f"%%track tol --check {first[:10]} --atol 0.01\nacc = float(1.03)\n")
    assert nbtrack.last_check().verdict == "differs"
    result = np_ip.run_cell("%%track tol --tol acc=-1\nacc = 1.0\n")
    assert "--tol" in str(result.error_in_exec)


def _notebook(path, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, id=cid) for cid, src in cells]
    nbformat.write(nb, path)


def test_hidden_state_from_a_deleted_cell_and_from_a_cell_run_out_of_order(np_ip, tmp_path):
    nb_path = tmp_path / "analysis.ipynb"
    np_ip.user_ns["__session__"] = str(nb_path)
    define = ("a-define", "offset = 5")
    later = ("c-later", "factor = 3")
    reader = ("b-read", "%%track shifted --check\nbase = 10\nresult = float(base + offset * factor)\n")
    _notebook(nb_path, [define, reader, later])
    np_ip.run_cell(define[1], cell_id=define[0])
    np_ip.run_cell(later[1], cell_id=later[0])
    np_ip.run_cell(reader[1], cell_id=reader[0])
    _notebook(nb_path, [reader, later])             # the user deletes the cell that defined offset
    np_ip.run_cell("offset = 6", cell_id="d-scratch")   # and sets it in a cell it does not keep
    np_ip.run_cell(reader[1], cell_id=reader[0])
    report = nbtrack.last_check()
    assert report.verdict == "differs"
    hidden = {c.evidence["name"]: c.detail for c in report.causes if c.kind == "hidden_state"}
    assert "factor" in hidden and "below this one" in hidden["factor"]
    assert "no longer exists in the notebook" in hidden["offset"]
    # the first run read offset from a cell that is gone from the notebook now
    first = nbtrack.check(*_ids()[::-1])
    gone = {c.evidence["name"]: c.detail for c in first.causes if c.kind == "hidden_state"}
    assert "no longer exists in the notebook" in gone["offset"]


def test_repeats_show_spread_and_tell_noise_from_a_change(np_ip):
    cell = "%%track noisy-fit --repeat 4 --check\nshift = 0.0\nacc = 0.9 + shift + random.random() / 100\n"
    np_ip.run_cell(cell)
    np_ip.run_cell(cell)
    runs = nbtrack.runs()
    assert len(runs) == 8 and runs["status"].eq("finished").all()
    report = nbtrack.last_check()
    acc = next(o for o in report.outputs if o.name == "acc")
    assert acc.spread["a"]["n"] == 4 and acc.spread["b"]["n"] == 4
    assert acc.status == "within_tolerance" and "within the spread" in acc.detail
    np_ip.run_cell(cell.replace("shift = 0.0", "shift = 0.0\nacc_base = 1"), )   # another cell: no reference
    np_ip.run_cell("%%track noisy-fit --repeat 4 --check " + runs["run_id"].iloc[-1] +
                   "\nshift = 0.5\nacc = 0.9 + shift + random.random() / 100\n")
    acc = next(o for o in nbtrack.last_check().outputs if o.name == "acc")
    assert acc.status == "differs" and "more than twice the spread" in acc.detail


def test_a_failing_repeat_is_recorded_and_fail_fast_stops(np_ip, capfd):
    np_ip.run_cell("k = 0")
    cell = "%%track flaky --repeat 5{flag}\nk += 1\nif k % 5 == 2:\n    raise ValueError('boom')\nacc = 1.0 * k\n"
    np_ip.run_cell(cell.format(flag=""))
    out = capfd.readouterr().out
    assert "nbtrack sweep: 5 of 5 runs (4 finished, 1 failed)" in out
    assert "failed: the cell: ValueError: boom" in out
    runs = nbtrack.runs()
    assert list(runs["status"]) == ["finished", "failed", "finished", "finished", "finished"]
    assert runs["metrics.acc"].isna().tolist() == [False, True, False, False, False]   # no stale value
    groups = {nbtrack.get(i).info["repeat_group"] for i in runs["run_id"]}
    assert len(groups) == 1 and None not in groups
    np_ip.run_cell("k = 0")
    np_ip.run_cell(cell.format(flag=" --fail-fast"))
    out = capfd.readouterr().out
    assert "nbtrack sweep: 2 of 5 runs (1 finished, 1 failed); stopped at the first failure (--fail-fast)" in out


def _chain(ip):
    ip.run_cell("%%track load\nn = 200\nrng = np.random.default_rng(1)\n"
                "df = pd.DataFrame({'x': rng.normal(size=n)})\ndf['y'] = 3 * df['x'] + 1\n")
    ip.run_cell("def standardise(frame):\n    return (frame - frame.mean()) / frame.std()\n")
    ip.run_cell("%%track prep\nscale = 2.0\nfeatures = standardise(df[['x']]) * scale\ntarget = df['y']\n")
    ip.run_cell("%%track fit\nridge = 0.1\nX = features.to_numpy(); yv = target.to_numpy()\n"
                "coef = float((X[:, 0] @ yv) / (X[:, 0] @ X[:, 0] + ridge))\n")
    return list(nbtrack.runs()["run_id"])


def test_lineage_links_runs_by_fingerprint_both_ways(np_ip):
    load, prep, fit = _chain(np_ip)
    graph = nbtrack.lineage(fit)
    assert graph.upstream() == [load, prep]
    assert set(graph.edges) == {(load, prep, "df"), (prep, fit, "features"), (prep, fit, "target")}
    assert nbtrack.lineage(load).downstream() == [prep, fit]
    frame = graph.to_frame()
    assert set(frame["input"]) == {"df", "features", "target"}
    text = str(graph)
    assert f"run {load[:8]} load  -> df" in text and f"run {prep[:8]} prep  -> features, target" in text
    spec = graph.chart().to_dict()
    assert len(spec["layer"]) == 4


def test_export_script_reproduces_the_metric_in_a_subprocess(np_ip, tmp_path):
    load, prep, fit = _chain(np_ip)
    path = tmp_path / "train.py"
    text = nbtrack.export_script(fit, path)
    # params as constants at the top, a comment per source run, requirements, fingerprint checks
    head = text.split("# --- step 1/3")[0]
    assert "n = 200" in head and "scale = 2.0" in head and "ridge = 0.1" in head
    assert "import numpy as np" in head and "import pandas as pd" in head
    assert f"#   numpy=={np_ip.user_ns['np'].__version__}" in head
    assert "def standardise(frame):" in text
    for run_id in (load, prep, fit):
        assert f"run {run_id}" in text
    assert "_check_input('df', df, " in text
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    coef = nbtrack.get(fit).metrics["coef"]
    assert f"coef {coef!r} (recorded: {coef!r})" in result.stdout
    # a changed input is caught by the fingerprint check before the step runs
    tampered = text.replace("df['y'] = 3 * df['x'] + 1", "df['y'] = 3 * df['x'] + 2")
    path.write_text(tampered)
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode != 0 and "step 2: input 'df' is not the data the recorded run read" in result.stderr


def test_reproduce_reruns_the_chain_and_compares(np_ip):
    load, prep, fit = _chain(np_ip)
    report = nbtrack.reproduce(fit)
    assert report.verdict == "identical", str(report)
    new = report.b
    assert new.info["checked_against"] == fit and new.info["kind"] == "reproduce"
    assert new.metrics["coef"] == nbtrack.get(fit).metrics["coef"]


def test_reproduce_names_inputs_it_cannot_restore(np_ip):
    np_ip.run_cell("data = np.arange(10.0)")          # an untracked cell
    np_ip.run_cell("%%track total\ntotal = float(data.sum())\n")
    run_id = _ids(1)[0]
    report = nbtrack.reproduce(run_id)
    assert report.verdict == "differs"
    assert report.causes[0].kind == "input_data"
    assert "could not restore input `data`" in report.causes[0].detail
    assert report.b.status == "failed"
    assert f"the new run {report.b.run_id[:8]} is failed: NameError: name 'data' is not defined" in str(report)


def test_report_reads_as_text_and_markdown_and_has_a_widget(np_ip):
    np_ip.run_cell("%%track md\nacc = float(0.5)\n")
    np_ip.run_cell("%%track md --check\nacc = float(0.5) * 2\n")
    report = nbtrack.last_check()
    text = str(report)
    assert text.startswith("nbtrack check: differs — run ")
    assert "differs          metric acc: 0.5 → 1 (+0.5, +100.00%)" in text
    assert "source: the cell's source changed" in text
    md = report._repr_markdown_()
    assert "| acc | metric | differs |" in md and "**Likely causes**" in md
    view = report.widget()
    assert view.report["verdict"] == "differs" and repr(view) == text


def test_cli_check_lineage_and_export_script(np_ip, store_path, tmp_path):
    load, prep, fit = _chain(np_ip)
    np_ip.run_cell("%%track fit --check\nridge = 0.1\nX = features.to_numpy(); yv = target.to_numpy()\n"
                   "coef = float((X[:, 0] @ yv) / (X[:, 0] @ X[:, 0] + ridge))\n")
    again = _ids(1)[0]
    runner = CliRunner()
    out = runner.invoke(main, ["check", fit[:8], again[:8], "--store", str(store_path)])
    assert out.exit_code == 0 and "nbtrack check: identical" in out.output
    out = runner.invoke(main, ["check", load, fit, "--store", str(store_path)])
    assert out.exit_code == 1 and "differs" in out.output
    out = runner.invoke(main, ["lineage", prep[:8], "--store", str(store_path)])
    assert out.exit_code == 0 and f"run {load[:8]} load  -> df" in out.output and f"run {fit[:8]} fit" in out.output
    target = tmp_path / "fit.py"
    out = runner.invoke(main, ["export-script", fit[:8], "-o", str(target), "--store", str(store_path)])
    assert out.exit_code == 0 and target.read_text().startswith('# -*- coding: utf-8 -*-\n# Reproduces nbtrack run')
    out = runner.invoke(main, ["check", "nope", fit, "--store", str(store_path)])
    assert out.exit_code == 1 and "no run matches 'nope'" in out.output


def test_check_without_a_reference_says_so_in_one_line(np_ip, capfd):
    np_ip.run_cell("%%track first --check\nacc = 1.0 * 1\n")
    err = capfd.readouterr().err
    assert err.count("nbtrack warning: --check: no earlier finished run of 'first'") == 1
    with pytest.raises(nbtrack.NbtrackError, match="no check report"):
        nbtrack.last_check()
    assert nbtrack.runs()["status"].tolist() == ["finished"]
