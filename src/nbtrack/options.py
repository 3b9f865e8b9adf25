"""Options of ``%%track`` and the one parser of ``KEY=VALUE`` shared by the magic and the CLI."""
from __future__ import annotations

import argparse
import ast
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import ParamValueError

_BARE = re.compile(r"^[A-Za-z_][\w.\-/:]*$")
_KEY = re.compile(r"^[A-Za-z_]\w*$")


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE a Python literal; a bare word such as ``rf`` is taken as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParamValueError(f"-p {text!r}: expected KEY=VALUE, e.g. -p lr=0.01 or -p model='rf'")
    if not _KEY.match(key):
        raise ParamValueError(f"-p {text!r}: {key!r} is not a Python name")
    raw = raw.strip()
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if _BARE.match(raw) and raw not in ("True", "False", "None"):
            return key, raw
    raise ParamValueError(f"-p {text!r}: {raw!r} is not a Python literal; quote text (-p {key}='{raw}') "
                          "or give a number, True/False/None, a list or a dict")


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
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seed: str | None = None
    fail_fast: bool = False
    save: list[str] = field(default_factory=list)
    line: str = ""

    @property
    def sweep(self) -> bool:
        """Several runs from one cell: the track magic runs them."""
        return self.repeat > 1 or bool(self.grid)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit the kernel
        raise ParamValueError(f"%%track: {message}\nusage: {USAGE}")


USAGE = ("%%track [NAME] [-e EXPERIMENT] [-t TAG]... [-p KEY=VALUE]... [--no-outputs] "
         "[--exclude NAME]... [--check [RUN]] [--rtol X] [--atol X] [--tol METRIC=RTOL]... [--repeat N] "
         "[--grid KEY=V1,V2,...]... [--seed KEY] [--fail-fast] [--save NAME]...")
_parser = _Parser(prog="%%track", add_help=False, allow_abbrev=False)
_parser.add_argument("name", nargs="?")
_parser.add_argument("-e", "--experiment")
_parser.add_argument("-t", "--tag", action="append", default=[])
_parser.add_argument("-p", "--param", action="append", default=[])
_parser.add_argument("--no-outputs", action="store_true")
_parser.add_argument("--exclude", action="append", default=[])
_parser.add_argument("--check", nargs="?", const="latest")
_parser.add_argument("--rtol", type=float)
_parser.add_argument("--atol", type=float)
_parser.add_argument("--tol", action="append", default=[])
_parser.add_argument("--repeat", type=int, default=1)
_parser.add_argument("--grid", action="append", default=[])
_parser.add_argument("--seed")
_parser.add_argument("--fail-fast", action="store_true")
_parser.add_argument("--save", action="append", default=[])


def parse_track_line(line: str) -> TrackOptions:
    """Parse the text after ``%%track``; raise ParamValueError naming the bad option."""
    try:
        argv = shlex.split(line)
    except ValueError as e:
        raise ParamValueError(f"%%track: {e} in {line.strip()!r}\nusage: {USAGE}") from None
    args = _parser.parse_args(argv)
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
    return TrackOptions(name=args.name, experiment=args.experiment, tags=args.tag, overrides=overrides,
                        no_outputs=args.no_outputs, exclude=args.exclude, check=args.check, rtol=args.rtol,
                        atol=args.atol, tolerances=tolerances, repeat=args.repeat, grid=grid, seed=args.seed,
                        fail_fast=args.fail_fast, save=args.save, line=line.strip())


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` (Python literals; bare words are strings), ``KEY=range(...)`` or
    ``KEY=logspace(a, b, n)`` (``n`` values from ``10**a`` to ``10**b``)."""
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
    except SyntaxError:
        node = None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("range", "logspace"):
        try:
            args = [ast.literal_eval(a) for a in node.args]
        except ValueError:
            raise ParamValueError(usage) from None
        if node.keywords or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise ParamValueError(usage)
        if node.func.id == "range":
            if not 1 <= len(args) <= 3 or not all(isinstance(a, int) for a in args):
                raise ParamValueError(f"--grid {text!r}: range() takes 1 to 3 integers")
            values: list[Any] = list(range(*args))
        else:
            if len(args) != 3 or not isinstance(args[2], int) or args[2] < 1:
                raise ParamValueError(f"--grid {text!r}: logspace(A, B, N) takes two exponents and a count")
            a, b, n = args
            values = [10 ** (a + (b - a) * i / (n - 1)) if n > 1 else 10 ** a for i in range(n)]
    else:
        try:
            parsed = ast.literal_eval(f"[{raw}]")
            values = list(parsed)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            values = [parse_param(f"{key}={part}")[1] for part in raw.split(",")]
    if not values:
        raise ParamValueError(f"--grid {text!r}: no values")
    return key, values
