"""Real kernels: tracked notebooks look exactly like untracked ones; interrupts and kill -9 are recorded."""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

import nbtrack

pytestmark = pytest.mark.slow
MIME = "application/vnd.nbtrack.run+json"

CELLS = [
    "x = 1\nprint('hi')\nx + 1",
    "from IPython.display import display, HTML, Markdown\ndisplay(HTML('<b>x</b>'))\ndisplay(Markdown('*y*'))",
    "import asyncio\nawait asyncio.sleep(0.01)\n'awaited'",
    "%load_ext autoreload\nfiles = !echo captured\n!echo shell-out\nfiles",
    "# a cell with nothing to run",
    "z = _\nz",
    "import sys\nprint('to stderr', file=sys.stderr)",
    "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})\ndf",
    "def f():\n    raise ValueError('boom')\nf()",
    "x = (",
    "raise KeyboardInterrupt",
    "lr = 0.1\nacc = round(lr * 7, 3)\nacc",
    "del z\nsorted(k for k in globals() if not k.startswith('_'))",
    # found in real notebooks: a progress cell that ends by clearing (with wait=True, the output
    # stays until the next output would replace it), display_id updates, a formatter that raises,
    # and a background thread that prints while the cell runs
    "from IPython.display import clear_output\nprint('step 1')\nclear_output(wait=True)\nprint('step 2')\n"
    "clear_output(wait=True)",
    "handle = display('first', display_id=True)\nhandle.update('second')\ndisplay('other', display_id='fixed')",
    "from IPython.display import update_display\nupdate_display('changed', display_id='fixed')",
    "class Bad:\n    def __repr__(self):\n        return 'Bad()'\n    def _repr_html_(self):\n        raise ValueError('bad formatter')\nBad()",
    "import threading, time\nt = threading.Thread(target=lambda: print('from a thread'))\nt.start(); t.join()\n"
    "time.sleep(0.1)",
    # text still waiting in the kernel's stream buffer when the cell ends: shown before the summary
    "print('no newline yet', end='')",
    "import sys\nsys.stderr.write('half a line')",
]
CLEARS = {CELLS.index(c) for c in CELLS if c.rstrip().endswith("clear_output(wait=True)")}


def _execute(cells: list[str], cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    NotebookClient(nb, kernel_name="python3", allow_errors=True, store_widget_state=False, timeout=120,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _visible(output: dict) -> dict:
    out = {k: v for k, v in output.items() if k not in ("traceback",)}
    if "evalue" in out:  # a SyntaxError names the cell's file, and its line counts the %%track line
        out["evalue"] = re.sub(r"\(\S+\.py, line \d+\)", "(cell)", out["evalue"])
    if "data" in out:
        out["data"] = {k: v for k, v in out["data"].items() if k != MIME}
    return out


def test_tracked_notebook_outputs_match_the_untracked_notebook(tmp_path):
    plain = _execute(["%load_ext nbtrack"] + CELLS, tmp_path)
    tracked = _execute(["%load_ext nbtrack"] + ["%%track\n" + c for c in CELLS], tmp_path)
    for index, (cell_plain, cell_tracked, source) in enumerate(zip(plain.cells[1:], tracked.cells[1:], CELLS)):
        outs_tracked = [o for o in cell_tracked.outputs if MIME not in o.get("data", {})]
        summaries = [o for o in cell_tracked.outputs if MIME in o.get("data", {})]
        assert cell_plain.execution_count == cell_tracked.execution_count, source
        assert [_visible(o) for o in cell_plain.outputs] == [_visible(o) for o in outs_tracked], source
        # no summary where it would trigger a pending clear and wipe what the cell left on screen
        assert len(summaries) == (0 if index in CLEARS else 1), source
        if summaries:   # after everything the cell showed, streams included
            assert cell_tracked.outputs[-1] == summaries[0], source
        for plain_out, tracked_out in zip(cell_plain.outputs, outs_tracked):
            if plain_out.output_type == "error":
                tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(tracked_out.traceback))
                assert "nbtrack" not in tb.replace("%%track", ""), tb
                if plain_out.evalue == "boom":
                    # the cell's own lines, numbered as the user sees them (line 1 is %%track)
                    assert "raise ValueError('boom')" in tb and "----> 4 f()" in tb
    frame = nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb")
    assert len(frame) == len(CELLS)
    statuses = frame["status"].tolist()
    assert statuses.count("failed") == 3 and statuses.count("interrupted") == 1, frame.filter(regex="status|error").to_string()
    assert frame["metrics.acc"].dropna().tolist() == [0.7]


def _kernel(cwd: Path, env: dict | None = None) -> tuple[KernelManager, object]:
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), env={**os.environ, **(env or {})})
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    kc.execute_interactive("%load_ext nbtrack", timeout=60)
    return km, kc


def test_run_status_agrees_with_the_kernels_reply(tmp_path):
    km, kc = _kernel(tmp_path)
    try:
        replies = [kc.execute_interactive("%%track\n" + cell, timeout=60, output_hook=lambda msg: None)
                   for cell in CELLS]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    frame = nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb").sort_values("started_at")
    expected = ["ok" if status == "finished" else "error" for status in frame["status"]]
    assert [r["content"]["status"] for r in replies] == expected
    assert "error" in expected and "ok" in expected


def test_interrupting_a_tracked_cell_records_it_as_interrupted(tmp_path):
    km, kc = _kernel(tmp_path)
    try:
        kc.execute_interactive("%%track warmup\nw = sum(range(10))", timeout=60)
        msg_id = kc.execute("%%track long\nimport time\nfor i in range(600):\n    time.sleep(0.05)")
        deadline = time.time() + 30
        while not list((tmp_path / ".nbtrack").glob("runs.duckdb.spool/run.*")) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        outputs = []
        kc.execute_interactive("import nbtrack\nr = nbtrack.last()\nprint(r.name, r.status, r.values)",
                               output_hook=outputs.append, timeout=60)
        text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
        assert "long interrupted" in text
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kill_9_mid_cell_keeps_finished_runs_and_marks_the_running_one_crashed(tmp_path):
    km, kc = _kernel(tmp_path)
    try:
        kc.execute_interactive("%%track before\nlr = 0.1\nacc = lr * 5", timeout=60)
        kc.execute("%%track victim\nopen('started', 'w').close()\nimport time\ntime.sleep(120)")
        deadline = time.time() + 30
        while not (tmp_path / "started").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "started").exists()
        time.sleep(0.2)
        pid = km.provisioner.process.pid
        os.kill(pid, signal.SIGKILL)
        km.provisioner.process.wait(timeout=30)
    finally:
        kc.stop_channels()
        km.cleanup_resources()
    frame = nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb")
    assert dict(zip(frame["name"], frame["status"])) == {"before": "finished", "victim": "crashed"}
    assert frame.loc[frame["name"] == "before", "metrics.acc"].item() == 0.5


def test_notebook_path_from_jupyter_server_names_the_experiment(tmp_path):
    notebook = tmp_path / "churn_model.ipynb"
    km, kc = _kernel(tmp_path, {"JPY_SESSION_NAME": str(notebook)})  # what jupyter-server sets
    try:
        kc.execute_interactive("%%track fit\nlr = 0.1", timeout=60)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    run = nbtrack.get(nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb").run_id[0],
                      store=tmp_path / ".nbtrack" / "runs.duckdb")
    assert run.experiment == "churn_model" and run.env["notebook"] == str(notebook)
    assert run.env["kernel_id"]


def test_a_kernel_killed_by_the_cells_first_statement_leaves_that_run_crashed(tmp_path):
    # the `running` record is on disk before the cell's code runs (before: written by a background
    # thread, which a kernel killed at once never got to)
    km, kc = _kernel(tmp_path)
    try:
        kc.execute("%%track instant\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        km.provisioner.process.wait(timeout=30)
    finally:
        kc.stop_channels()
        km.cleanup_resources()
    frame = nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb")
    assert dict(zip(frame["name"], frame["status"])) == {"instant": "crashed"}
