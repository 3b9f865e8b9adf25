"""The %%track line means what the README says: values are exactly the literals written, sweeps are lazy
and bounded, and every %%track line the README shows runs as written."""
from __future__ import annotations

import re
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.errors import ParamValueError
from nbtrack.kernel.options import MAX_RUNS, combinations, count, parse_track_line

from helpers import ROOT, documentation
from strategies import same

# literals a person types: numbers, strings with quotes, commas, spaces, = and #, containers
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10) | \
    st.sampled_from(["a,b", "it's", 'say "hi"', "k=v", "a b", "#1", "(", "]", "\\", "--grid", "2", "True", ""])
LITERALS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(LITERALS)
def test_p_binds_exactly_the_literal_written(value):
    options = parse_track_line(f"fit -p k={value!r} -t tag")
    assert same(options.overrides["k"], value) and options.tags == ["tag"] and options.name == "fit"


@settings(max_examples=300, deadline=None)
@given(LITERALS, LITERALS)
def test_grid_runs_exactly_the_two_literals_in_order(a, b):
    options = parse_track_line(f"--grid k={a!r},{b!r}")
    values = list(combinations(options.grid))
    assert len(values) == 2 and same(values[0]["k"], a) and same(values[1]["k"], b)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(LITERALS, LITERALS)
def test_a_sweep_in_a_real_shell_records_a_then_b(ip, a, b):
    result = ip.run_cell(f"%%track gen --grid k={a!r},{b!r}\nk = None\nseen = repr(k)")
    assert result.success
    runs = nbtrack.last_sweep()
    assert len(runs) == 2
    got = [nbtrack.get(i).params["k"] for i in runs["run_id"]]
    assert same(got[0], a) and same(got[1], b)


@pytest.mark.parametrize("line, key, expected", [
    ("-p version='2'", "version", "2"),
    ("-p version=2", "version", 2),
    ("-p model=rf", "model", "rf"),
    ('-p "model=\'rf\'"', "model", "rf"),              # a whole option quoted, shell style
    ("-p layers=[64, 32]", "layers", [64, 32]),
    ("-p m={'a b': (1, 2)}", "m", {"a b": (1, 2)}),
])
def test_p_values(line, key, expected):
    assert same(parse_track_line(line).overrides[key], expected)


@pytest.mark.parametrize("line, key, expected", [
    ("--grid label='a,b','c'", "label", ["a,b", "c"]),
    ("--grid version='1','2'", "version", ["1", "2"]),
    ("--grid depth=range(2, 10, 2)", "depth", [2, 4, 6, 8]),
    ("--grid lr=logspace(-4, -1, 4)", "lr", [1e-4, 1e-3, 1e-2, 1e-1]),
    ("--grid m=rf,gb", "m", ["rf", "gb"]),
    ("--grid t=(1, 2),(3,)", "t", [(1, 2), (3,)]),
])
def test_grid_values(line, key, expected):
    values = list(parse_track_line(line).grid[key])
    assert len(values) == len(expected)
    for v, e in zip(values, expected):
        # logspace computes 10**x, which may be an ulp away from the literal; the rest are exact
        assert same(v, e) or (key == "lr" and v == pytest.approx(e, rel=1e-12)), (v, e)


@pytest.mark.parametrize("line, fragment", [
    ("-p x='abc", "never closed"),
    ("-p x=(1, 2", "never closed"),
    ("-p x=1)", "closes nothing"),
    ("--grid x=1,,2", "empty value"),
    ("--grid x=range(0, 5, 0)", "step other than 0"),
    ("-p 1x=2", "not a Python name"),
    ("fit -p x=a b", "unrecognized arguments"),
])
def test_bad_lines_name_the_problem(line, fragment):
    with pytest.raises(ParamValueError, match=re.escape(fragment)):
        parse_track_line(line)


def test_a_huge_grid_is_refused_before_anything_is_built():
    tracemalloc.start()
    with pytest.raises(ParamValueError, match=r"10,000,000,000 times .* over the limit of 10,000.*--max-runs"):
        parse_track_line("--grid a=range(100000) --grid b=range(100000)")
    options = parse_track_line("--grid a=range(10**8) --grid b=logspace(0, 1, 1000) --max-runs 100000000000")
    assert count(options.grid) == 10**11
    first = next(combinations(options.grid))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert first == {"a": 0, "b": 1.0} and peak < 10 << 20    # nothing expanded: no 800 MB list of a range
    assert MAX_RUNS == 10_000


def test_a_sweep_over_the_limit_is_one_line_and_the_cell_does_not_run(ip, capsys):
    result = ip.run_cell("%%track --grid x=range(20000)\nx = 0\nran = True")
    assert not result.success and "ran" not in ip.user_ns
    assert "over the limit of 10,000" in str(result.error_in_exec or result.error_before_exec)


def _readme_track_lines() -> list[str]:
    """Every %%track line of the code blocks of the README and docs/, except the usage synopsis."""
    lines, fenced = [], False
    for line in "\n".join(documentation().values()).splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced and line.startswith("%%track") and "[NAME]" not in line:
            lines.append(line)
    return lines


@pytest.mark.parametrize("line", _readme_track_lines())
def test_every_track_line_in_the_readme_runs_as_written(ip, line, capsys):
    """The README's own lines, verbatim (comments too), on a cell that has the literals they name."""
    options = parse_track_line(line.removeprefix("%%track"))
    keys = {*options.overrides, *options.grid, *([options.seed] if options.seed else []), "lr"}
    body = "\n".join(f"{k} = 0" for k in sorted(keys))
    body += "\nif lr > 1:\n    raise ValueError('diverged')\nloss = 1.0\n"
    result = ip.run_cell(f"{line}\n{body}")
    assert result.error_before_exec is None
    out = capsys.readouterr()
    assert "UsageError" not in out.out + out.err
    if options.sweep:
        failing = [c.get("lr", 0) > 1 for c in combinations(options.grid) for _ in range(options.repeat)]
        expected = failing.index(True) + 1 if options.fail_fast and any(failing) else len(failing)
        sweep = nbtrack.last_sweep()
        assert len(sweep) == expected
        assert (sweep["status"] == "failed").sum() == sum(failing[:expected])
    else:
        assert nbtrack.last().name == options.name


def test_the_readme_shows_the_track_lines_tested_here():
    lines = _readme_track_lines()
    assert any("range(2, 10, 2)" in line and "logspace(-4, -1, 4)" in line for line in lines)
    assert len(lines) >= 8


def test_the_readme_rules_for_the_line_hold_as_written():
    """The inline examples of the user guide's "The line is read as Python reads it" rule."""
    readme = (ROOT / "docs" / "guide.md").read_text()
    rule = readme[readme.index("- The line is read as Python reads it"):readme.index("- Bad options are")]
    examples = re.findall(r"`(%%track [^`]+|--grid [^`]+|-p [^`]+)`", rule)
    assert len(examples) == 4, examples
    parsed = [parse_track_line(e.removeprefix("%%track")) for e in examples]
    assert parsed[0].grid == {"depth": range(2, 10, 2)}
    assert parsed[1].grid == {"label": ["a,b", "c"]}
    assert parsed[2].overrides == {"version": "2"}
    assert parsed[3].name == "fit v2"
    assert parse_track_line(" fit -p lr=0.1  # a note, with = and 'quotes").overrides == {"lr": 0.1}
