"""The README and docs/ document every command, option and public name, and the module map is the tree."""
from __future__ import annotations

import re

import click

import nbtrack
from nbtrack.cli import main
from nbtrack.kernel.options import PARSER

from helpers import ROOT, documentation

README = "\n".join(documentation().values())   # the README and docs/, as one text


def test_every_cli_command_and_option_is_documented():
    for name, command in main.commands.items():
        assert f"nbtrack {name}" in README, name
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "store_path":
                assert any(opt in README for opt in param.opts), (name, param.opts)


def test_every_track_option_is_documented():
    for action in PARSER._actions:
        for opt in action.option_strings or [action.dest.upper()]:
            assert opt in README, opt


def test_every_public_name_is_documented():
    for name in nbtrack.__all__:
        if name != "__version__":
            assert f"{name}" in README, name


def test_the_version_is_written_once_and_the_package_reports_it():
    from importlib.metadata import version

    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()   # hatch reads version.py
    assert version("nbtrack") == nbtrack.__version__


def test_every_chart_and_panel_member_is_documented():
    from nbtrack import charts
    from nbtrack.widgets import ComparePanel

    for name in ("scatter", "parallel", "curves", "bars", "curve_points"):
        assert name in charts.__all__ and f"charts.{name}(" in README, name
    for name in ("selected", "selected_runs", "observe", "runs", "refresh", "close"):
        assert hasattr(ComparePanel, name) and f"panel.{name}" in README, name
    signature = "nbtrack.compare(runs=None, *, experiment=None, where=None, x=None, y=None, color=None, store=None)"
    assert signature in README.replace("\n", " ").replace("`", "")


def test_the_readme_is_a_front_door_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name


def test_the_module_map_names_every_module_and_nothing_else():
    text = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^\| `([\w/]+\.py)` \|", text, re.M))
    tree = {str(p.relative_to(ROOT / "src" / "nbtrack")) for p in (ROOT / "src" / "nbtrack").rglob("*.py")}
    assert mapped == tree, {"not in the map": sorted(tree - mapped), "not in the tree": sorted(mapped - tree)}
    mapped_js = set(re.findall(r"^\| `(js/[\w.]+)` \|", text, re.M))
    tree_js = {f"js/{p.name}" for p in (ROOT / "js").glob("*") if p.suffix in (".js", ".mjs")}
    assert mapped_js == tree_js, {"not in the map": sorted(tree_js - mapped_js), "not in js/": sorted(mapped_js - tree_js)}
