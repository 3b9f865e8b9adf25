"""Options of ``%%track`` and the one parser of ``KEY=VALUE`` shared by the magic and the sweeps.

The line is split into words the way Python reads it, not the way a shell does: a quote or a bracket
holds spaces and commas, and quotes are kept, so ``-p version='2'`` binds the string ``'2'`` and
``--grid depth=range(2, 10, 2)`` is one option. A value is exactly the Python literal written; a bare
word (``-p model=rf``) is a string.
"""
from __future__ import annotations

import argparse
import ast
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ParamValueError
from ..recorder.analysis import literal_value

_BARE = re.compile(r"^[A-Za-z_][\w.\-/:]*$")
_KEY = re.compile(r"^[A-Za-z_]\w*$")
_PAIRS = {")": "(", "]": "[", "}": "{"}
MAX_RUNS = 10_000   # a sweep larger than this needs --max-runs: a typo in a grid must not run for a week


def split_words(text: str, sep: str | None = None) -> list[str]:
    """``text`` cut at whitespace (or at ``sep``) outside quotes and brackets, quotes kept; a word that
    starts with ``#`` starts a comment.

    Hand-written because ``shlex`` removes quotes (so ``'2'`` would become the number 2) and Python's
    ``tokenize`` reads ``#`` as a comment and refuses characters a name or tag may hold."""
    words: list[str] = []
    buf: list[str] = []
    stack: list[tuple[str, int]] = []
    quote: tuple[str, int] | None = None
    started = False
    i = 0
    while i < len(text):
        c = text[i]
        if quote is not None:
            buf.append(c)
            if c == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 1
            elif c == quote[0]:
                quote = None
        elif c in "'\"":
            quote, started = (c, i), True
            buf.append(c)
        elif c in "([{":
            stack.append((c, i))
            buf.append(c)
            started = True
        elif c in ")]}":
            if not stack or stack[-1][0] != _PAIRS[c]:
                raise ParamValueError(f"%%track: {c!r} at position {i} closes nothing in {text.strip()!r}")
            stack.pop()
            buf.append(c)
        elif c == "#" and sep is None and not stack and not buf:   # a comment, as in Python, to the end
            break
        elif not stack and (c.isspace() if sep is None else c == sep):
            if buf or (sep is not None):
                words.append("".join(buf))
            buf, started = [], False
        else:
            buf.append(c)
            started = True
        i += 1
    if quote is not None:
        raise ParamValueError(f"%%track: the quote {quote[0]} at position {quote[1]} is never closed in "
                              f"{text.strip()!r}")
    if stack:
        raise ParamValueError(f"%%track: {stack[-1][0]!r} at position {stack[-1][1]} is never closed in "
                              f"{text.strip()!r}")
    if buf or started or sep is not None:
        words.append("".join(buf))
    return words


def unquote(word: str) -> str:
    """A word that is one whole string literal (``"my run"``), as its text; any other word as it is."""
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        try:
            value = ast.literal_eval(word)
        except (ValueError, SyntaxError):
            return word
        if isinstance(value, str):
            return value
    return word


def literal(raw: str, what: str) -> Any:
    """A Python literal, or a bare word as a string; raise ParamValueError naming ``what``."""
    raw = raw.strip()
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if _BARE.match(raw) and raw not in ("True", "False", "None"):
            return raw
    raise ParamValueError(f"{what}: {raw!r} is not a Python literal; quote text ('{raw}') "
                          "or give a number, True/False/None, a list, a tuple or a dict")


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE a Python literal; a bare word such as ``rf`` is taken as a string."""
    text = unquote(text)
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParamValueError(f"-p {text!r}: expected KEY=VALUE, e.g. -p lr=0.01 or -p model='rf'")
    if not _KEY.match(key):
        raise ParamValueError(f"-p {text!r}: {key!r} is not a Python name")
    return key, literal(raw, f"-p {text!r}")


@dataclass
class TrackOptions:
    """Parsed ``%%track`` line."""

    name: str | None = None
    experiment: str | None = None
    tags: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    no_outputs: bool = False
    exclude: list[str] = field(default_factory=list)
    check: str | None = None          # "latest", or the run to compare with
    rtol: float | None = None
    atol: float | None = None
    tolerances: dict[str, float] = field(default_factory=dict)
    repeat: int = 1
    grid: dict[str, Sequence[Any]] = field(default_factory=dict)   # lists, ranges, LogSpace: never expanded
    seed: str | None = None
    fail_fast: bool = False
    save: list[str] = field(default_factory=list)
    max_runs: int = MAX_RUNS
    line: str = ""

    @property
    def sweep(self) -> bool:
        """Several runs from one cell: the track magic runs them."""
        return self.repeat > 1 or bool(self.grid)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit the kernel
        raise ParamValueError(f"%%track: {message}\nusage: {USAGE}")


PARSER = _Parser(prog="%%track", add_help=False, allow_abbrev=False,
                 description="Record this cell as a run: its params, inputs, outputs, metrics, displays, "
                             "source and environment, into the current store.")
PARSER.add_argument("name", nargs="?", metavar="NAME", help="the run's name (default: cell-<id>, or the cell's "
                    "first bound names)")
PARSER.add_argument("-e", "--experiment", metavar="EXPERIMENT", help="the experiment (default: the notebook's name)")
PARSER.add_argument("-t", "--tag", action="append", default=[], metavar="TAG", help="a tag; repeat for more")
PARSER.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a literal assignment of the cell for this run (a Python literal)")
PARSER.add_argument("--no-outputs", action="store_true", help="record no stdout, stderr or displays")
PARSER.add_argument("--exclude", action="append", default=[], metavar="NAME",
                    help="do not record this name as a param, input or output")
PARSER.add_argument("--check", nargs="?", const="latest", metavar="RUN",
                    help="compare with RUN (default: the latest finished run of this cell with the same params) "
                         "and say what changed and why")
PARSER.add_argument("--rtol", type=float, metavar="X", help="--check: relative tolerance for metrics")
PARSER.add_argument("--atol", type=float, metavar="X", help="--check: absolute tolerance for metrics")
PARSER.add_argument("--tol", action="append", default=[], metavar="METRIC=RTOL",
                    help="--check: a relative tolerance for one metric")
PARSER.add_argument("--repeat", type=int, default=1, metavar="N", help="run the cell N times (a repeat group)")
PARSER.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="run the cell once per combination of the values (with -p semantics); repeat for more keys")
PARSER.add_argument("--seed", metavar="KEY", help="with --repeat: give each repeat its own value of the literal KEY "
                    "(its value in the cell + the repeat's index)")
PARSER.add_argument("--fail-fast", action="store_true", help="stop a sweep at its first failed run")
PARSER.add_argument("--save", action="append", default=[], metavar="NAME",
                    help="save this output (a DataFrame, table or array) with the run, in a safe format")
PARSER.add_argument("--max-runs", type=int, default=MAX_RUNS, metavar="N",
                    help=f"refuse a sweep of more than N runs (default {MAX_RUNS})")
USAGE = " ".join(PARSER.format_usage().split()[1:])   # one line, for error messages


def help_text() -> str:
    """``%%track?``: every option the parser accepts, from the parser itself."""
    return PARSER.format_help()


def parse_track_line(line: str) -> TrackOptions:
    """Parse the text after ``%%track``; raise ParamValueError naming the bad option."""
    try:
        argv = split_words(line)
    except ParamValueError as e:
        raise ParamValueError(f"{e}\nusage: {USAGE}") from None
    args = PARSER.parse_args(argv)
    for name in ("name", "experiment", "check", "seed"):
        if getattr(args, name) is not None:
            setattr(args, name, unquote(getattr(args, name)))
    for name in ("tag", "exclude", "save"):
        setattr(args, name, [unquote(w) for w in getattr(args, name)])
    overrides = dict(parse_param(p) for p in args.param)
    for name in args.exclude:
        if not _KEY.match(name):
            raise ParamValueError(f"%%track: --exclude {name!r} is not a Python name")
    tolerances = {}
    for text in args.tol:
        key, value = parse_param(text)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ParamValueError(f"%%track --tol {text!r}: give a metric and a relative tolerance, e.g. "
                                  "--tol loss=0.01")
        tolerances[key] = float(value)
    if args.repeat < 1:
        raise ParamValueError(f"%%track --repeat {args.repeat}: give a number of runs, 1 or more")
    for flag in ("rtol", "atol"):
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            raise ParamValueError(f"%%track --{flag} {getattr(args, flag)}: a tolerance is 0 or more")
    grid: dict[str, list[Any]] = {}
    for text in args.grid:
        key, values = parse_grid(text)
        if key in grid or key in overrides:
            raise ParamValueError(f"%%track --grid {text!r}: {key} is given twice (by --grid or -p)")
        grid[key] = values
    for name in args.save:
        if not _KEY.match(name):
            raise ParamValueError(f"%%track --save {name!r}: give the name of a variable the cell makes")
    if args.seed is not None and (not _KEY.match(args.seed) or args.seed in grid or args.seed in overrides):
        raise ParamValueError(f"%%track --seed {args.seed!r}: give the name of a literal in the cell that is not "
                              "also set by --grid or -p, e.g. --seed seed")
    if args.max_runs < 1:
        raise ParamValueError(f"%%track --max-runs {args.max_runs}: give a number of runs, 1 or more")
    total = count(grid) * args.repeat
    if total > args.max_runs:
        sizes = " x ".join(f"{len(v):,}" for v in grid.values()) or "1"
        repeat = f" x {args.repeat} repeats" if args.repeat > 1 else ""
        raise ParamValueError(f"%%track: this sweep would run the cell {total:,} times ({sizes}{repeat}), over the "
                              f"limit of {args.max_runs:,}; narrow the grid, or allow it with --max-runs {total}")
    return TrackOptions(name=args.name, experiment=args.experiment, tags=args.tag, overrides=overrides,
                        no_outputs=args.no_outputs, exclude=args.exclude, check=args.check, rtol=args.rtol,
                        atol=args.atol, tolerances=tolerances, repeat=args.repeat, grid=grid, seed=args.seed,
                        fail_fast=args.fail_fast, save=args.save, max_runs=args.max_runs, line=line.strip())


class LogSpace(Sequence[float]):
    """``n`` values from ``10**a`` to ``10**b``, evenly spaced in the exponent, computed when read."""

    def __init__(self, a: float, b: float, n: int) -> None:
        self.a, self.b, self.n = a, b, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        i %= self.n
        return 10 ** (self.a + (self.b - self.a) * i / (self.n - 1)) if self.n > 1 else 10 ** self.a

    def __repr__(self) -> str:
        return f"logspace({self.a!r}, {self.b!r}, {self.n!r})"


def count(grid: dict[str, Sequence[Any]]) -> int:
    """How many combinations a grid has (1 for no grid), without making them."""
    return math.prod(len(v) for v in grid.values())


def combinations(grid: dict[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination, the last key varying fastest (as ``itertools.product``), one at a time:
    ``itertools.product`` would first copy every range into a tuple."""
    keys, seqs = list(grid), list(grid.values())
    for n in range(count(grid)):
        combo = {}
        for key, seq in zip(reversed(keys), reversed(seqs)):
            n, i = divmod(n, len(seq))
            combo[key] = seq[i]
        yield {k: combo[k] for k in keys}


def parse_grid(text: str) -> tuple[str, Sequence[Any]]:
    """``KEY=V1,V2,...`` (Python literals; bare words are strings), ``KEY=range(...)`` or
    ``KEY=logspace(a, b, n)`` (``n`` values from ``10**a`` to ``10**b``)."""
    text = unquote(text)
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    usage = (f"--grid {text!r}: expected KEY=V1,V2,... (e.g. --grid lr=1e-3,1e-2 or --grid model='rf','gb'), "
             "KEY=range(START, STOP[, STEP]) or KEY=logspace(A, B, N)")
    if not sep or not key or not raw:
        raise ParamValueError(usage)
    if not _KEY.match(key):
        raise ParamValueError(f"--grid {text!r}: {key!r} is not a Python name")
    try:
        node = ast.parse(raw, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        node = None
    values: Sequence[Any]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("range", "logspace"):
        try:   # literals and constant arithmetic: range(10**6), logspace(-4, -1, 2*4)
            args = [literal_value(a) for a in node.args]
        except Exception:
            raise ParamValueError(usage) from None
        if node.keywords or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise ParamValueError(usage)
        if node.func.id == "range":
            if not 1 <= len(args) <= 3 or not all(isinstance(a, int) for a in args) or (len(args) == 3 and not args[2]):
                raise ParamValueError(f"--grid {text!r}: range() takes 1 to 3 integers, a step other than 0")
            values = range(*args)
        else:
            if len(args) != 3 or not isinstance(args[2], int) or args[2] < 1:
                raise ParamValueError(f"--grid {text!r}: logspace(A, B, N) takes two exponents and a count")
            values = LogSpace(*args)
    else:
        parts = split_words(raw, sep=",")
        if any(not p.strip() for p in parts):
            raise ParamValueError(f"--grid {text!r}: an empty value between commas")
        values = [literal(p, f"--grid {text!r}") for p in parts]
    if not len(values):
        raise ParamValueError(f"--grid {text!r}: no values")
    return key, values
