"""``where=`` filters: parsed into a tree, compiled to SQL with bound parameters.

A filter such as ``metrics.acc > 0.9 and params.model = 'rf'`` is never pasted
into SQL (key comparisons are uncorrelated ``IN (...)``s, those joined by ``and`` one intersection,
locality.has_rows: DuckDB runs a correlated EXISTS per term, seconds for a few hundred terms): names go
through a whitelist (run columns) or become a bound key of
``params``/``metrics``/``values``, operators through a fixed table, literals
become parameters.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..errors import FilterError
from . import locality
from .codec import EXACT_PAST, int_order, int_order_sql, text_safe
from .filter_text import (BOOL_COLUMNS, GROUPS, NUMBER_COLUMNS, RUN_COLUMNS, TIME_COLUMNS, Tok,
                          syntax_error, tokenize, type_error, unquote)

# Limits, so that no filter can exhaust Python's stack or DuckDB's binder: they are stated in the errors.
MAX_DEPTH = 50          # nested parentheses and nots
MAX_TERMS = 100         # comparisons in one filter (each is a semi-join: 100 take ~0.8 s here)
MAX_IN = 10_000         # values in one in (...) list
OPS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _Parser:
    def __init__(self, text: str, shared: bool = True) -> None:
        self.text, self.shared = text, shared
        self.toks = tokenize(text)
        self.i = 0
        self.params: list[Any] = []
        self.depth = 0
        self.terms = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self, kind: str | None = None, text: str | None = None) -> Tok:
        tok = self.peek()
        if (kind and tok.kind != kind) or (text and tok.text != text):
            want = repr(text) if text else {"word": "a field name", "end": "the end of the filter"}.get(kind or "", kind)
            got = repr(tok.text) if tok.text else "the end"
            raise syntax_error(self.text, tok.pos, f"expected {want}, found {got}")
        self.i += 1
        return tok

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def holds(self, table: str, start: int, where: str) -> str:
        """A run has a row of ``table`` passing ``where``, whose parameters are those bound from ``start``
        on: has_rows puts ``where`` in twice where starts may be shared, so they are bound once more."""
        args = self.params[start:]
        if self.shared:
            self.params.extend(args)
        return _Holds(locality.has_rows([(table, where)], self.shared), table, where, args)

    def parse(self) -> str:
        if self.peek().kind == "end":
            raise syntax_error(self.text, 0, "the filter is empty")
        sql = self.or_()
        self.take("end")
        return sql

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise syntax_error(self.text, pos, f"nesting deeper than {MAX_DEPTH} levels of parentheses and not")

    def or_(self) -> str:
        parts = [self.and_()]
        while self.peek().text == "or" and self.peek().kind == "kw":
            self.i += 1
            parts.append(self.and_())
        return _join(parts, "OR")

    def and_(self) -> str:
        parts = []   # (sql, the parameters it bound)
        while True:
            begun = len(self.params)
            parts.append((self.not_(), self.params[begun:]))
            if self.peek().text != "and" or self.peek().kind != "kw":
                break
            self.i += 1
        terms = [p for p, _ in parts if isinstance(p, _Holds)]
        if len(terms) < 2:
            return _join([p for p, _ in parts], "AND")
        # the key terms as one intersection (has_rows), then the rest, their parameters in that order
        others = [(p, args) for p, args in parts if not isinstance(p, _Holds)]
        keyed = [a for t in terms for a in t.args]
        del self.params[len(self.params) - sum(len(args) for _, args in parts):]
        self.params += keyed + (keyed if self.shared else []) + [a for _, args in others for a in args]
        return _join([locality.has_rows([(t.table, t.where) for t in terms], self.shared), *(p for p, _ in others)], "AND")

    def not_(self) -> str:
        tok = self.peek()
        if tok.kind == "kw" and tok.text == "not":
            self.i += 1
            self.nest(tok.pos)
            sql = f"(NOT {self.not_()})"
            self.depth -= 1
            return sql
        if tok.text == "(":
            self.i += 1
            self.nest(tok.pos)
            sql = self.or_()
            self.take("punct", ")")
            self.depth -= 1
            return sql
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise syntax_error(self.text, tok.pos, f"more than {MAX_TERMS} comparisons in one filter")
        return self.comparison()

    def field(self) -> tuple[str, str | None, int]:
        tok = self.peek()
        if tok.kind != "word":
            raise syntax_error(self.text, tok.pos, f"expected a field name, found {repr(tok.text) if tok.text else 'the end'}")
        self.i += 1
        if tok.text in GROUPS and self.peek().text == ".":
            self.i += 1
            key = self.peek()
            if key.kind not in ("word", "quoted", "kw"):
                raise syntax_error(self.text, key.pos, f"expected a key after '{tok.text}.'")
            self.i += 1
            name = key.text[1:-1].replace("``", "`") if key.kind == "quoted" else key.text
            while self.peek().text == "." and self.toks[self.i + 1].kind in ("word", "kw"):
                self.i += 1
                name += "." + self.take().text
            return tok.text, name, tok.pos
        if tok.text not in RUN_COLUMNS:
            close = [c for c in (*RUN_COLUMNS, *GROUPS) if c.startswith(tok.text[:3])]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise syntax_error(self.text, tok.pos, f"unknown field {tok.text!r}{hint}")
        return tok.text, None, tok.pos

    def literal(self) -> Any:
        tok = self.peek()
        self.i += 1
        if tok.kind == "num":
            try:
                return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
            except ValueError:   # more digits than int() takes
                raise type_error(self.text, tok.pos, f"a number of {len(tok.text):,} digits is too long") from None
        if tok.kind == "str":
            return unquote(tok.text)
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return tok.text == "true"
        raise syntax_error(self.text, tok.pos, f"expected a value (number, 'text', true, false), "
                           f"found {repr(tok.text) if tok.text else 'the end'}")

    def comparison(self) -> str:
        group, key, pos = self.field()
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
                if len(values) >= MAX_IN:
                    raise syntax_error(self.text, self.peek().pos, f"more than {MAX_IN:,} values in one in (...) list")
                values.append(self.literal())
            self.take("punct", ")")
            sql = self.member(group, key, values, tok.pos)
            return f"(NOT {sql})" if negate else sql
        if tok.kind == "kw" and tok.text == "like":
            self.i += 1
            value = self.literal()
            if not isinstance(value, str):
                raise type_error(self.text, tok.pos, "like needs a 'text' pattern")
            sql = self.compare(group, key, "LIKE", value, tok.pos)
            return f"(NOT {sql})" if negate else sql
        if negate:
            raise syntax_error(self.text, tok.pos, "expected 'in' or 'like' after 'not'")
        if tok.kind != "op":
            raise syntax_error(self.text, tok.pos, f"expected an operator (= != < <= > >= in like is), "
                           f"found {repr(tok.text) if tok.text else 'the end'}")
        self.i += 1
        return self.compare(group, key, OPS[tok.text], self.literal(), tok.pos)

    def run_value(self, column: str, op: str, value: Any, pos: int) -> Any:
        """A value checked against a run column's type (DuckDB would fail on it, or compare nonsense)."""
        if column in TIME_COLUMNS:
            parsed = _time(value) if isinstance(value, str) else None
            if parsed is None or op == "LIKE":
                raise type_error(self.text, pos, f"{column} is a time: compare it with a date or time in quotes, "
                                                  f"e.g. {column} > '2026-11-01' or {column} < '2026-11-01T12:00'")
            return parsed
        if column in NUMBER_COLUMNS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or op == "LIKE":
                raise type_error(self.text, pos, f"{column} is a number: compare it with a number, e.g. "
                                                  f"{column} > 10")
            return self.number(value, pos)
        if column in BOOL_COLUMNS:
            if not isinstance(value, bool) or op not in ("=", "<>"):
                raise type_error(self.text, pos, f"{column} is true or false: write {column} = true or {column} = false")
            return value
        if not isinstance(value, str):
            raise type_error(self.text, pos, f"{column} is text: quote the value, e.g. {column} = '{value}'")
        return text_safe(value)

    def number(self, value: Any, pos: int) -> float:
        try:
            return float(value)
        except OverflowError:
            raise type_error(self.text, pos, f"{value:.20} is too large a number to compare") from None

    def exact(self, op: str, ints: list[int], numbers: list[float]) -> str:
        """A params or values row ``f`` against numbers of which one is past 2^53 (the whole ones as ``ints``,
        all as DOUBLEs ``numbers``), which a DOUBLE rounds: an int, and a float from 2^53 on (a whole number),
        compared exactly, by ``int_order``; any other row as a DOUBLE. ``op``: a comparison, or IN."""
        order = int_order_sql("f", floats=True)
        if op == "IN":
            return (f"CASE WHEN {order} IS NOT NULL THEN {order} IN (SELECT unnest("
                    f"{self.bind([int_order(i) for i in ints])}::VARCHAR[])) "
                    f"ELSE f.value_num IN (SELECT unnest({self.bind(numbers)}::DOUBLE[])) END")
        return (f"CASE WHEN {order} IS NOT NULL THEN {order} {op} {self.bind(int_order(ints[0]))} "
                f"ELSE f.value_num {op} {self.bind(numbers[0])} END")

    def compare(self, group: str, key: str | None, op: str, value: Any, pos: int = 0) -> str:
        if key is None:
            column = RUN_COLUMNS[group]
            if group == "tags":
                if op not in ("=", "<>") or not isinstance(value, str):
                    raise type_error(self.text, pos, "tags only supports = and != with a 'text' value "
                                                      "(tags = 'x' means: has tag x)")
                sql = f"list_contains({column}, {self.bind(text_safe(value))})"
                return sql if op == "=" else f"(NOT {sql})"
            return f"({column} {op} {self.bind(self.run_value(group, op, value, pos))})"
        if group == "metrics":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise type_error(self.text, pos, f"metrics.{key} is a number; compare it with a number, "
                                                  f"not {value!r}")
            col, table, value = "value", "metrics", self.number(value, pos)
        else:
            table = group
            if isinstance(value, bool):
                if op not in ("=", "<>"):
                    raise type_error(self.text, pos, "true and false compare with = and != only")
                col, value = "value_json", "true" if value else "false"
            elif isinstance(value, (int, float)):
                number = self.number(value, pos)
                if abs(number) >= EXACT_PAST:   # a DOUBLE rounds these: ints compare exactly, floats as DOUBLEs
                    start = len(self.params)   # (a float this big is a whole number)
                    return self.holds(table, start, f"f.key = {self.bind(key)} AND {self.exact(op, [int(value)], [number])}")
                col, value = "value_num", number
            else:
                col, value = "value_text", text_safe(value)
        start = len(self.params)
        return self.holds(table, start, f"f.key = {self.bind(key)} AND f.{col} {op} {self.bind(value)}")

    def member(self, group: str, key: str | None, values: list[Any], pos: int) -> str:
        """``in (...)``: one set membership per type of value, however long the list (not one OR per value)."""
        if key is None:
            if group == "tags":
                strings = [text_safe(v) for v in values if isinstance(v, str)]
                if len(strings) != len(values):
                    raise type_error(self.text, pos, "tags in (...) takes 'text' values")
                return f"list_has_any({RUN_COLUMNS[group]}, {self.bind(strings)}::VARCHAR[])"
            checked = [self.run_value(group, "=", v, pos) for v in values]
            cast = ("TIMESTAMP" if group in TIME_COLUMNS else "DOUBLE" if group in NUMBER_COLUMNS
                    else "BOOLEAN" if group in BOOL_COLUMNS else "VARCHAR")
            return f"({RUN_COLUMNS[group]} IN (SELECT unnest({self.bind(checked)}::{cast}[])))"
        start = len(self.params)
        key_sql = self.bind(key)   # bound in the order the placeholders appear
        if group == "metrics":
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise type_error(self.text, pos, f"metrics.{key} is a number; in (...) takes numbers")
            cond = f"f.value IN (SELECT unnest({self.bind([self.number(v, pos) for v in values])}::DOUBLE[]))"
        else:
            given = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            nums = [self.number(v, pos) for v in given]
            texts = [text_safe(v) for v in values if isinstance(v, str)]
            bools = ["true" if v else "false" for v in values if isinstance(v, bool)]
            conds = []
            if any(abs(n) >= EXACT_PAST for n in nums):   # as compare() does: ints exactly
                conds.append(self.exact("IN", [int(v) for v in given if isinstance(v, int) or v.is_integer()], nums))
                nums = []
            for col, items, cast in (("value_num", nums, "DOUBLE"), ("value_text", texts, "VARCHAR"),
                                     ("value_json", bools, "VARCHAR")):
                if items:
                    conds.append(f"f.{col} IN (SELECT unnest({self.bind(items)}::{cast}[]))")
            cond = "(" + " OR ".join(conds) + ")"
        return self.holds(group, start, f"f.key = {key_sql} AND {cond}")

    def null_test(self, group: str, key: str | None, negate: bool) -> str:
        if key is None:
            column = RUN_COLUMNS[group]
            return f"({column} IS {'NOT ' if negate else ''}NULL)"
        value = "f.value" if group == "metrics" else "f.value_json"
        null = "IS NULL" if group == "metrics" else "= 'null'"
        start = len(self.params)
        exists = self.holds(group, start, f"f.key = {self.bind(key)} AND NOT ({value} {null})")
        return exists if negate else f"(NOT {exists})"


class _Holds(str):
    """has_rows' SQL for one key term, with what ``and_`` needs to join it to the others."""

    def __new__(cls, sql: str, table: str, where: str, args: list[Any]) -> "_Holds":
        made = super().__new__(cls, sql)
        made.table, made.where, made.args = table, where, list(args)
        return made


def _join(parts: list[str], op: str) -> str:
    """``a OR b OR c ...`` as a balanced tree: DuckDB nests a flat chain one level per term and refuses
    expressions deeper than 1,000 levels."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    return f"({_join(parts[:mid], op)} {op} {_join(parts[mid:], op)})"


def _time(text: str) -> datetime | None:
    """A date or a time in ISO form ('2026-11-01', '2026-11-01T12:00', '2026-11-01 12:00:00+01:00', 'Z')."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        pass
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day)


def compile_filter(text: str, con: Any = None) -> tuple[str, list[Any]]:
    """SQL boolean expression over ``runs r`` and its bound parameters; FilterSyntaxError (a filter that
    does not parse) or FilterError (one that cannot apply: a value of the wrong type, a limit passed),
    each with the position. ``con``: the store the query is for, asked whether any runs share a start
    (locality.any_shared): where none do, the query is faster; without it, it allows for them."""
    if not isinstance(text, str):
        raise FilterError(f"a filter is text, such as \"metrics.acc > 0.9\", not {type(text).__name__}")
    parser = _Parser(text, True if con is None else locality.any_shared(con))
    sql = parser.parse()
    return sql, parser.params
