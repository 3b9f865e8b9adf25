"""``where=`` filters: parsed into a tree, compiled to SQL with bound parameters.

A filter such as ``metrics.acc > 0.9 and params.model = 'rf'`` is never pasted
into SQL: names go through a whitelist (run columns) or become a bound key of
``params``/``metrics``/``values``, operators through a fixed table, literals
become parameters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import FilterSyntaxError

RUN_COLUMNS = {
    "run_id": "r.run_id", "experiment": "r.experiment", "name": "r.name", "status": "r.status",
    "kind": "r.kind", "started_at": "r.started_at", "ended_at": "r.ended_at",
    "duration_s": "r.duration_s", "cpu_s": "r.cpu_s", "notebook": "r.notebook", "host": "r.host",
    "user": 'r."user"', "git_commit": "r.git_commit", "git_branch": "r.git_branch",
    "tags": "r.tags", "error_type": "r.error_type", "sweep_id": "r.sweep_id",
}
GROUPS = {"params", "metrics", "values"}
OPS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`[^`]+`)
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
            raise _error(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        if kind != "ws":
            tok = m.group()
            if kind == "word" and tok.lower() in KEYWORDS:
                kind, tok = "kw", tok.lower()
            toks.append(Tok(kind, tok, pos))
        pos = m.end()
    toks.append(Tok("end", "", len(text)))
    return toks


def _error(text: str, pos: int, what: str) -> FilterSyntaxError:
    return FilterSyntaxError(
        f"could not parse filter: {what} at position {pos}\n  {text}\n  {' ' * pos}^\n"
        "a filter looks like: metrics.acc > 0.9 and params.model = 'rf' "
        "(fields: params.K, metrics.K, values.K, " + ", ".join(sorted(RUN_COLUMNS)) + ")")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.params: list[Any] = []

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self, kind: str | None = None, text: str | None = None) -> Tok:
        tok = self.peek()
        if (kind and tok.kind != kind) or (text and tok.text != text):
            want = repr(text) if text else {"word": "a field name", "end": "the end of the filter"}.get(kind or "", kind)
            got = repr(tok.text) if tok.text else "the end"
            raise _error(self.text, tok.pos, f"expected {want}, found {got}")
        self.i += 1
        return tok

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def parse(self) -> str:
        if self.peek().kind == "end":
            raise _error(self.text, 0, "the filter is empty")
        sql = self.or_()
        self.take("end")
        return sql

    def or_(self) -> str:
        parts = [self.and_()]
        while self.peek().text == "or" and self.peek().kind == "kw":
            self.i += 1
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_(self) -> str:
        parts = [self.not_()]
        while self.peek().text == "and" and self.peek().kind == "kw":
            self.i += 1
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_(self) -> str:
        if self.peek().kind == "kw" and self.peek().text == "not":
            self.i += 1
            return f"(NOT {self.not_()})"
        if self.peek().text == "(":
            self.i += 1
            sql = self.or_()
            self.take("punct", ")")
            return sql
        return self.comparison()

    def field(self) -> tuple[str, str | None, int]:
        tok = self.peek()
        if tok.kind != "word":
            raise _error(self.text, tok.pos, f"expected a field name, found {repr(tok.text) if tok.text else 'the end'}")
        self.i += 1
        if tok.text in GROUPS and self.peek().text == ".":
            self.i += 1
            key = self.peek()
            if key.kind not in ("word", "quoted", "kw"):
                raise _error(self.text, key.pos, f"expected a key after '{tok.text}.'")
            self.i += 1
            name = key.text.strip("`")
            while self.peek().text == "." and self.toks[self.i + 1].kind in ("word", "kw"):
                self.i += 1
                name += "." + self.take().text
            return tok.text, name, tok.pos
        if tok.text not in RUN_COLUMNS:
            close = [c for c in (*RUN_COLUMNS, *GROUPS) if c.startswith(tok.text[:3])]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _error(self.text, tok.pos, f"unknown field {tok.text!r}{hint}")
        return tok.text, None, tok.pos

    def literal(self) -> Any:
        tok = self.peek()
        self.i += 1
        if tok.kind == "num":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "str":
            body = tok.text[1:-1]
            return body.replace("''", "'") if tok.text[0] == "'" else re.sub(r"\\(.)", r"\1", body)
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true"
        raise _error(self.text, tok.pos, f"expected a value (number, 'text', true, false), "
                                         f"found {repr(tok.text) if tok.text else 'the end'}")

    def comparison(self) -> str:
        group, key, _ = self.field()
        tok = self.peek()
        if tok.kind == "kw" and tok.text == "is":
            self.i += 1
            negate = self.peek().text == "not"
            if negate:
                self.i += 1
            self.take("kw", "null")
            return self.null_test(group, key, negate)
        negate = False
        if tok.kind == "kw" and tok.text == "not":
            self.i += 1
            negate = True
            tok = self.peek()
        if tok.kind == "kw" and tok.text == "in":
            self.i += 1
            self.take("punct", "(")
            values = [self.literal()]
            while self.peek().text == ",":
                self.i += 1
                values.append(self.literal())
            self.take("punct", ")")
            sql = "(" + " OR ".join(self.compare(group, key, "=", v) for v in values) + ")"
            return f"(NOT {sql})" if negate else sql
        if tok.kind == "kw" and tok.text == "like":
            self.i += 1
            value = self.literal()
            if not isinstance(value, str):
                raise _error(self.text, tok.pos, "like needs a 'text' pattern")
            sql = self.compare(group, key, "LIKE", value)
            return f"(NOT {sql})" if negate else sql
        if negate:
            raise _error(self.text, tok.pos, "expected 'in' or 'like' after 'not'")
        if tok.kind != "op":
            raise _error(self.text, tok.pos, f"expected an operator (= != < <= > >= in like is), "
                                             f"found {repr(tok.text) if tok.text else 'the end'}")
        self.i += 1
        return self.compare(group, key, OPS[tok.text], self.literal())

    def compare(self, group: str, key: str | None, op: str, value: Any) -> str:
        if key is None:
            column = RUN_COLUMNS[group]
            if group == "tags":
                if op not in ("=", "<>"):
                    raise FilterSyntaxError("tags only supports = and != (tags = 'x' means: has tag x)")
                sql = f"list_contains({column}, {self.bind(str(value))})"
                return sql if op == "=" else f"(NOT {sql})"
            return f"({column} {op} {self.bind(value)})"
        if group == "metrics":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise FilterSyntaxError(f"metrics.{key} is a number; compare it with a number, not {value!r}")
            col, table = "value", "metrics"
        else:
            table = "params" if group == "params" else '"values"'
            if isinstance(value, bool):
                col, value = "value_json", "true" if value else "false"
            elif isinstance(value, (int, float)):
                col = "value_num"
            else:
                col = "value_text"
        return (f"EXISTS (SELECT 1 FROM {table} f WHERE f.run_id = r.run_id AND f.key = {self.bind(key)} "
                f"AND f.{col} {op} {self.bind(value)})")

    def null_test(self, group: str, key: str | None, negate: bool) -> str:
        if key is None:
            column = RUN_COLUMNS[group]
            return f"({column} IS {'NOT ' if negate else ''}NULL)"
        table = {"params": "params", "metrics": "metrics", "values": '"values"'}[group]
        value = "f.value" if group == "metrics" else "f.value_json"
        null = "IS NULL" if group == "metrics" else "= 'null'"
        exists = (f"EXISTS (SELECT 1 FROM {table} f WHERE f.run_id = r.run_id AND f.key = {self.bind(key)} "
                  f"AND NOT ({value} {null}))")
        return exists if negate else f"(NOT {exists})"


def compile_filter(text: str) -> tuple[str, list[Any]]:
    """SQL boolean expression over ``runs r`` and its bound parameters."""
    parser = _Parser(text)
    sql = parser.parse()
    return sql, parser.params
