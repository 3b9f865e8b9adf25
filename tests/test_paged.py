"""The compare panel past a few thousand runs, from Python with a real store: the table pages from DuckDB
(only the page's rows travel), sorts and filters there with the language of ``runs(where=...)``, the
scatter counts runs in a grid, a brush selects every run inside exactly, and the state the notebook
saves stays small whatever the store's size. (What the page does with it: tests/test_browser.py.)"""
from __future__ import annotations

import importlib
import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ipywidgets.widgets.widget import _remove_buffers

import nbtrack
from nbtrack import chart_data
from nbtrack.errors import NbtrackError
from nbtrack.store import Store, paging, queries
from nbtrack.widgets.paged import FIRST_ROWS
from nbtrack.widgets.paged_view import WINDOW

from helpers import make_runs, run_py
from strategies import ODD_TEXT as ODD_STRINGS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bulk  # noqa: E402

paged_module = importlib.import_module("nbtrack.widgets.paged")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("paged") / "runs.duckdb"
    make_runs(path, 300, n_params=4, n_metrics=3)
    return path


@pytest.fixture
def panel(store):
    p = nbtrack.compare(store=store, paged=True)
    yield p
    p.close()


def _rows(p) -> pd.DataFrame:
    """The window as the page decodes it."""
    out = {}
    for col in p.table["columns"]:
        raw = p.table["data"][col["name"]]
        out[col["name"]] = [None if np.isnan(v) else v for v in np.frombuffer(raw, "<f8")] \
            if isinstance(raw, memoryview) else raw
    return pd.DataFrame(out)


def _specs(p) -> dict:
    """The charts, once their thread has built them (a paged panel draws its table first)."""
    p._charts.result(timeout=60)
    return p.specs


def _ask(p, **message) -> None:
    p._handle_custom_msg(message, [])   # what the page's model.send() arrives as
    if message.get("type") == "view":   # answered on the panel's own thread
        p._views.last.result(timeout=60)


def test_the_table_pages_sorts_and_filters_in_the_kernel(panel, store):
    every = nbtrack.runs(store=store)
    assert panel.paged and panel.table["paged"] and repr(panel) == "ComparePanel(300 runs, 0 selected)"
    assert panel.table["total"] == 300 and panel.table["n"] == WINDOW   # not every run: one window
    assert list(_rows(panel)["run_id"]) == list(every["run_id"][:WINDOW])   # runs()'s order
    _ask(panel, type="view", offset=250, limit=100)
    assert panel.table["offset"] == 250 and list(_rows(panel)["run_id"]) == list(every["run_id"][250:])
    # every window has every column, the same kinds: the page's column choice survives a scroll
    columns = panel.table["columns"]
    _ask(panel, type="view", offset=0, limit=WINDOW)
    assert panel.table["columns"] == columns

    _ask(panel, type="view", sort="metrics.m1", desc=True)
    expected = every.sort_values(["metrics.m1", "started_at"], ascending=[False, True], kind="stable")
    assert list(_rows(panel)["run_id"]) == list(expected["run_id"][:WINDOW])
    assert panel.table["sort"] == "metrics.m1" and panel.table["desc"] is True

    where = "params.p1 > 5 and name != 'sweep-3'"
    _ask(panel, type="view", filter=where)
    shown = nbtrack.runs(store=store, where=where).sort_values(
        ["metrics.m1", "started_at"], ascending=[False, True], kind="stable")
    assert 0 < panel.table["total"] == len(shown) < 300 and panel.table["error"] == ""
    assert list(_rows(panel)["run_id"]) == list(shown["run_id"][:WINDOW])
    assert panel.status.startswith("300 runs")

    _ask(panel, type="view", filter="params.p1 >")   # a filter that does not parse: said, rows kept
    assert panel.table["error"].startswith("could not parse filter") and panel.table["total"] == 300


def test_a_brush_selects_every_run_inside_exactly(panel, store):
    every = nbtrack.runs(store=store)
    spec = _specs(panel)["scatter"]
    assert spec["usermeta"]["nbtrack"]["aggregated"] and "300 runs counted in a grid" in spec["title"]["subtitle"]
    x, y = panel.x, panel.y
    assert sum(cell["runs"] for cell in spec["datasets"]["cells"]) == every[[x, y]].dropna().shape[0]
    lo, hi = every[x].quantile(0.2), every[x].quantile(0.7)
    ylo, yhi = every[y].min(), every[y].median()
    escaped = {name: name.replace(".", "\\.") for name in (x, y)}
    _ask(panel, type="brush", ranges={escaped[x]: [hi, lo], escaped[y]: [ylo, yhi]})
    inside = every[(every[x] >= lo) & (every[x] <= hi) & (every[y] >= ylo) & (every[y] <= yhi)]
    assert len(inside) > 10 and panel.selected == list(inside["run_id"])
    # the page gets a count and the selected runs it shows, never the whole list
    sent = panel._selected_json(panel.selected)
    shown = set(_rows(panel)["run_id"]) | set(panel._view.sampled)
    assert sent["count"] == len(inside) and set(sent["ids"]) == set(inside["run_id"]) & shown
    assert list(panel.selected_runs["run_id"]) == list(inside["run_id"])


def test_clicks_and_bars_select_as_the_whole_table_would(panel, store):
    ids = list(_rows(panel)["run_id"])
    _ask(panel, type="click", run=ids[3])
    assert panel.selected == [ids[3]]
    _ask(panel, type="click", run=ids[7], shift=True)
    assert panel.selected == ids[3:8]
    _ask(panel, type="click", run=ids[5], ctrl=True)
    assert panel.selected == [ids[3], ids[4], ids[6], ids[7]]
    _ask(panel, type="click", run=ids[0])
    _ask(panel, type="click", run=ids[0])   # a second plain click on the only selected run clears it
    assert panel.selected == []
    _ask(panel, type="group", column="name", value="sweep-2")
    assert panel.selected == list(nbtrack.runs(store=store, where="name = 'sweep-2'")["run_id"])
    _ask(panel, type="clear")
    assert panel.selected == []


def test_edits_apply_to_the_whole_selection_the_page_cannot_hold(panel, store):
    _ask(panel, type="view", filter="params.p1 >= 5")
    _ask(panel, type="group", column="status", value="finished")
    chosen = list(panel.selected)
    assert len(chosen) == panel.table["total"] > 0
    replies = []
    panel.send = replies.append
    _ask(panel, type="edit", action="tag", runs="selected", value=["wide"])
    assert replies[-1]["count"] == len(chosen)
    assert sorted(nbtrack.runs(store=store, where="tags = 'wide'")["run_id"]) == sorted(chosen)
    nbtrack.untag(chosen, "wide", store=store)


def test_runs_written_later_appear_in_a_paged_panel(tmp_path):
    path = tmp_path / "runs.duckdb"
    make_runs(path, 50, n_params=2, n_metrics=2)
    p = nbtrack.compare(store=path, paged=True)
    try:
        _ask(p, type="view", sort="metrics.m0", desc=True)   # the view's runs are kept while only the sort
        _ask(p, type="view", desc=False)                       # changes: a refresh reads them again
        with nbtrack.run("late", params={"p0": 99.0}, store=path) as r:
            r.log(m0=-1.0)
        deadline = time.monotonic() + 20
        while p.table["all"] < 51 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert p.table["all"] == 51 and p.status.startswith("51 runs")
        assert _rows(p)["name"].iloc[0] == "late" and p.table["sort"] == "metrics.m0"
        _ask(p, type="view", filter="params.p0 = 99")
        assert list(_rows(p)["name"]) == ["late"]
    finally:
        p.close()


def test_the_columns_of_a_paged_panel_are_those_of_its_live_runs(tmp_path):
    """The panel over the whole store lists the keys its runs hold: a key only a deleted run holds is no
    column (paging.keys tests each row's run only when some run is deleted), and one a live run holds is."""
    path = tmp_path / "runs.duckdb"
    make_runs(path, 20, n_params=2, n_metrics=1)
    with nbtrack.run("odd", params={"only_here": 1.5}, store=path) as r:
        r.log(only_logged_here=2.0)
    columns = lambda p: {c["name"] for c in p.table["columns"]}   # noqa: E731
    p = nbtrack.compare(store=path, paged=True)
    try:
        assert {"params.only_here", "metrics.only_logged_here", "params.p0", "metrics.m0"} <= columns(p)
        with Store(path).connect(read_only=True) as con:   # the key counts came with the columns' scan
            assert p._key_counts == queries.metric_key_counts(con) and p._key_counts["only_logged_here"] == {
                "runs": 1, "logged": 1}
    finally:
        p.close()
    nbtrack.delete(r.run_id, store=path)
    p = nbtrack.compare(store=path, paged=True)
    try:
        assert {"params.p0", "metrics.m0"} <= columns(p)
        assert not {"params.only_here", "metrics.only_logged_here"} & columns(p)
    finally:
        p.close()


def _until(check, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)
    return check()


def test_a_big_panel_is_refreshed_no_more_often_than_it_can_afford(tmp_path):
    """A sweep writing a run a second must not keep a big panel re-reading the store: the thread that
    follows the store leaves a paged panel alone for 10x what its last refresh took, then shows what
    it skipped."""
    from nbtrack.widgets import live

    path = tmp_path / "runs.duckdb"
    make_runs(path, 20, n_params=1, n_metrics=1)
    p = nbtrack.compare(store=path, paged=True)
    try:
        p._refresh_cost = 1_000.0   # as if its last refresh had taken 1,000 s
        with nbtrack.run("late", store=path) as r:
            r.log(m0=0.5)
        time.sleep(3 * live.POLL_S)   # the store changed and was polled: the panel is not due yet
        assert p.table["all"] == 20
        p._refreshed_at -= 10_001   # the 10,000 s have passed
        assert _until(lambda: p.table["all"] == 21), "the skipped run never appeared"
    finally:
        p.close()


def test_a_panel_closed_while_the_store_thread_refreshes_it_says_nothing(tmp_path, capsys):
    """The thread that follows the store may hold a panel the user closes (seen once in this file's
    runs: 'the panel ... stopped updating: cannot schedule new futures after shutdown')."""
    path = tmp_path / "runs.duckdb"
    make_runs(path, 20, n_params=1, n_metrics=1)
    p = nbtrack.compare(store=path, paged=True)
    p._charts.result(timeout=60)
    p.close()
    p.refresh()   # what that thread does with a panel it took before the close
    assert capsys.readouterr().err == ""


def test_a_run_written_while_a_panel_refreshes_is_shown_next(tmp_path):
    """The store's signature is taken before a refresh reads it: a run another process writes while the
    panel refreshes changes the signature again, and the next poll shows it."""
    path = tmp_path / "runs.duckdb"
    make_runs(path, 20, n_params=1, n_metrics=1)
    p = nbtrack.compare(store=path, paged=True)
    refresh, landed = p.refresh, []

    def refresh_and_a_write_lands() -> None:
        refresh()
        if not landed:   # after the panel read the store, before the thread notes the store's state
            landed.append(run_py(f"import nbtrack\nwith nbtrack.run('meanwhile', store={str(path)!r}): pass",
                                 cwd=tmp_path))

    p.refresh = refresh_and_a_write_lands
    try:
        with nbtrack.run("late", store=path):
            pass
        assert _until(lambda: landed, 60) and landed[0].returncode == 0, landed and landed[0].stderr
        assert _until(lambda: p.table["all"] == 22), f"the panel shows {p.table['all']} of 22 runs"
    finally:
        p.close()


def test_a_report_of_a_store_past_the_threshold_still_carries_every_run(tmp_path, monkeypatch):
    """A saved page has no kernel to page from: `nbtrack report` makes a whole panel whatever the size."""
    from click.testing import CliRunner

    from nbtrack.cli import main

    path = tmp_path / "runs.duckdb"
    make_runs(path, 30, n_params=2, n_metrics=2)
    monkeypatch.setattr(paged_module, "PAGE_PAST", 10)
    result = CliRunner().invoke(main, ["report", "--store", str(path), "-o", str(tmp_path / "all.html")])
    assert result.exit_code == 0, result.output
    assert ": 30 runs," in result.output and (tmp_path / "all.html").stat().st_size > 0


@pytest.mark.slow
def test_a_big_store_pages_by_itself_and_its_saved_state_stays_small(tmp_path, monkeypatch):
    sizes = {}
    for n in (20_000, 60_000):
        path = tmp_path / f"{n}.duckdb"
        bulk.build(path, n, curves=[(3, 100)])
        monkeypatch.setattr(paged_module, "PAGE_PAST", 1_000)
        p = nbtrack.compare(store=path)
        try:
            assert p.paged and p.table["total"] == n and p.table["n"] == WINDOW
            _specs(p)
            # every run brushed: Python holds them all, the page gets a count and the ones it shows
            _ask(p, type="brush", ranges={p.x.replace(".", "\\."): [-1e300, 1e300],
                                          p.y.replace(".", "\\."): [-1e300, 1e300]})
            assert len(p.selected) == n and p._selected_json(p.selected)["count"] == n
            # a sort by an int with ~100 runs a value: the top sorted alone (paging.head), then the
            # whole order for a window far down; either is the stable sort of the whole table
            every = nbtrack.runs(store=path).sort_values(["params.i0", "started_at"], ascending=[False, True],
                                                         kind="stable")["run_id"].tolist()
            _ask(p, type="view", sort="params.i0", desc=True, offset=0, limit=WINDOW)
            assert p._view.order._order is None and _rows(p)["run_id"].tolist() == every[:WINDOW]
            _ask(p, type="view", offset=n - 300, limit=WINDOW)
            assert p._view.order._order is not None and _rows(p)["run_id"].tolist() == every[n - 300:n - 100]
            # the front-end bundles (_esm, _css, _vega) are the same ~0.9 MB in every panel: the data is what grows
            state, _, buffers = _remove_buffers(p.get_state())
            data = {k: v for k, v in state.items() if k not in ("_esm", "_css", "_vega")}
            sizes[n] = len(json.dumps(data)) + sum(len(b) for b in buffers)
            with pytest.raises(NbtrackError, match="a saved page has no store behind it"):
                p.save(tmp_path / "panel.html")
        finally:
            p.close()
    assert max(sizes.values()) < 600_000, sizes
    assert sizes[60_000] < 1.1 * sizes[20_000], sizes   # it does not grow with the store
    monkeypatch.setattr(paged_module, "PAGE_PAST", 100_000)
    p = nbtrack.compare(store=tmp_path / "20000.duckdb")   # below the threshold: the whole table, as before
    try:
        assert not p.paged and p.table["n"] == 20_000 and "paged" not in p.table
    finally:
        p.close()


def test_the_binned_scatter_is_a_valid_vega_lite_spec(panel):
    import altair as alt

    alt.Chart.from_dict(_specs(panel)["scatter"], validate=True)
    for name in ("parallel", "bars"):   # drawn from the sample, and said so
        assert "a random sample of 300 of 300 runs" in panel.specs[name]["title"]["subtitle"]
    assert panel.sample["n"] == 300 and {"run_id", "label"} <= {c["name"] for c in panel.sample["columns"]}


ODD_KEYS = ["a'b", "x.y", "ünï`code", 'q"uote', "sp ace"]
ODD_TEXT = ["it's", 'say "hi"', "a,b", "ünïcødé ✓", "", "<b>bold</b>", "back`tick"]


def test_odd_keys_and_values_sort_filter_and_select_exactly(tmp_path):
    """Keys and values with quotes, dots, backticks, spaces and unicode, NaN and inf, huge ints: through
    the real path (runs recorded, imported, then paged) the kernel's sort, a bar's group and the window
    give what runs() gives."""
    path = tmp_path / "runs.duckdb"
    odd_floats = [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324, 0.5]
    for i in range(21):
        params = {key: ODD_TEXT[(i + k) % len(ODD_TEXT)] for k, key in enumerate(ODD_KEYS)}
        params["big"] = 2 ** 62 + i if i % 3 else -(2 ** 63) + i
        params["small"], params["ratio"] = i % 5, [0.5, -0.0, 0.0, 1e308, 5e-324][i % 5]   # ties, both zeros
        params["mixed"] = [1, 1.0, "b", 2, "a", 0.5][i % 6]   # an int and a float tie; numbers before text
        params["n\x00ul"] = (i * 7) % 5
        with nbtrack.run(f"odd{i % 4}", params=params, store=path) as r:
            r.log(score=odd_floats[i % len(odd_floats)])
    every = nbtrack.runs(store=path)
    p = nbtrack.compare(store=path, paged=True)
    try:
        assert p.table["total"] == 21
        for key in ODD_KEYS:
            column = f"params.{key}"
            _ask(p, type="view", sort=column, desc=False, offset=0, limit=WINDOW)
            assert list(_rows(p)[column]) == list(every.sort_values(column, kind="stable")[column])
            for value in ODD_TEXT:
                _ask(p, type="group", column=column, value=value)
                assert sorted(p.selected) == sorted(every.loc[every[column] == value, "run_id"]), (key, value)
        # a key holding NUL is stored with it written out (codec.py), so that the sort's key, bound as a
        # DuckDB variable, never holds one
        column = "params.n\\x00ul"
        assert column in every.columns
        for desc in (False, True):
            _ask(p, type="view", sort=column, desc=desc, offset=0, limit=WINDOW)
            assert list(_rows(p)["run_id"]) == list(every.sort_values(column, ascending=not desc, kind="stable")["run_id"])
        _ask(p, type="view", sort="params.big", desc=True, offset=0, limit=WINDOW)
        assert list(_rows(p)["run_id"]) == list(every.sort_values("params.big", ascending=False, kind="stable")["run_id"])
        for desc in (True, False, True):   # numbers, then text, either way; at one number, the int first
            _ask(p, type="view", sort="params.mixed", desc=desc, offset=0, limit=WINDOW)
            assert list(_rows(p)["run_id"]) == _mixed_order(every, "params.mixed", desc), desc
        # NaN and the infinities are no number the page can draw: missing there, last in a sort, either
        # way; the second click sorts by the first's keys turned round (paging.reversed_keys)
        for desc in (False, True):
            _ask(p, type="view", sort="metrics.score", desc=desc, offset=0, limit=WINDOW)
            shown = _rows(p)
            finite = every[np.isfinite(every["metrics.score"])].sort_values(
                "metrics.score", ascending=not desc, kind="stable")
            assert list(shown["run_id"][:len(finite)]) == list(finite["run_id"])
            assert shown["metrics.score"][len(finite):].isna().all()
        for column in ("name", "params.small", "params.ratio"):   # ties stay oldest first both ways; the
            for desc in (True, False, True):                       # first read, then turned round
                _ask(p, type="view", sort=column, desc=desc, offset=0, limit=WINDOW)
                assert list(_rows(p)["run_id"]) == list(
                    every.sort_values(column, ascending=not desc, kind="stable")["run_id"]), (column, desc)
        _ask(p, type="group", column="name", value="odd1")   # in the table's order: by score, here
        assert sorted(p.selected) == sorted(every.loc[every["name"] == "odd1", "run_id"])
    finally:
        p.close()


def _mixed_order(every, column, desc):
    """The order the panel documents for a column of numbers and text (ties: oldest first)."""
    runs = list(zip(every["run_id"], every[column]))
    numbers = [(i, v) for i, v in runs if not isinstance(v, str)]
    texts = sorted([(i, v) for i, v in runs if isinstance(v, str)], key=lambda t: t[1], reverse=desc)
    numbers.sort(key=lambda t: (-t[1] if desc else t[1], isinstance(t[1], float)))
    return [i for i, _ in numbers + texts]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=ODD_STRINGS, value=ODD_STRINGS)
def test_a_bar_selects_exactly_the_runs_of_its_value_whatever_the_text(tmp_path_factory, key, value):
    """Generated keys and text values (NUL, quotes, lone surrogates, non-BMP...) recorded as params, then
    selected through the where language the way a click on a bar does: exactly the runs holding it."""
    path = tmp_path_factory.mktemp("bars") / "runs.duckdb"
    for i, v in enumerate([value, value + "x", value]):
        with nbtrack.run("bar", params={"k" + key: v, "i": i}, store=path):
            pass
    every = nbtrack.runs(store=path)
    column = next(c for c in every.columns if c.startswith("params.") and c != "params.i")
    p = nbtrack.compare(store=path, paged=True)
    try:
        _ask(p, type="group", column=column, value=every[column].iloc[0])
        assert sorted(p.selected) == sorted(every["run_id"][[0, 2]])
    finally:
        p.close()


def _stand_in_read(monkeypatch, module, name: str, nth: int = 1):
    """Replace ``module.name`` (which takes the connection first): its ``nth`` call reads the store's
    connection on until something interrupts it (40 s at most, so that a test without the interrupt
    fails instead of hanging), the others are the real one. Returns an event set when that read
    starts, and the calls' (args, kwargs)."""
    real, reading, calls = getattr(module, name), threading.Event(), []

    def stand_in(con, *args, **kwargs):
        calls.append((args, kwargs))
        if len(calls) == nth:
            reading.set()
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:   # not one endless query: DuckDB 2 counts a range at once
                con.execute("SELECT max(hash(i)) FROM range(200000000) t(i)").fetchall()
        return real(con, *args, **kwargs)

    monkeypatch.setattr(module, name, stand_in)
    return reading, calls


def test_a_view_message_interrupts_the_one_being_answered_and_is_merged_with_it(panel, store, monkeypatch):
    """The page's scrolls, sorts and filters are answered on the panel's own thread. One that comes while
    another is answered interrupts that one's query and is merged with it (its keys win): the page gets
    one window, for what it asked last, marked with its last message's seq; no window of the sort it
    no longer wants."""
    every = nbtrack.runs(store=store)
    started, calls = _stand_in_read(monkeypatch, paged_module.paging, "sort_keys")   # the first sort's read
    windows = []
    panel.observe(lambda change: windows.append(change["new"]), names=["table"])
    panel._handle_custom_msg({"type": "view", "sort": "metrics.m1", "desc": False, "offset": 0, "seq": 7}, [])
    assert started.wait(30)   # (the query may not be running yet: an interrupt must wait for it)
    panel._handle_custom_msg({"type": "view", "desc": True, "seq": 8}, [])   # the second click on the header
    panel._views.last.result(timeout=60)
    # the rows on screen, then the rest of the window
    assert [(w["seq"], w["n"]) for w in windows] == [(8, FIRST_ROWS), (8, WINDOW)] and len(calls) == 2
    expected = every.sort_values(["metrics.m1", "started_at"], ascending=[False, True], kind="stable")
    assert list(_rows(panel)["run_id"]) == list(expected["run_id"][:WINDOW])
    assert panel.table["sort"] == "metrics.m1" and panel.table["desc"] is True


@settings(max_examples=200, deadline=None)
@given(rank=st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 1e300, -1e300, math.inf]) | st.floats(allow_nan=False),
                     min_size=1, max_size=60), data=st.data())
def test_the_top_of_an_order_is_the_top_of_the_whole_stable_sort(rank, data):
    """paging.head sorts only the first rows of a big view's order: ties (many, at the edge too), both
    zeros and the missing values' inf must come out as the whole stable sort has them."""
    rank = np.array(rank, dtype="float64")
    n = data.draw(st.integers(1, len(rank)))
    assert paging.head(rank, n).tolist() == np.argsort(rank, kind="stable")[:n].tolist()


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_each_run_of_a_view_gets_its_own_key(data):
    """paging.ranks matches a view's runs (filtered or not) to the keys of a column over the store, by
    start, and by id where runs share a start: keys in any order (DuckDB's threads), runs without a
    key, keys of runs outside the view, NaN (ranked with the missing, last)."""
    starts = data.draw(st.lists(st.integers(0, 12), min_size=1, max_size=30))
    runs = sorted((us, f"r{i:03}") for i, us in enumerate(starts))   # the store, by start then id
    shared = {us for us in starts if starts.count(us) > 1}
    view = [run for run in runs if data.draw(st.booleans())] or runs[:1]
    values = {run: data.draw(st.floats() | st.sampled_from([0.0, -0.0, 1.0])) for run in runs
              if data.draw(st.booleans())}
    order = data.draw(st.permutations(list(values)))
    keys = pa.table({"us": [us for us, _ in order], "rid": [i if us in shared else None for us, i in order],
                     "k": [values[run] for run in order]})
    rows = pa.table({"run_id": [i for _, i in view], "us": [us for us, _ in view]})
    expected = [values.get(run, math.inf) for run in view]
    got = paging.ranks(rows, paging.SortKeys(keys)).tolist()
    assert got == [math.inf if math.isnan(v) else v for v in expected]


NUMBERS = st.one_of(st.floats(), st.integers(-(2 ** 70), 2 ** 70), st.sampled_from([2 ** 53 + 1, 2 ** 53, -0.0]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(NUMBERS, min_size=1, max_size=8))
@example(values=[2 ** 53, 2 ** 53 + 1])   # 2^53 + 1 rounds to 2^53 in a DOUBLE
@example(values=[1.0, 1, float("nan"), -0.0, 0])   # an int and a float tie: the int first
# ints past 64 bits (kept as hex) beside their neighbours: -2^70 - 1 first, a DOUBLE ties them all
@example(values=[-(2 ** 70), -(2 ** 70) - 1, 2 ** 63, 2 ** 63 - 1, -(2 ** 63), -(2 ** 63) - 1, 2 ** 70 + 1, 2 ** 70])
def test_a_sort_of_generated_numbers_is_exact_both_ways(tmp_path_factory, values):
    """Generated numbers as one param (NaN, the infinities, both zeros, ints past 2^53 and past 64 bits
    that a DOUBLE rounds together, ints and floats that tie) recorded run by run, then sorted by the paged view each
    way: by number (at one number, the int first, and ints past 2^53 exactly), the rest last, ties
    oldest first; the second direction from the first's keys where they turn round (paging.py)."""
    path = tmp_path_factory.mktemp("sorted") / "runs.duckdb"
    ids = []
    for i, value in enumerate(values):
        with nbtrack.run(f"r{i}", params={"x": value}, store=path) as r:
            pass
        ids.append(r.run_id)

    def expected(desc: bool) -> list[str]:
        finite = [(i, v) for i, v in zip(ids, values) if math.isfinite(v)]
        sign = -1 if desc else 1   # number, then the exact int (floats after ints), then age
        finite.sort(key=lambda t: (sign * float(t[1]), isinstance(t[1], float), sign * t[1] if isinstance(t[1], int) else 0))
        return [i for i, _ in finite] + [i for i, v in zip(ids, values) if not math.isfinite(v)]

    store = nbtrack.connect(path)
    view = paged_module.PagedView(store, None, None, None)
    with store.connect() as con:
        view.refresh(con)
        for desc in (False, True, False):
            view.set_view(con, sort="params.x", desc=desc)
            assert view.window_ids() == expected(desc), (desc, values)


def test_a_sort_shows_its_first_rows_then_the_window_unless_the_page_moved_on(panel, store, monkeypatch):
    """After a sort or filter the rows on screen go first (a new order's runs lie all over the store,
    and their window reads a row group per run); the rest of the window follows, unless a newer message
    came: a scroll meanwhile interrupts that read and gets its own window."""
    every = nbtrack.runs(store=store)
    expected = every.sort_values(["metrics.m2", "started_at"], ascending=[True, True], kind="stable")["run_id"]
    reading, calls = _stand_in_read(monkeypatch, paged_module.queries, "runs_frame", nth=2)   # the rest's read
    windows = []
    panel.observe(lambda change: windows.append(change["new"]), names=["table"])
    panel._handle_custom_msg({"type": "view", "sort": "metrics.m2", "offset": 0, "limit": WINDOW, "seq": 3}, [])
    assert reading.wait(30)
    assert [(w["seq"], w["n"]) for w in windows] == [(3, FIRST_ROWS)]   # on screen while the rest is read
    assert list(_rows(panel)["run_id"]) == list(expected[:FIRST_ROWS])
    panel._handle_custom_msg({"type": "view", "offset": 100, "limit": WINDOW, "seq": 4}, [])   # a scroll
    panel._views.last.result(timeout=60)
    assert [(w["seq"], w["n"]) for w in windows] == [(3, FIRST_ROWS), (4, WINDOW)]
    assert list(_rows(panel)["run_id"]) == list(expected[100:300])
    assert [len(kwargs["ids"]) for _, kwargs in calls] == [FIRST_ROWS, WINDOW, WINDOW]


def test_the_table_does_not_wait_for_the_charts_to_read_the_store(panel, store, monkeypatch):
    """After a filter the charts count the view's runs again on their own thread, holding the store for
    their read (300 ms to a second at 10^6 runs). A message for the table interrupts that read, is
    answered, and the charts start over once it is."""
    every = nbtrack.runs(store=store)
    _specs(panel)   # the charts of the panel as made: drawn before the read below stands in
    # (without the interrupt, the sort below gives up on the store after 30 s)
    reading, calls = _stand_in_read(monkeypatch, paged_module.paging, "numbers")   # the charts' first read
    _ask(panel, type="view", filter="params.p1 > 5")
    assert reading.wait(30)
    _ask(panel, type="view", sort="metrics.m1", desc=True)   # (the store would be held for good)
    shown = every[every["params.p1"] > 5].sort_values(["metrics.m1", "started_at"], ascending=[False, True],
                                                       kind="stable")
    assert list(_rows(panel)["run_id"]) == list(shown["run_id"][:WINDOW])
    assert _until(lambda: len(calls) == 2 and panel._specs_key == panel._charts_key()), "charts never drawn"
    assert panel.specs["scatter"]["usermeta"]["nbtrack"]["aggregated"]


def test_a_refresh_while_the_page_is_answered_waits_for_neither(panel, store):
    """The panel's lock is taken before the store, by every thread: a refresh (the thread that follows
    the store, when another process wrote runs) holds the lock and opens the store. An answer to the
    page that held the store and then waited for the lock held them the other way round: the two waited
    for each other until the store's 30 s timeout, and one of them gave up (seen once in CI)."""
    every = nbtrack.runs(store=store)
    with panel._lock:   # as a refresh holds it, from the start of its read
        panel._handle_custom_msg({"type": "view", "sort": "metrics.m0", "seq": 3}, [])
        _until(lambda: panel._views._con is not None, timeout=2)   # an answer holding the store, if it would
        panel.refresh()   # (gave up on the store after 30 s)
    panel._views.last.result(timeout=60)
    assert panel.table["seq"] == 3 and panel.table["sort"] == "metrics.m0"
    assert list(_rows(panel)["run_id"]) == list(every.sort_values("metrics.m0", kind="stable")["run_id"][:WINDOW])


def test_the_table_is_sent_before_the_sample_the_charts_draw_is_read(store, monkeypatch):
    """The runs the parallel and bar charts draw one by one are a random sample, whose rows lie all over
    the store (at 10^6 runs, reading them was 0.6 s of the first table's 1.5 s). The panel is made with
    its table while that read is still going; a sort meanwhile interrupts it and is answered; then the
    sample is read again and the axes are chosen from it, as the panel would have without paging."""
    every = nbtrack.runs(store=store)
    # the first read is the table's window; the second, on the charts' thread, the sample's
    reading, calls = _stand_in_read(monkeypatch, queries, "runs_frame", nth=2)
    panel = nbtrack.compare(store=store, paged=True)
    try:
        assert list(_rows(panel)["run_id"]) == list(every["run_id"][:WINDOW])
        assert reading.wait(30), "the sample was not read on the charts' thread"
        assert panel.specs == {} and panel.x is None   # nothing drawn from a sample not read yet
        _ask(panel, type="view", sort="metrics.m1", desc=True)
        top = every.sort_values(["metrics.m1", "started_at"], ascending=[False, True], kind="stable")
        assert list(_rows(panel)["run_id"]) == list(top["run_id"][:WINDOW])
        assert _until(lambda: panel.specs and panel._specs_key == panel._charts_key()), "charts never drawn"
        sampled = set(panel._view.sampled)
        assert calls[1][1]["ids"] == sorted(sampled) and len(sampled) == 300   # the read given up
        expected = chart_data.defaults(chart_data.chart_frame(every), panel._key_counts)
        assert (panel.x, panel.y, panel.color) == (expected["x"], expected["y"], expected["color"])
        title = panel.specs["parallel"]["title"]
        assert title["subtitle"] == "a random sample of 300 of 300 runs, and the selected ones"
    finally:
        panel.close()


def test_a_paged_panel_checks_the_axes_it_is_given_against_every_column_of_its_view(store):
    with pytest.raises(KeyError, match="no column 'params.nope'"):
        nbtrack.compare(store=store, paged=True, x="params.nope")
    panel = nbtrack.compare(store=store, paged=True, x="params.p2", y="metrics.m0")
    try:
        _specs(panel)
        assert (panel.x, panel.y) == ("params.p2", "metrics.m0")
        with pytest.raises(KeyError, match="no column 'metrics.nope'"):
            panel.y = "metrics.nope"
        assert panel.y == "metrics.m0"
    finally:
        panel.close()


def test_clearing_a_filter_shows_every_run_without_reading_them_again_until_runs_change(tmp_path, monkeypatch):
    """The view's runs without a filter are kept beside the last filter's: clearing the filter box does not
    read every run again (at 10^6 runs: the first rows after 350 ms instead of ~60). A run written since is
    in the view once the panel refreshes, filter or none."""
    path = tmp_path / "runs.duckdb"
    make_runs(path, 40, n_params=3, n_metrics=2)
    real, reads = paging.view_rows, []
    monkeypatch.setattr(paging, "view_rows", lambda *a, **kw: reads.append(a[2:]) or real(*a, **kw))
    p = nbtrack.compare(store=path, paged=True)
    try:
        every = nbtrack.runs(store=path)
        assert len(reads) == 1 and list(_rows(p)["run_id"]) == list(every["run_id"])
        _ask(p, type="view", filter="params.p1 > 5")
        assert len(reads) == 2 and 0 < p.table["total"] < 40
        _ask(p, type="view", filter="")
        assert len(reads) == 2 and p.table["total"] == 40 and list(_rows(p)["run_id"]) == list(every["run_id"])
        _ask(p, type="view", filter="params.p1 > 6")   # another filter: read; the unfiltered runs still kept
        _ask(p, type="view", filter=" ")
        assert len(reads) == 3 and p.table["total"] == 40

        with nbtrack.run("late", params={"p1": 9.5}, store=path):
            pass
        p.refresh()
        _ask(p, type="view", filter="params.p1 > 9")
        late = nbtrack.runs(store=path, where="params.p1 > 9")
        assert "late" in set(late["name"]) and list(_rows(p)["run_id"]) == list(late["run_id"])
        _ask(p, type="view", filter="")
        assert p.table["total"] == 41 and list(_rows(p)["run_id"]) == list(nbtrack.runs(store=path)["run_id"])
    finally:
        p.close()
