"""The package's layers, checked: every module imports only modules of its own layer or the layers below,
counting imports inside functions too (a lazy import is still a dependency). The layers, top to bottom:

    entry     nbtrack/__init__.py and charts.py (the public facade), __main__.py, cli*.py
    kernel    kernel/      IPython glue: magics, options, cell hooks, streams, sweeps, --check, summary
    repro     repro/       checks, causes, reports, diffs, lineage, export and reproduce
    widgets   widgets/     the anywidget panels
    charts    plots.py, chart_data.py, inline.py, markdown.py   plain Altair charts and the Markdown report, no widget code
    api       api.py, curate.py, diff.py, formats.py   the public Python API, edits, run diffs, export formats
    recorder  recorder/    one run's lifecycle and capture, independent of IPython
    store     store/       file and team stores, spool, importer, queries: all the SQL
    base      errors.py, secrets.py, version.py, retry.py: imported by everyone, importing nothing above
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
LAYERS = ["base", "store", "recorder", "api", "charts", "widgets", "repro", "kernel", "entry"]
PLACES = {   # module name prefix -> layer; the longest prefix wins
    "nbtrack": "entry", "nbtrack.__main__": "entry", "nbtrack.cli": "entry", "nbtrack.cli_common": "entry",
    "nbtrack.cli_edit": "entry",
    "nbtrack.kernel": "kernel", "nbtrack.repro": "repro", "nbtrack.widgets": "widgets",
    "nbtrack.charts": "entry", "nbtrack.plots": "charts", "nbtrack.chart_data": "charts", "nbtrack.inline": "charts", "nbtrack.markdown": "charts", "nbtrack.api": "api", "nbtrack.diff": "api",
    "nbtrack.formats": "api", "nbtrack.curate": "api",
    "nbtrack.recorder": "recorder", "nbtrack.store": "store",
    "nbtrack.errors": "base", "nbtrack.secrets": "base", "nbtrack.version": "base", "nbtrack.retry": "base",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in (SRC / "nbtrack").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


def _layer(module: str) -> str:
    best = max((p for p in PLACES if module == p or module.startswith(p + ".")), key=len)
    return PLACES[best]


def _imports(module: str, path: Path, package: bool, known: set[str]) -> set[str]:
    """Every nbtrack module ``module`` imports, wherever the import statement is."""
    here = module if package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "nbtrack"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "nbtrack":
                continue
            for alias in node.names:   # "from . import api" imports the module nbtrack.api
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return found - {module}


def upward_imports() -> set[tuple[str, str]]:
    modules = _modules()
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = set()
    for module, (path, package) in modules.items():
        for target in _imports(module, path, package, set(modules)):
            if rank[_layer(target)] > rank[_layer(module)]:
                bad.add((module, target))
    return bad


def test_every_module_has_a_layer():
    assert all(_layer(m) in LAYERS for m in _modules())


def test_imports_point_down_the_layers():
    upward = sorted(upward_imports())
    assert not upward, "upward imports (a module may import its own layer and those below): " + ", ".join(
        f"{a} ({_layer(a)}) -> {b} ({_layer(b)})" for a, b in upward)


def test_no_module_imports_a_private_name_of_another():
    """A name with a leading underscore is its module's own business: another module that needs it gets a
    public name for it (the reader can then trust that ``_x`` is used in its file only)."""
    found = []
    for module, (path, package) in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("nbtrack")):
                found += [f"{module}: from {'.' * node.level}{node.module or ''} import {a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def test_process_state_is_one_object_that_resets_in_one_call(tmp_path):
    import nbtrack
    from nbtrack.recorder.session import session

    with nbtrack.run("one", store=tmp_path / "runs.duckdb") as r:
        assert session.active and session.active[-1].run_id == r.run_id
    assert session.last_run_id == r.run_id and nbtrack.last().run_id == r.run_id
    session.reset()
    assert session.last_run_id is None and session.active == [] and session.recent == {}
    with pytest.raises(nbtrack.NbtrackError, match="no run has been recorded"):
        nbtrack.last()


@pytest.mark.parametrize("module, target, expected", [
    ("nbtrack.store.queries", "nbtrack.api", True), ("nbtrack.api", "nbtrack.store.queries", False),
    ("nbtrack.errors", "nbtrack.store", True), ("nbtrack.kernel.cell", "nbtrack.repro.check", False),
])
def test_the_check_tells_up_from_down(module, target, expected):
    rank = {name: i for i, name in enumerate(LAYERS)}
    assert (rank[_layer(target)] > rank[_layer(module)]) is expected


def test_one_retry_helper_backs_off_on_what_it_is_told_and_gives_up_with_the_error():
    from nbtrack.retry import retry

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("busy")
        return "done"

    assert retry(flaky, when=lambda e: isinstance(e, TimeoutError), attempts=5, delay=0.001) == "done"
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(TimeoutError):   # out of attempts: the last error, as it was
        retry(flaky, when=lambda e: True, attempts=2, delay=0.001)
    assert len(calls) == 2
    with pytest.raises(ValueError):     # an error it was not told to retry: at once
        retry(lambda: calls.append(1) or int("x"), when=lambda e: isinstance(e, TimeoutError), timeout=5)


def test_both_stores_offer_the_written_interface_with_the_same_signatures(tmp_path):
    import inspect

    from nbtrack.store import Store, StoreInterface

    stores = [Store(tmp_path / "runs.duckdb"),
              Store("ducklake:postgres:dbname=x host=127.0.0.1 port=1", data_path=str(tmp_path / "lake"))]
    assert [type(s).__name__ for s in stores] == ["FileStore", "TeamStore"]   # made, never connected
    methods = [n for n, v in vars(StoreInterface).items() if callable(v) and not n.startswith("_")]
    assert {"connect", "sync", "exists", "signature", "write", "child_env"} <= set(methods)
    for store in stores:
        assert isinstance(store, StoreInterface)
        for name in methods:
            want = list(inspect.signature(getattr(StoreInterface, name)).parameters)[1:]
            assert list(inspect.signature(getattr(store, name)).parameters) == want, (type(store).__name__, name)
