"""The compare panel in a real browser: JupyterLab on 127.0.0.1, Debian's headless Chromium driven by
Playwright, notebooks/compare.ipynb executed from the page.

Only this proves the front end works: nbval and nbclient never run the widget's JavaScript.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from helpers import ROOT, make_runs

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    if os.environ.get("NBTRACK_REQUIRE_BROWSER"):
        raise RuntimeError("chromium is not installed: apt-get install -y chromium (.ci/run does)")
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]
TOKEN = "nbtrack-e2e"
ARTIFACTS = Path(os.environ.get("NBTRACK_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
KERNEL_READY = """() => { const k = window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel;
    return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""
N_BIG = 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    for d in ("nb", "cfg", "ws", "settings"):
        (root / d).mkdir()
    # Notebook 7 (the notebook package, served by the same server) exposes its app to the page as Lab does
    (root / "cfg" / "jupyter_server_config.json").write_text(json.dumps(
        {"JupyterNotebookApp": {"expose_app_in_browser": True}}))
    (root / "settings" / "overrides.json").write_text(json.dumps(
        {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}))
    nb = nbformat.read(ROOT / "notebooks" / "compare.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, root / "nb" / "compare.ipynb")
    nbformat.write(nb, root / "nb" / "notebook7.ipynb")
    make_runs(root / "big" / "runs.duckdb", N_BIG)
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "cfg"), NBTRACK_STORE=str(root / "unused.duckdb"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root / 'nb'}",
         f"--LabApp.workspaces_dir={root / 'ws'}", f"--LabApp.app_settings_dir={root / 'settings'}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except Exception:
                if proc.poll() is not None:
                    raise RuntimeError((root / "lab.log").read_text()[-3000:])
                time.sleep(0.25)
        yield {"url": url, "root": root}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)   # our own process group (start_new_session=True)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        pg.errors, pg.dialogs = [], []
        pg.stacks = []
        pg.on("pageerror", lambda e: (pg.errors.append(str(e)), pg.stacks.append(e.stack or "")))
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        yield pg
        browser.close()


def _run_in_new_cell(page, code: str, run: bool = True) -> None:
    """Type code into a new cell at the end of the notebook and run it."""
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")                    # new cell below, in command mode
    page.keyboard.press("Enter")                # edit it
    page.keyboard.insert_text(code)
    if run:
        page.keyboard.press("Shift+Enter")


def _last_output(page):
    return page.locator(".jp-Notebook .jp-Cell").nth(-2).locator(".jp-OutputArea-output")


def _plain_cell_ms(page, times: int = 3) -> int:
    """The baseline for the panel's round trips, measured in the same run: a plain cell through the same
    page and kernel, from Shift+Enter to its output in the page (the median of ``times``). Both ends are
    taken in the page, as the panel takes its own, so the figure holds no Playwright polling."""
    took = []
    for i in range(times):
        _run_in_new_cell(page, f"print('plain', {i} + 1)", run=False)
        page.evaluate("""want => {
            const cell = document.querySelector('.jp-Notebook .jp-Cell.jp-mod-active');
            const t = window.__nbtPlain = {};
            const pressed = e => {
                if (e.key !== 'Enter' || !e.shiftKey) return;
                t.sent = performance.now();
                document.removeEventListener('keydown', pressed, true);
            };
            document.addEventListener('keydown', pressed, true);
            new MutationObserver((_, seen) => {
                const out = cell.querySelector('.jp-OutputArea-output');
                if (out && out.textContent.includes(want)) { t.ms = performance.now() - t.sent; seen.disconnect(); }
            }).observe(cell, {childList: true, subtree: true, characterData: true});
        }""", f"plain {i + 1}")
        page.keyboard.press("Shift+Enter")
        took.append(page.wait_for_function("() => window.__nbtPlain.ms", timeout=30_000).json_value())
    return round(sorted(took)[len(took) // 2])


def test_panel_in_jupyterlab(lab, page):
    try:
        _check_panel(lab, page)
    finally:   # the page as it was at the end (or at the failure), for whoever reads the CI log
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-page.png"), full_page=True)


def _only_frames_of(stack: str, bundle: str) -> bool:
    """Whether every frame of a JavaScript stack that names a script is in ``bundle`` (a stack naming none
    is not: it could be anyone's)."""
    frames = [line for line in stack.splitlines()[1:] if "://" in line]
    return bool(frames) and all(bundle in f for f in frames)


def _run_compare_notebook(page, url):
    """Open the compare notebook at ``url``, run every cell, and wait for its panel: (panel, rows, points)."""
    page.goto(url)
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    panel = page.locator(".nbtrack-panel").first
    rows = panel.locator(".nbt-row")
    # 8 sweep runs, then the run tracked in a later cell appears in this already-open panel
    expect(rows).to_have_count(9, timeout=90_000)
    points = panel.locator(".nbt-chart svg .mark-symbol.role-mark path")
    expect(points).to_have_count(9, timeout=30_000)
    page.wait_for_function(KERNEL_READY, timeout=120_000)
    return panel, rows, points


def _check_panel(lab, page):
    panel, rows, points = _run_compare_notebook(page, f"{lab['url']}/lab/tree/compare.ipynb?token={TOKEN}&reset")
    # the notebook selected one run from Python: the row and the chart show it
    expect(panel.locator(".nbt-row.nbt-selected")).to_have_count(1, timeout=20_000)

    # a click on a point in the scatter selects that run in the table and in the kernel
    panel.locator(".nbt-clear").click()
    expect(panel.locator(".nbt-row.nbt-selected")).to_have_count(0)
    points.nth(2).click()
    expect(panel.locator(".nbt-row.nbt-selected")).to_have_count(1, timeout=10_000)
    clicked = panel.locator(".nbt-row.nbt-selected").get_attribute("data-run-id")
    _run_in_new_cell(page, "print('selected:', panel.selected)")
    expect(_last_output(page)).to_contain_text(f"selected: ['{clicked}']", timeout=30_000)

    # selecting table rows reaches the kernel too; ctrl-click adds a second run
    rows.nth(0).click()
    rows.nth(1).click(modifiers=["Control"])
    expect(panel.locator(".nbt-row.nbt-selected")).to_have_count(2)
    first, second = (rows.nth(i).get_attribute("data-run-id") for i in (0, 1))
    _run_in_new_cell(page, "print('picked:', sorted(panel.selected), len(panel.selected_runs))")
    expect(_last_output(page)).to_contain_text(f"picked: {sorted([first, second])} 2", timeout=30_000)

    # Python -> page: setting the selection highlights it in the table
    _run_in_new_cell(page, "panel.selected = list(panel.runs.run_id[-3:])")
    expect(panel.locator(".nbt-row.nbt-selected")).to_have_count(3, timeout=30_000)
    # the README's picture of the panel (`make screenshot` copies it to docs/panel.png)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "compare-panel-readme.png"))

    # every view draws: parallel coordinates, curves of the selected runs, bars, the diff
    panel.locator(".nbt-tab[data-tab=parallel]").click()
    expect(panel.locator(".nbt-chart svg .mark-line.role-mark path")).to_have_count(9, timeout=20_000)
    panel.locator(".nbt-tab[data-tab=curves]").click()
    expect(panel.locator(".nbt-chart[data-rendered=curves] svg .mark-line.role-mark path").first).to_be_visible(timeout=20_000)
    panel.locator(".nbt-tab[data-tab=bars]").click()
    expect(panel.locator(".nbt-chart[data-rendered=bars] svg .mark-rect.role-mark path").first).to_be_visible(timeout=20_000)
    panel.locator(".nbt-tab[data-tab=diff]").click()
    expect(panel.locator(".nbt-diff-table").first).to_contain_text("alpha", timeout=20_000)

    # sorting: ascending, descending, back to the run order
    headers = panel.locator(".nbt-hcell")
    alpha = [t.split(" ")[0] for t in headers.evaluate_all("els => els.map(e => e.title)")].index("params.alpha")
    alpha_of_first_row = rows.nth(0).locator(".nbt-cell").nth(alpha)
    headers.nth(alpha).click()
    expect(alpha_of_first_row).to_have_text("1.000e-4")
    headers.nth(alpha).click()
    expect(alpha_of_first_row).to_have_text("0.1")
    headers.nth(alpha).click()
    # columns: constant ones (experiment) are collapsed, shown on request, or picked one by one
    experiment = panel.locator(".nbt-hcell[title^='experiment ']")
    expect(experiment).to_have_count(0)
    panel.locator(".nbt-constant").click()
    expect(experiment).to_have_count(1)
    panel.locator(".nbt-constant").click()
    expect(experiment).to_have_count(0)
    panel.locator(".nbt-columns-button").click()
    panel.locator(".nbt-pick-col", has_text="experiment").locator("input").check()
    expect(experiment).to_have_count(1)
    panel.locator(".nbt-columns-button").click()

    # filtering
    panel.locator(".nbt-filter").fill("loss=hinge")
    expect(rows).to_have_count(4)
    panel.locator(".nbt-filter").fill("alpha>=")
    expect(panel.locator(".nbt-error")).to_contain_text("no value")
    panel.locator(".nbt-filter").fill("")
    expect(rows).to_have_count(9)

    # tidying from the panel: tag and star the selection, rename in place, delete with an undo, starred
    # runs first; each edit reaches the store (read back in the kernel) and Python's edits reach the page
    panel.locator(".nbt-clear").click()
    rows.nth(0).click()
    rows.nth(1).click(modifiers=["Control"])
    tagged = sorted(rows.nth(i).get_attribute("data-run-id") for i in (0, 1))
    message = panel.locator(".nbt-edit-message")
    panel.locator(".nbt-tag-input").fill("keep")
    panel.locator(".nbt-edits .nbt-tag").click()
    expect(message).to_have_text("tagged 2 runs", timeout=20_000)
    panel.locator(".nbt-edits .nbt-star").click()
    expect(message).to_have_text("starred 2 runs", timeout=20_000)
    expect(panel.locator(".nbt-row .nbt-c-starred", has_text="★")).to_have_count(2)
    _run_in_new_cell(page, "print('kept:', sorted(nbtrack.runs(where=\"tags = 'keep' and starred = true\").run_id))")
    expect(_last_output(page)).to_contain_text(f"kept: {tagged}", timeout=30_000)
    panel.locator(".nbt-starred-first").click()
    expect(rows.nth(8)).not_to_have_attribute("data-run-id", tagged[1])
    assert sorted(rows.nth(i).get_attribute("data-run-id") for i in (0, 1)) == tagged
    panel.locator(".nbt-starred-first").click()
    renamed = rows.nth(4).get_attribute("data-run-id")
    rows.nth(4).locator(".nbt-c-name").dblclick()
    panel.locator(".nbt-edit-field").fill("<b>renamed</b>")
    panel.locator(".nbt-edit-field").press("Enter")
    expect(panel.locator(f".nbt-row[data-run-id='{renamed}'] .nbt-c-name")).to_have_text("<b>renamed</b>",
                                                                                          timeout=20_000)
    gone = rows.nth(5).get_attribute("data-run-id")   # a plain click: this run alone is selected
    rows.nth(5).click()
    panel.locator(".nbt-edits .nbt-delete").click()
    expect(rows).to_have_count(8, timeout=20_000)
    expect(panel.locator(f".nbt-row[data-run-id='{gone}']")).to_have_count(0)
    panel.locator(".nbt-undo").click()
    expect(rows).to_have_count(9, timeout=20_000)
    _run_in_new_cell(page, f"nbtrack.note({tagged[0]!r}, 'from Python')\nprint('label:', nbtrack.get({renamed!r}).label)")
    expect(_last_output(page)).to_contain_text("label: <b>renamed</b>", timeout=30_000)
    expect(panel.locator(f".nbt-row[data-run-id='{tagged[0]}'] .nbt-c-note")).to_have_text("from Python",
                                                                                           timeout=30_000)
    assert panel.locator("b").count() == 0

    # a run tracked now, with a hostile name, appears in the open panel as text, never as HTML
    evil = "<img src=x onerror=alert(1)>"
    _run_in_new_cell(page, f"%%track {json.dumps(evil)} -e digits\nalpha = 0.5\nloss = 'hinge'\naccuracy = round(alpha * 1.5, 2)")
    expect(rows).to_have_count(10, timeout=30_000)
    expect(panel.locator(".nbt-table")).to_contain_text(evil)
    assert panel.locator("img").count() == 0
    panel.locator(".nbt-tab[data-tab=scatter]").click()
    expect(points).to_have_count(10, timeout=20_000)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "compare-panel.png"))

    # the check report and a chart shown with nbtrack's own Vega (no CDN) draw too
    cell = "%%track sq --check\nn = 10\ntotal = float(sum(range(n)))"
    _run_in_new_cell(page, cell)
    _run_in_new_cell(page, cell)
    expect(page.locator(".nbtrack-report .nbt-r-verdict").last).to_have_text("identical", timeout=30_000)
    _run_in_new_cell(page, "nbtrack.charts.show(nbtrack.charts.bars(experiment_runs := nbtrack.runs("
                           "experiment='digits'), metric='metrics.accuracy', group='params.loss'))")
    expect(page.locator(".nbtrack-chart[data-rendered=true] svg .mark-rect.role-mark path").last) \
        .to_be_visible(timeout=30_000)
    # vega-embed came apart from the widgets' own modules and was evaluated once for the page: the
    # panels above and this chart share it (js/vega_loader.js)
    assert page.locator(".nbtrack-panel .nbt-chart svg").count() >= 1
    assert page.evaluate("() => globalThis.__nbtrackVegaEmbed && globalThis.__nbtrackVegaEmbed.size") == 1

    _check_paged_panel(lab, page)

    assert page.dialogs == [], "a string from the store ran as code"
    assert page.errors == []


def _check_paged_panel(lab, page):
    """10,000 runs, past the size where the page gets every run: the table pages from the kernel,
    sorts and filters there (in the language of runs(where=...)), the scatter counts runs in a grid and
    a brush selects every run inside, in Python. Prints the paint and round-trip times, beside a plain
    cell's round trip through the same page (the baseline, measured in the same run).
    NBTRACK_E2E_BIG_STORE names another store to measure (`make bench-panel`: 1,000,000 runs)."""
    import nbtrack

    big = Path(os.environ.get("NBTRACK_E2E_BIG_STORE") or lab["root"] / "big" / "runs.duckdb")
    every = nbtrack.runs(store=big)
    n = len(every)
    before = page.locator(".nbtrack-panel").count()
    _run_in_new_cell(page, f"big = nbtrack.compare(store={str(big)!r})\nbig", run=False)
    t0 = time.perf_counter()
    page.keyboard.press("Shift+Enter")
    panel = page.locator(".nbtrack-panel").nth(before)
    expect(panel.locator(".nbt-row").first).to_be_visible(timeout=60_000)
    table_painted = time.perf_counter() - t0   # the charts come on their own thread, after the table
    expect(panel.locator(".nbt-chart[data-rendered=scatter] svg .mark-rect.role-mark path").nth(3)) \
        .to_be_visible(timeout=60_000)
    painted = time.perf_counter() - t0
    expect(panel.locator(".nbt-status")).to_contain_text(f"{n:,} runs (paged from the store)")
    expect(panel.locator(".nbt-chart")).to_contain_text(f"{n:,} runs counted in a grid")
    rows, table = panel.locator(".nbt-row"), panel.locator(".nbt-table")
    assert rows.count() < 100   # virtualised: only the visible rows exist
    plain_ms = _plain_cell_ms(page)

    # the end of the table: rows the page did not have, asked for and drawn
    table.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(panel.locator(f".nbt-row[data-run-id='{every['run_id'].iloc[-1]}']")).to_be_visible(timeout=20_000)
    scroll_ms = int(panel.get_attribute("data-round-trip-ms"))

    # a sort by a metric, in the kernel: the largest value first, whatever the page held. What the page
    # must show is worked out first: this process reading the store (or sorting 10^6 rows) meanwhile
    # would hold it (or the CPU) while the kernel answers, and be timed as part of the round trip
    top = every.sort_values("metrics.m0", ascending=False, kind="stable")["run_id"].iloc[0]   # ties: oldest
    where = "metrics.m1 > 0.5 and metrics.m2 < 0.5"
    shown = len(nbtrack.runs(store=big, where=where))
    header = panel.locator(".nbt-hcell[title^='metrics.m0 ']")
    header.click()
    header.click()
    expect(rows.first).to_have_attribute("data-run-id", top, timeout=20_000)
    sort_ms = int(panel.get_attribute("data-round-trip-ms"))

    # the filter box speaks the language of nbtrack.runs(where=...)
    panel.locator(".nbt-filter").fill(where)
    expect(panel.locator(".nbt-status")).to_contain_text(f"{shown:,} shown", timeout=20_000)
    filter_ms = int(panel.get_attribute("data-round-trip-ms"))
    panel.locator(".nbt-filter").fill("params.p1 >")
    expect(panel.locator(".nbt-error")).to_contain_text("could not parse filter", timeout=20_000)
    panel.locator(".nbt-filter").fill("")
    expect(panel.locator(".nbt-status")).not_to_contain_text("shown", timeout=20_000)
    expect(panel.locator(".nbt-chart")).to_contain_text(f"{n:,} runs counted in a grid", timeout=30_000)

    # a brush on the grid: every run inside is selected in the kernel, only a count reaches the page
    chart = panel.locator(".nbt-chart svg").first
    box = chart.bounding_box()
    page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.6 * box["height"], steps=8)
    page.mouse.up()
    expect(panel.locator(".nbt-selinfo")).to_contain_text("selected", timeout=20_000)
    count = int(panel.locator(".nbt-selinfo").inner_text().split()[0])
    _run_in_new_cell(page, "print('brushed:', len(big.selected), len(set(big.selected)))")
    expect(_last_output(page)).to_contain_text(f"brushed: {count} {count}", timeout=30_000)
    assert 0 < count < n
    # a click on a row selects that run alone, in the kernel too
    rows.nth(2).click()
    expect(panel.locator(".nbt-selinfo")).to_have_text("1 selected", timeout=20_000)
    clicked = rows.nth(2).get_attribute("data-run-id")
    _run_in_new_cell(page, "print('clicked:', big.selected)")
    expect(_last_output(page)).to_contain_text(f"clicked: ['{clicked}']", timeout=30_000)
    panel.screenshot(path=str(ARTIFACTS / "compare-panel-10k.png"))
    print(f"\n{n:,} runs, paged: executing nbtrack.compare() to the table painted {table_painted:.2f} s "
          f"(target <= 2 s), the binned scatter too {painted:.2f} s; round trips drawn: scroll "
          f"{scroll_ms} ms, sort {sort_ms} ms, filter {filter_ms} ms (target <= 300 ms); the baseline, "
          f"a plain cell through the same page: {plain_ms} ms (scroll {scroll_ms / plain_ms:.1f}x, "
          f"sort {sort_ms / plain_ms:.1f}x, filter {filter_ms / plain_ms:.1f}x)")


def test_panel_toolbar_and_report_in_notebook_7(lab, page):
    """The same notebook in Notebook 7 (the notebook package): users open notebooks in both.

    Notebook 7.6 throws uncaught errors of its own, whose every stack frame is in its core bundle:
    ``Cannot read properties of undefined (reading 'schema')`` on every page before any cell runs (its
    keyboard-shortcuts plugin reads the settings of ``@jupyterlab/shortcuts-extension:shortcuts`` before
    they load; /tree, with no notebook, throws it too), and ``Command 'filebrowser:open-path' not
    registered`` when JupyterLab has used the same server before (its file browser restores a path
    JupyterLab saved, with a command the notebook page lacks). Those are not nbtrack's; any error with
    a frame anywhere else (the widget manager, anywidget, the panel's code) fails the test."""
    try:
        panel, rows, points = _run_compare_notebook(page, f"{lab['url']}/notebooks/notebook7.ipynb?token={TOKEN}")
        panel.locator(".nbt-clear").click()
        points.nth(2).click()
        expect(panel.locator(".nbt-row.nbt-selected")).to_have_count(1, timeout=10_000)
        clicked = panel.locator(".nbt-row.nbt-selected").get_attribute("data-run-id")
        panel.locator(".nbt-tag-input").fill("nb7")
        panel.locator(".nbt-edits .nbt-tag").click()
        expect(panel.locator(".nbt-edit-message")).to_have_text("tagged 1 run", timeout=20_000)
        _run_in_new_cell(page, "print('tagged:', list(nbtrack.runs(where=\"tags = 'nb7'\").run_id), panel.selected)")
        expect(_last_output(page)).to_contain_text(f"tagged: ['{clicked}'] ['{clicked}']", timeout=30_000)
        cell = "%%track sq --check\nn = 10\ntotal = float(sum(range(n)))"
        _run_in_new_cell(page, cell)
        _run_in_new_cell(page, cell)
        expect(page.locator(".nbtrack-report .nbt-r-verdict").last).to_have_text("identical", timeout=30_000)
        assert page.dialogs == []
        ours = [stack for stack in page.stacks if not _only_frames_of(stack, "/static/notebook/notebook_core.")]
        assert ours == [], ours
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "notebook7-page.png"), full_page=True)


def test_panel_on_a_team_store_in_jupyterlab(lab, page, tmp_path):
    """The same panel, drawn from a DuckLake team store with a PostgreSQL catalog."""
    from pgcluster import Cluster, server_bin

    from nbtrack.errors import StoreError
    from nbtrack.store import ducklake

    try:
        missing = None if server_bin() else "PostgreSQL server binaries"
        ducklake._Extensions().files(["postgres", "ducklake"])
    except StoreError as e:
        missing = str(e)
    if missing:
        if os.environ.get("NBTRACK_REQUIRE_TEAM") == "1":
            raise RuntimeError(f"the team store cannot be tested: {missing}")
        pytest.skip(missing)
    import nbtrack
    from nbtrack.recorder.sync import syncer
    from nbtrack.store import Store

    cluster = Cluster()
    try:
        url = cluster.url(cluster.new_database())
        store = Store(url, data_path=tmp_path / "lake")
        for i, who in enumerate(["ana", "ben", "ana"]):
            with nbtrack.run("fit", params={"lr": 0.1 * (i + 1), "who": who}, store=store) as r:
                r.log(accuracy=0.5 + i / 10)
        syncer.flush()
        # a notebook of its own: in a long one JupyterLab hides the editors of off-screen cells
        template = nbformat.read(ROOT / "notebooks" / "compare.ipynb", as_version=4)
        nb = nbformat.v4.new_notebook(metadata=template.metadata,
                                      cells=[nbformat.v4.new_code_cell("import nbtrack")])
        nbformat.write(nb, lab["root"] / "nb" / "team.ipynb")
        page.goto(f"{lab['url']}/lab/tree/team.ipynb?token={TOKEN}&reset")
        _run_in_new_cell(page, f"import nbtrack\nnbtrack.compare(store={url!r}, color='params.who')")
        panel = page.locator(".nbtrack-panel").first
        expect(panel.locator(".nbt-row")).to_have_count(3, timeout=60_000)
        expect(panel.locator(".nbt-chart svg .mark-symbol.role-mark path")).to_have_count(3, timeout=30_000)
        expect(panel.locator(".nbt-table")).to_contain_text("ben")
        assert "s3cret" not in panel.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        panel.screenshot(path=str(ARTIFACTS / "compare-panel-team.png"))
        assert page.errors == []
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-team-page.png"), full_page=True)
        cluster.destroy()
