"""The compare panel from Python, in a real IPython shell with a real store: what it sends to the page,
the selection both ways, the diff, and that it follows runs written afterwards (here and elsewhere)."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

import nbtrack
from nbtrack.widgets import ComparePanel

from helpers import ROOT, run_py


def _wait(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def panel_runs(ip):
    ip.run_cell("import nbtrack")
    for lr, model in [(0.1, "rf"), (0.01, "rf"), (0.001, "gb")]:
        ip.run_cell(f"""%%track train -e demo
lr = {lr}
model = {model!r}
epochs = 3
for step in range(20):
    nbtrack.log(loss=1 / (step + 1) + lr)
acc = round(0.9 - lr, 4)""")
    return ip


@pytest.fixture
def panel(panel_runs):
    p = nbtrack.compare(experiment="demo")
    yield p
    p.close()


def _table_rows(p: ComparePanel) -> dict[str, list]:
    """The table as the page decodes it: number columns from their float64 buffers."""
    out = {}
    for col in p.table["columns"]:
        raw = p.table["data"][col["name"]]
        out[col["name"]] = [None if np.isnan(v) else v for v in np.frombuffer(raw, "<f8")] \
            if isinstance(raw, memoryview) else raw
    return out


def test_the_panel_shows_every_run_with_params_and_metrics(panel):
    assert repr(panel) == "ComparePanel(3 runs, 0 selected)"
    cols = {c["name"]: c for c in panel.table["columns"]}
    assert {"run_id", "name", "status", "params.lr", "params.model", "params.epochs", "metrics.acc",
            "metrics.loss"} <= set(cols)
    assert cols["params.lr"]["kind"] == "number" and cols["params.model"]["kind"] == "text"
    assert cols["label"]["hidden"] is True
    rows = _table_rows(panel)
    assert rows["params.lr"] == [0.1, 0.01, 0.001]
    assert rows["metrics.acc"] == [0.8, 0.89, 0.899]
    assert rows["status"] == ["finished"] * 3
    # sensible defaults: the metric most often logged (in most runs, nbtrack.log ones first among
    # equals) against the param that varies most
    assert panel.y == "metrics.loss" and panel.x == "params.lr"
    assert set(panel.specs) == {"scatter", "parallel", "curves", "bars"}
    assert panel.specs["scatter"]["data"] == {"name": "runs"}
    # with nothing selected, the curves are the latest runs that logged points
    assert panel.curve_key == "loss"
    assert {p["run_id"] for p in panel.curve_data} == set(panel.runs["run_id"])
    assert len(panel.curve_data) == 60


def test_selection_from_python_gives_rows_curves_and_a_diff(panel):
    seen = []
    panel.observe(lambda change: seen.append(list(change["new"])), names="selected")
    ids = list(panel.runs["run_id"])
    panel.selected = [ids[2], ids[0]]
    assert seen == [[ids[2], ids[0]]]
    sel = panel.selected_runs
    assert list(sel["run_id"]) == [ids[2], ids[0]]
    assert list(sel["params.lr"]) == [0.001, 0.1]
    assert {p["run_id"] for p in panel.curve_data} == {ids[0], ids[2]}
    diff = panel.diff
    assert [r["run_id"] for r in diff["runs"]] == [ids[2], ids[0]]
    sections = {s["title"]: {r["key"]: r["values"] for r in s["rows"]} for s in diff["sections"]}
    assert sections["params"] == {"lr": ["0.001", "0.1"], "model": ["gb", "rf"]}   # epochs is the same
    assert set(sections["metrics"]) == {"acc", "loss"}
    assert "environment" not in sections     # same kernel, same packages
    changed = [line for line in diff["source"][0]["lines"] if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == ["-lr = 0.001", "-model = 'gb'", "+lr = 0.1", "+model = 'rf'"]
    panel.selected = [ids[0]]
    assert panel.diff == {}


def test_selection_from_the_page_reaches_python(panel):
    """What the front end sends when a point is clicked: a state update of ``selected``."""
    ids = list(panel.runs["run_id"])
    seen = []
    panel.observe(lambda change: seen.append(change["new"]), names="selected")
    panel.set_state({"selected": [ids[1]]})
    assert panel.selected == [ids[1]] and seen == [[ids[1]]]
    assert list(panel.selected_runs["params.lr"]) == [0.01]


def test_changing_an_axis_rebuilds_the_chart_and_a_wrong_one_is_refused(panel):
    panel.x = "params.model"
    assert panel.specs["scatter"]["encoding"]["x"]["field"] == "params\\.model"
    with pytest.raises(KeyError, match="no column 'params.nope'"):
        panel.x = "params.nope"
    assert panel.x == "params.model"


def test_a_run_finished_in_this_kernel_appears_without_rerunning_the_panel(panel, panel_runs):
    panel_runs.run_cell("%%track train -e demo\nlr = 0.5\nmodel = 'rf'\nacc = round(0.9 - lr, 4)")
    assert _wait(lambda: panel.table["n"] == 4)
    assert _table_rows(panel)["params.lr"][-1] == 0.5
    assert repr(panel) == "ComparePanel(4 runs, 0 selected)"


def test_a_run_written_by_another_process_appears_within_seconds(panel, store_path, tmp_path):
    code = ("import nbtrack\n"
            f"with nbtrack.run('remote', params={{'lr': 0.3}}, experiment='demo', store={str(store_path)!r}):\n"
            "    pass\n")
    result = run_py(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    t0 = time.monotonic()
    assert _wait(lambda: panel.table["n"] == 4, timeout=20)
    print(f"another process's run appeared after {time.monotonic() - t0:.1f} s")
    assert "remote" in _table_rows(panel)["name"]


def test_curves_of_a_running_cell_grow_while_it_runs(panel, panel_runs):
    panel_runs.user_ns["panel"] = panel
    result = panel_runs.run_cell("""%%track live -e demo
import time
from nbtrack.recorder import run as _nbt_run
me = _nbt_run.current().run_id
seen = []
for step in range(40):
    nbtrack.log(loss=1.0 / (step + 1))
    time.sleep(0.05)
    seen.append(sum(1 for p in panel.curve_data if p["run_id"] == me))
""")
    assert result.success
    seen = panel_runs.user_ns["seen"]
    growth = sorted(set(seen))
    assert seen[-1] > seen[0] and len(growth) >= 2, seen        # points arrived while the cell ran
    assert len(growth) <= 2 * 0.05 * 40 / 0.5 + 2, growth       # at most a few updates a second


def test_the_panel_takes_a_run_list_or_frame_and_a_where_filter(panel_runs):
    frame = nbtrack.runs()
    p = nbtrack.compare(frame.iloc[:2])
    assert p.table["n"] == 2
    p.close()
    p = nbtrack.compare(where="params.lr < 0.05")
    assert p.table["n"] == 2
    p.close()
    with pytest.raises(nbtrack.NbtrackError, match="filter"):
        nbtrack.compare(where="params.lr <")
    with pytest.raises(KeyError, match=r"no column 'params.nope'.*params\.lr"):
        nbtrack.compare(x="params.nope")


def test_an_empty_store_gives_an_empty_panel(tmp_path):
    p = nbtrack.compare(store=tmp_path / "nothing" / "runs.duckdb")
    assert p.table["n"] == 0 and p.specs == {} and repr(p) == "ComparePanel(0 runs, 0 selected)"
    p.close()


def test_the_bundle_is_self_contained():
    """What the panel's page evaluates: its module and the vega-embed it is sent apart (_vega)."""
    from nbtrack.widgets.compare import ComparePanel

    static = ROOT / "src" / "nbtrack" / "static"
    vega = (static / "vega.js").read_text()
    for bundle in ((static / "compare.js").read_text(), vega):
        for cdn in ("esm.sh", "cdn.jsdelivr", "unpkg.com", "cdnjs", "skypack"):
            assert cdn not in bundle
        assert not re.search(r"""(import\(|from)\s*["']https?:""", bundle)   # nothing fetched at run time
    assert len(vega) > 300_000   # vega, vega-lite and vega-embed are inside
    assert "_vega" in ComparePanel.class_traits(sync=True)


@pytest.mark.slow
def test_the_wheel_ships_the_bundle(tmp_path):
    import subprocess
    import sys
    import zipfile

    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("nbtrack-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"nbtrack/static/compare.js", "nbtrack/static/compare.css", "nbtrack/static/vega.js"} <= set(names)


def test_a_missing_front_end_is_a_clear_error(monkeypatch, tmp_path):
    import importlib

    bundles = importlib.import_module("nbtrack.widgets.bundles")

    monkeypatch.setattr(bundles, "STATIC", tmp_path)
    with pytest.raises(nbtrack.NbtrackError, match="front end is not built.*npm run build"):
        nbtrack.compare(store=tmp_path / "runs.duckdb")


def test_the_pages_refresh_message_rereads_the_store(panel, store_path):
    from nbtrack.widgets.live import hub

    hub.remove(panel)   # no automatic refresh: only the message below may bring the new run in
    with nbtrack.run("pushed", params={"lr": 0.7}, experiment="demo", store=store_path):
        pass
    nbtrack.runs(store=store_path)
    time.sleep(0.3)
    assert panel.table["n"] == 3
    # a page asking for a refresh (the custom message the user guide names), through the widget's own
    # comm message entry point
    panel._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "refresh"}}}, "buffers": []})
    assert panel.table["n"] == 4 and "pushed" in _table_rows(panel)["name"]
    panel._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "other"}}}, "buffers": []})
    assert panel.table["n"] == 4   # any other message is ignored


def test_the_pages_edit_messages_are_the_python_calls_and_answer_what_changed(panel, monkeypatch):
    """What the toolbar sends, through the comm entry point: the store changes, the table follows, and
    the page is told how many runs changed (or why none did)."""
    sent = []
    monkeypatch.setattr(panel, "send", lambda content, buffers=None: sent.append(content))

    def page(action, runs, value=None):
        panel._handle_msg({"content": {"data": {"method": "custom", "content": {
            "type": "edit", "action": action, "runs": runs, "value": value}}}, "buffers": []})
        return sent[-1]

    ids = list(panel.runs["run_id"])
    panel.selected = ids[:2]
    assert page("tag", ids[:2], ["keep", "best"]) == {"type": "edited", "action": "tag", "runs": ids[:2], "count": 2}
    assert page("star", ids[:1], True)["count"] == 1
    assert page("rename", ids[1:2], "<b>two</b>")["count"] == 1
    assert page("note", ids[1:2], "a note")["count"] == 1
    rows = _table_rows(panel)
    assert rows["tags"][:2] == ["keep, best", "keep, best"] and rows["starred"][:2] == [True, False]
    assert rows["run_label"][1] == "<b>two</b>" and rows["note"][1] == "a note"
    assert [r["label"] for r in panel.diff["runs"]] == [f"train · {ids[0][:8]}", f"<b>two</b> · {ids[1][:8]}"]
    assert page("delete", ids[:1])["count"] == 1
    assert panel.selected == ids[1:2] and panel.table["n"] == 2   # the deleted run leaves the selection too
    assert page("restore", ids[:1])["count"] == 1 and panel.table["n"] == 3
    assert nbtrack.get(ids[0]).tags == ["keep", "best"]
    assert page("rename", ids, "x") == {"type": "edited", "action": "rename", "error": "rename takes one run; 3 match"}
    assert page("drop table", ids)["error"] == "cannot 'drop table' 3 runs from the panel"


@pytest.mark.parametrize("widget, script, typedef", [
    ("ComparePanel", "compare.js", "CompareModel"),
    ("ChartView", "chart.js", "ChartModel"),
    ("ReportView", "report.js", "ReportModel"),
])
def test_each_widgets_synced_traits_are_documented_in_its_front_end(widget, script, typedef):
    """The JSDoc typedef in js/<widget>.js names exactly the traits Python syncs, so a trait added,
    renamed or dropped on one side without the other fails here, not in a user's browser."""
    import anywidget

    import nbtrack.widgets as widgets

    cls = getattr(widgets, widget)
    own = set(cls.class_traits(sync=True)) - set(anywidget.AnyWidget.class_traits(sync=True))
    text = (ROOT / "js" / script).read_text()
    block = re.search(r"/\*\*((?:(?!\*/).)*@typedef \{object\} " + typedef + r"\b.*?)\*/", text, re.S)
    assert block, f"js/{script} has no @typedef {typedef}"
    # a @property line's type may hold braces: the name is the word after the balanced {type}
    documented = set()
    for line in block.group(1).split("@property")[1:]:
        depth, i = 0, 0
        for i, ch in enumerate(line):
            depth += (ch == "{") - (ch == "}")
            if depth == 0 and ch == "}":
                break
        documented.add(line[i + 1:].split()[0])
    assert documented == own, f"only in Python: {own - documented}; only in js/{script}: {documented - own}"
