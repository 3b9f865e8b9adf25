"""The filter language as text: its fields, its tokens, the caret under an error, and names and values
written in it (the panel writes filters for a click on a cell; the tests for their generated values).
filters.py parses the tokens and compiles them to SQL."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import FilterError, FilterSyntaxError

RUN_COLUMNS = {
    "run_id": "r.run_id", "experiment": "r.experiment", "name": "r.name", "status": "r.status",
    "kind": "r.kind", "started_at": "r.started_at", "ended_at": "r.ended_at",
    "duration_s": "r.duration_s", "cpu_s": "r.cpu_s", "notebook": "r.notebook", "host": "r.host",
    "user": 'r."user"', "git_commit": "r.git_commit", "git_branch": "r.git_branch",
    "tags": "r.tags", "error_type": "r.error_type", "sweep_id": "r.sweep_id",
    "label": "r.label", "note": "r.note", "starred": "coalesce(r.starred, false)",
}
TIME_COLUMNS = {"started_at", "ended_at"}
NUMBER_COLUMNS = {"duration_s", "cpu_s"}
BOOL_COLUMNS = {"starred"}
GROUPS = {"params", "metrics", "values"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`(?:[^`]|``)+`)
  | (?P<op>==|!=|<>|<=|>=|<|>|=)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*)
""", re.VERBOSE)
KEYWORDS = {"and", "or", "not", "in", "is", "null", "like", "true", "false"}


@dataclass
class Tok:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise syntax_error(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind != "ws":
            tok = m.group()
            if kind == "word" and tok.lower() in KEYWORDS:
                kind, tok = "kw", tok.lower()
            toks.append(Tok(kind, tok, pos))
        pos = m.end()
    toks.append(Tok("end", "", len(text)))
    return toks


def type_error(text: str, pos: int, what: str) -> FilterError:
    return FilterError(f"cannot apply filter: {what} at position {pos}\n  {text}\n  {' ' * pos}^")


def syntax_error(text: str, pos: int, what: str) -> FilterSyntaxError:
    return FilterSyntaxError(
        f"could not parse filter: {what} at position {pos}\n  {text}\n  {' ' * pos}^\n"
        "a filter looks like: metrics.acc > 0.9 and params.model = 'rf' "
        "(fields: params.K, metrics.K, values.K, " + ", ".join(sorted(RUN_COLUMNS)) + ")")


def filter_name(column: str) -> str:
    """A panel column as the filter language names it (keys quoted: they may hold any character)."""
    group, _, key = column.partition(".")
    if group in ("params", "metrics", "values") and key:
        return f"{group}.`{key.replace('`', '``')}`"
    return {"label": "name", "run_label": "label"}.get(column, column)


def unquote(text: str) -> str:
    """A quoted string token's value: '' stands for ' in single quotes, a backslash escapes in double."""
    body = text[1:-1]
    return body.replace("''", "'") if text[0] == "'" else re.sub(r"\\(.)", r"\1", body)


def filter_literal(value: Any) -> str:
    """A value as the filter language writes it (text quoted as the tokenizer reads it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
