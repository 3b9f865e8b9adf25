"""Notebooks the project did not write, run plain and with ``%%track`` on every code cell in a real
kernel, compared cell by cell: what the user sees is the same, and each run's status agrees with
the kernel's reply.

The corpus is the test notebooks shipped in nbclient's sdist, pinned by version and hash (``make
corpus`` fetches it from PyPI): they were written to exercise the awkward corners of notebook
output (clear_output with and without wait, display_id updates, widgets, comms, errors, unicode,
images)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import nbtrack

pytestmark = pytest.mark.slow
CORPUS = Path(__file__).resolve().parent.parent / "build" / "corpus" / "nbclient"
MIME = "application/vnd.nbtrack.run+json"
# left out, and why: each needs something a plain execution cannot give it
SKIP = {
    "Autokill.ipynb": "kills its own kernel",
    "Interrupt.ipynb": "loops until interrupted",
    "Disable Stdin.ipynb": "asks for input",
    "Parallel Execute A.ipynb": "runs only beside its twin, with an environment the test framework sets",
    "Parallel Execute B.ipynb": "runs only beside its twin, with an environment the test framework sets",
    "Sleep1s.ipynb": "prints the time",
    # with ipywidgets 8 nbclient waits out its whole timeout on two of its cells, plain or tracked (4 min)
    "Output.ipynb": "nbclient waits out its timeout on two cells, even untracked",
}

if not CORPUS.is_dir():
    if os.environ.get("NBTRACK_REQUIRE_CORPUS"):
        raise RuntimeError(f"the notebook corpus is missing from {CORPUS}: run `make corpus` (make test does)")
    pytest.skip("the notebook corpus is not fetched: run `make corpus`", allow_module_level=True)

NOTEBOOKS = sorted(p for p in CORPUS.glob("*.ipynb") if p.name not in SKIP)


def _run(nb: nbformat.NotebookNode, cwd: Path) -> list[str]:
    """Execute ``nb`` in place; the status of each code cell's execute_reply."""
    statuses: list[str] = []

    def executed(cell, cell_index, execute_reply):
        statuses.append(execute_reply["content"]["status"])

    NotebookClient(nb, kernel_name="python3", allow_errors=True, store_widget_state=True, timeout=120,
                   resources={"metadata": {"path": str(cwd)}}, on_cell_executed=executed).execute()
    return statuses


def _visible(output: dict) -> dict:
    out = {k: v for k, v in output.items() if k != "traceback"}
    if "data" in out:
        out["data"] = {k: v for k, v in out["data"].items() if k != MIME}
        view = out["data"].get("application/vnd.jupyter.widget-view+json")
        if view:   # a widget's model id is new in each kernel
            out["data"]["application/vnd.jupyter.widget-view+json"] = {**view, "model_id": "<id>"}
        if "text/plain" in out["data"]:
            out["data"]["text/plain"] = re.sub(r"0x[0-9a-f]+", "0x…", out["data"]["text/plain"])
    return out


def test_the_corpus_is_there():
    assert len(NOTEBOOKS) >= 12, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_tracked_notebook_looks_like_the_plain_one(path, tmp_path):
    source = nbformat.read(path, as_version=4)
    for f in path.parent.iterdir():   # the images and files the notebooks read
        if f.suffix != ".ipynb":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    plain = nbformat.from_dict(source)
    tracked = nbformat.from_dict(source)
    for cell in tracked.cells:
        if cell.cell_type == "code" and cell.source.strip():
            cell.source = "%%track\n" + cell.source
    load = nbformat.v4.new_code_cell("%load_ext nbtrack")
    plain.cells.insert(0, nbformat.from_dict(load))
    tracked.cells.insert(0, nbformat.from_dict(load))
    plain_status = _run(plain, tmp_path)[1:]
    tracked_status = _run(tracked, tmp_path)[1:]

    code_cells = [c for c in source.cells if c.cell_type == "code" and c.source.strip()
                  and "skip-execution" not in c.metadata.get("tags", [])]   # nbclient leaves those alone
    assert len(tracked_status) == len(code_cells) and plain_status == tracked_status
    for index, (a, b) in enumerate(zip(plain.cells[1:], tracked.cells[1:])):
        if a.cell_type != "code":
            continue
        shown = [o for o in b.outputs if MIME not in o.get("data", {})]
        assert [_visible(o) for o in a.outputs] == [_visible(o) for o in shown], f"cell {index}: {a.source}"

    # one run per code cell, each with the status the kernel replied
    frame = nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb").sort_values("started_at")
    assert ["ok" if s == "finished" else "error" for s in frame["status"]] == tracked_status
