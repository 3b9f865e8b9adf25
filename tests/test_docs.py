"""The README and docs/ document every command, option and public name, and the module map is the tree."""
from __future__ import annotations

import re

import click

import nbtrack
from nbtrack.cli import main
from nbtrack.kernel.options import PARSER

from helpers import ROOT, documentation

README = "\n".join(documentation().values())   # the README and docs/, as one text


CODE_LINES = [line for block in re.findall(r"```\w*\n(.*?)```", README, re.S) for line in block.splitlines()]


def _names_option(text: str, opt: str) -> bool:
    # the option as a word of its own: "-e" inside "pip install -e ." or "--tag" inside "--tags" is not it
    return re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text) is not None


def test_every_cli_command_and_option_is_documented():
    """Each command has a synopsis line in a code block (``nbtrack NAME ...``) that shows each option."""
    for name, command in main.commands.items():
        synopsis = [line for line in CODE_LINES if re.match(rf"\s*nbtrack {name}\b", line)]
        assert synopsis, f"no synopsis line for nbtrack {name}"
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "store_path":
                assert any(_names_option(line, opt) for opt in param.opts for line in synopsis), (name, param.opts)


def test_the_track_synopsis_is_the_parsers():
    """The ``%%track`` synopsis in the guide shows every option the parser takes and no other, and each
    has its own bullet; `%%track?` prints the parser's own help, so the two cannot drift."""
    guide = (ROOT / "docs" / "guide.md").read_text()
    synopsis = re.search(r"```\n(%%track \[NAME\].*?)```", guide, re.S).group(1)
    written = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", synopsis))
    actions = [a for a in PARSER._actions if a.option_strings and a.dest != "help"]
    assert written <= {opt for a in actions for opt in a.option_strings}, "the synopsis shows an option the parser lacks"
    section = guide[guide.index("## Tracking cells"):guide.index("### What a run records")]
    bullets = [line for line in section.splitlines() if line.startswith("- `")]
    for action in actions:
        assert written & set(action.option_strings), f"{action.option_strings} missing from the synopsis"
        assert any(_names_option(line, opt) for opt in action.option_strings for line in bullets), \
            f"no bullet explains {action.option_strings}"


def test_every_public_name_is_documented():
    for name in nbtrack.__all__:
        if name != "__version__":
            assert re.search(rf"(nbtrack\.|`){re.escape(name)}\b", README), name


def test_the_version_is_written_once_and_the_package_reports_it():
    from importlib.metadata import version

    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()   # hatch reads version.py
    assert version("nbtrack") == nbtrack.__version__


def test_every_chart_and_panel_member_is_documented():
    from nbtrack import charts
    from nbtrack.widgets import ComparePanel

    for name in ("scatter", "parallel", "curves", "bars", "curve_points"):
        assert name in charts.__all__ and f"charts.{name}(" in README, name
    for name in ("selected", "selected_runs", "observe", "runs", "refresh", "save", "close", "paged"):
        assert hasattr(ComparePanel, name) and f"panel.{name}" in README, name
    signature = ("nbtrack.compare(runs=None, *, experiment=None, where=None, x=None, y=None, color=None, store=None, "
                 "paged=None)")
    assert signature in README.replace("\n", " ").replace("`", "")


def test_the_readme_is_a_front_door_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name


def test_every_image_and_page_the_docs_link_to_is_in_the_tree():
    for name, text in documentation().items():
        base = (ROOT / name).parent
        for target in re.findall(r"\]\(([^)#\s]+)\)", text):
            if not re.match(r"\w+://", target):
                assert (base / target).is_file(), f"{name} links to {target}, which is not in the tree"


def test_the_module_map_names_every_module_and_nothing_else():
    text = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^\| `([\w/]+\.py)` \|", text, re.M))
    tree = {str(p.relative_to(ROOT / "src" / "nbtrack")) for p in (ROOT / "src" / "nbtrack").rglob("*.py")}
    assert mapped == tree, {"not in the map": sorted(tree - mapped), "not in the tree": sorted(mapped - tree)}
    mapped_js = set(re.findall(r"^\| `(js/[\w.]+)` \|", text, re.M))
    tree_js = {f"js/{p.name}" for p in (ROOT / "js").glob("*") if p.suffix in (".js", ".mjs")}
    assert mapped_js == tree_js, {"not in the map": sorted(tree_js - mapped_js), "not in js/": sorted(mapped_js - tree_js)}
