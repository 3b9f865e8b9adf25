"""A comparison anyone can open without Python: ``panel.save`` and ``nbtrack report`` write one HTML file,
opened here from disk in Debian's Chromium with the network off."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nbtrack

from helpers import make_runs

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EVIL = "<img src=x onerror=alert(1)>"


def _store(path: Path) -> list[str]:
    ids = []
    for i in range(6):
        with nbtrack.run(EVIL if i == 5 else "fit", params={"lr": 0.1 * (i + 1), "model": "rf" if i % 2 else "gb"},
                         store=path) as r:
            for step in range(300):
                r.log(loss=1 / (step + 1) + i / 10)
            r.log(acc=0.5 + i / 20)
        ids.append(r.run_id)
    return ids


def _report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbtrack", "report", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=180)


def test_report_writes_one_self_contained_file(tmp_path):
    path = tmp_path / "runs.duckdb"
    ids = _store(path)
    nbtrack.rename(ids[0], "</script><script>alert(2)</script>", store=path)
    out = _report("--store", str(path), "--where", "params.lr < 0.45", "-o", "cmp.html", "--title", "Four <b>runs</b>",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(rf"wrote {re.escape(str(tmp_path / 'cmp.html'))}: 4 runs, 0\.\d MB; open it in a browser\n",
                        out.stdout), out.stdout
    text = (tmp_path / "cmp.html").read_text()
    assert "<title>Four &lt;b&gt;runs&lt;/b&gt;</title>" in text
    # the data cannot close its own <script>: a label holding "</script>" is written \u003c/script>
    assert text.count("</script>") == 2 and "\\u003c/script>\\u003cscript>alert(2)" in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)   # nothing loads from elsewhere
    assert "Content-Security-Policy\" content=\"default-src 'none'" in text
    panel = nbtrack.compare(ids[:2], store=path)
    saved = panel.save(tmp_path / "two.html")
    panel.close()
    assert saved == tmp_path / "two.html" and saved.stat().st_size < 1_500_000
    bad = _report("--store", str(path), "zzzz", "-o", "x.html", cwd=tmp_path)
    assert bad.returncode == 1 and "no run matches 'zzzz'" in bad.stderr and "Traceback" not in bad.stderr


def test_a_thousand_runs_with_curves_stay_under_three_megabytes(tmp_path):
    for n, limit in ((100, 2.5e6), (1000, 3e6)):
        store = make_runs(tmp_path / f"{n}.duckdb", n, n_params=15, n_metrics=15, curves=n, steps=2000)
        panel = nbtrack.compare(store=store)
        size = panel.save(tmp_path / f"{n}.html").stat().st_size
        panel.close()
        print(f"\n{n} runs x 30 params/metrics, each with a 2,000-step curve: {size / 1e6:.2f} MB")
        assert size < limit


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("NBTRACK_REQUIRE_BROWSER"),
                    reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_the_saved_page_works_from_disk_with_the_network_off(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    path = tmp_path / "runs.duckdb"
    ids = _store(path)
    assert _report("--store", str(path), "-o", "cmp.html", cwd=tmp_path).returncode == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 1000}, offline=True)
        requests, errors, dialogs = [], [], []
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                      else (requests.append(route.request.url), route.abort()))
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto((tmp_path / "cmp.html").as_uri())
        panel = page.locator(".nbtrack-panel")
        rows = panel.locator(".nbt-row")
        expect(rows).to_have_count(6, timeout=30_000)
        points = panel.locator(".nbt-chart svg .mark-symbol.role-mark path")
        expect(points).to_have_count(6, timeout=30_000)
        expect(panel.locator(".nbt-table")).to_contain_text(EVIL)          # text, never HTML
        assert page.locator("img").count() == 0
        # selection: rows, the chart and the diff agree, as in a notebook
        rows.nth(1).locator(".nbt-c-run_id").click()
        rows.nth(3).locator(".nbt-c-run_id").click(modifiers=["Control"])
        expect(panel.locator(".nbt-selinfo")).to_have_text("2 selected")
        points.nth(4).click()
        expect(panel.locator(".nbt-row.nbt-selected")).to_have_count(1)
        assert panel.locator(".nbt-row.nbt-selected").get_attribute("data-run-id") == ids[4]
        rows.nth(0).locator(".nbt-c-run_id").click(modifiers=["Control"])
        panel.locator(".nbt-tab[data-tab=curves]").click()
        expect(panel.locator(".nbt-chart[data-rendered=curves] svg .mark-line.role-mark path")).to_have_count(2)
        panel.locator(".nbt-tab[data-tab=diff]").click()
        expect(panel.locator(".nbt-diff-table").first).to_contain_text("lr")
        expect(panel.locator(".nbt-diff-table").first).to_contain_text("0.5")
        # filters, sorting and the other charts work without a kernel
        panel.locator(".nbt-filter").fill("lr>=0.35")
        expect(rows).to_have_count(3)
        panel.locator(".nbt-filter").fill("")
        panel.locator(".nbt-tab[data-tab=parallel]").click()
        expect(panel.locator(".nbt-chart svg .mark-line.role-mark path")).to_have_count(6, timeout=20_000)
        panel.locator(".nbt-tab[data-tab=bars]").click()
        expect(panel.locator(".nbt-chart[data-rendered=bars] svg .mark-rect.role-mark path").first).to_be_visible()
        assert panel.locator(".nbt-edits").is_hidden()   # no kernel: nothing to edit with
        page.screenshot(path=str(tmp_path / "saved-page.png"), full_page=True)
        browser.close()
    assert requests == [] and errors == [] and dialogs == []


def test_a_markdown_report_has_the_runs_what_differs_and_png_charts(tmp_path):
    path = tmp_path / "runs.duckdb"
    ids = _store(path)
    nbtrack.rename(ids[0], "base | line *1*", store=path)
    out = _report("--store", str(path), "--format", "md", "-o", "pr/report.md", "--title", "SGD <sweep>", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"wrote {tmp_path / 'pr' / 'report.md'}: 6 runs, 4 charts in report_files/\n"
    text = (tmp_path / "pr" / "report.md").read_text()
    assert text.startswith("# SGD &lt;sweep&gt;\n")
    assert "| run | status | lr | model | acc | loss |" in text
    assert f"| base \\| line \\*1\\* `{ids[0][:8]}` | finished | 0.1 | gb | 0.5 |" in text
    assert f"| &lt;img src=x onerror=alert\\(1\\)&gt; `{ids[5][:8]}` |" in text and "<img" not in text
    assert "- **lr**: 0.1, 0.2, 0.3, 0.4, 0.5, 0.6" in text and "- **acc** ranges from 0.5 to 0.75" in text
    for name in ("scatter", "parallel", "bars", "curves"):
        assert f"![{name}](report_files/{name}.png)" in text
        assert (tmp_path / "pr" / "report_files" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@given(st.text(max_size=80))
def test_markdown_text_stays_text_whatever_it_holds(value):
    """Through a real Markdown renderer (mistune, nbconvert's), store text never becomes a tag, a link,
    emphasis or a table cell break, and reads back as the text itself."""
    import html

    import mistune

    from nbtrack.markdown import text

    rendered = mistune.html(f"| a |\n|---|\n| {text(value)} |\n")
    cell = re.search(r"<td>(.*)</td>", rendered, re.S)
    assert cell is not None and cell.group(1).count("<") == 0, rendered
    assert html.unescape(cell.group(1)) == " ".join(value.split())
