"""Values to JSON text and back, exactly: the one encoding of params, values, summaries and JSON payloads.

JSON has no NaN, tuples, sets, bytes, decimals, dates or non-string keys, and
Python's ``str(int)`` refuses ints beyond 4,300 digits. Plain JSON values are
written as they are; every other type becomes a one-key object tagged with
``$`` (``{"$tuple": [...]}``), and a user's dict whose keys are not all plain
strings, or that has a key starting with ``$``, becomes ``{"$dict": [[k, v],
...]}``, so a tag is never ambiguous. No text substitution anywhere: the
standard ``json`` module writes and reads it, and any JSON reader can parse it.

docs/guide.md's "How values are stored" table lists each type's representation.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Any

INT64 = 2**63
REPR_CHARS = 1000        # an object of an unknown type is kept as its repr(), cut here
MAX_NODES = 100_000      # a value bigger than this is recorded as a summary, not in full
MAX_DEPTH = 100


class _TooBig(Exception):
    pass


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except BaseException:   # a hostile __repr__ must not break a record
        text = f"<{type(value).__module__}.{type(value).__qualname__} object>"
    return text if len(text) <= REPR_CHARS else text[:REPR_CHARS] + "..."


def _float(value: float) -> Any:
    if value != value:
        return {"$float": "nan"}
    if value in (float("inf"), float("-inf")):
        return {"$float": "inf" if value > 0 else "-inf"}
    return float(value)


def _plain_key(key: Any) -> bool:
    return type(key) is str and not key.startswith("$")


class _Encoder:
    def __init__(self) -> None:
        self.nodes = 0
        self.path: set[int] = set()   # ids of the containers being encoded: a cycle is kept as its repr

    def enc(self, value: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig
        if value is None or value is True or value is False:
            return value
        if isinstance(value, str):
            return str(value)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            value = int(value)
            return value if -INT64 <= value < INT64 else {"$int": hex(value)}   # hex: no digit limit
        if isinstance(value, float):
            return _float(value)
        if isinstance(value, (bytes, bytearray)):
            return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
        if isinstance(value, Decimal):
            return {"$decimal": str(value)}
        if isinstance(value, dt.datetime):
            return {"$datetime": value.isoformat()}
        if isinstance(value, dt.date):
            return {"$date": value.isoformat()}
        if isinstance(value, dt.time):
            return {"$time": value.isoformat()}
        if isinstance(value, dt.timedelta):
            return {"$timedelta": [value.days, value.seconds, value.microseconds]}
        if isinstance(value, complex):
            return {"$complex": [_float(value.real), _float(value.imag)]}
        np = sys.modules.get("numpy")
        if np is not None and isinstance(value, np.generic):
            try:
                item = value.item()
            except Exception:
                return {"$repr": _repr(value)}
            if not isinstance(item, np.generic):
                return self.enc(item, depth)
            return {"$repr": _repr(value)}
        if isinstance(value, (list, tuple, set, frozenset, dict)):
            if depth >= MAX_DEPTH or id(value) in self.path:
                return {"$repr": _repr(value)}
            self.path.add(id(value))
            try:
                return self._container(value, depth + 1)
            finally:
                self.path.discard(id(value))
        return {"$repr": _repr(value)}

    def _container(self, value: Any, depth: int) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            if all(_plain_key(k) for k, _ in items):
                return {k: self.enc(v, depth) for k, v in items}
            return {"$dict": [[self.enc(k, depth), self.enc(v, depth)] for k, v in items]}
        items = [self.enc(v, depth) for v in value]
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return {"$tuple": items}
        # sets have no order: sorted by each item's JSON text, so the same set is always the same text
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return {"$frozenset" if isinstance(value, frozenset) else "$set": items}


def encode(value: Any) -> Any:
    """A JSON-ready tree for ``value`` (see the module docstring)."""
    try:
        return _Encoder().enc(value)
    except (_TooBig, RecursionError):
        return {"$repr": f"<{type(value).__qualname__} too large to record: over {MAX_NODES:,} items>"}


def dumps(value: Any) -> str:
    """JSON text for ``value``; plain UTF-8 text where it can be, ASCII escapes where a string holds a lone
    surrogate (which UTF-8 cannot carry)."""
    tree = encode(value)
    text = json.dumps(tree, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(tree, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text


def _decimal_or_text(text: str) -> Any:
    try:
        return Decimal(text)
    except Exception:
        return text


_FLOATS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
_TAGS: dict[str, Any] = {
    "$float": lambda v: _FLOATS[v],
    "$int": lambda v: int(v, 16),
    "$bytes": lambda v: base64.b64decode(v),
    "$decimal": _decimal_or_text,
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
    "$timedelta": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "$complex": lambda v: complex(decode(v[0]), decode(v[1])),
    "$repr": str,
}


def decode(tree: Any) -> Any:
    """Inverse of ``encode``; a tag this version does not know is returned as the plain dict it is."""
    if isinstance(tree, list):
        return [decode(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        (tag, inner), = tree.items()
        if tag in ("$tuple", "$set", "$frozenset", "$dict") and isinstance(inner, list):
            try:
                if tag == "$dict":
                    return {_hashable(decode(k)): decode(v) for k, v in inner}
                items = [decode(v) for v in inner]
                return tuple(items) if tag == "$tuple" else \
                    (set if tag == "$set" else frozenset)(_hashable(v) for v in items)
            except (TypeError, ValueError):
                pass
        elif tag in _TAGS:
            try:
                return _TAGS[tag](inner)
            except (TypeError, ValueError, KeyError, IndexError, OverflowError):
                pass
    return {k: decode(v) for k, v in tree.items()}


def _hashable(value: Any) -> Any:
    """Keys and set items came from hashable values; lists stand for tuples only in hand-edited text."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _legacy(text: str) -> Any:
    """Text written before this encoding (nbtrack 0.1 stores): NaN/Infinity were patched in by string
    replacement, which also wrapped those words inside strings in quotes; undo exactly that."""
    repaired = text.replace('"-Infinity"', "-Infinity").replace('"Infinity"', "Infinity").replace('"NaN"', "NaN")
    return json.loads(repaired)


def loads_legacy(text: str | None) -> Any:
    """JSON text of an nbtrack 0.1 store as the plain value it held (no tags: that version wrote none);
    text that no repair makes JSON is kept as that text."""
    if text is None:
        return None
    for parse in (json.loads, _legacy):
        try:
            return parse(text)
        except (ValueError, RecursionError):
            continue
    return text


def loads(text: str | None) -> Any:
    """The value of JSON text written by ``dumps`` (or by an older nbtrack). Never raises: text that is
    not JSON at all comes back as that text."""
    if text is None:
        return None
    try:
        return decode(json.loads(text))
    except (ValueError, RecursionError):
        pass
    try:
        return decode(_legacy(text))
    except (ValueError, RecursionError):
        return text


# An int of any size as text whose order is the ints' order (a DOUBLE rounds ints past 2^53 together, and
# the ints past 64 bits are kept as hex, which no SQL number holds): a sign, the count of hex digits in 8
# hex digits, the digits; a negative's count and digits turned round (f - d), so the longer is the smaller.
# The sort of a param's column and a filter's comparison with an int past 2^53 use it.
EXACT_PAST = 2**53
_FLIP = str.maketrans("0123456789abcdef", "fedcba9876543210")


def int_order(value: int) -> str:
    """``value``'s text in the order of ``int_order_sql``."""
    digits = format(abs(int(value)), "x")
    head = format(len(digits), "08x") + digits
    return "0" + head.translate(_FLIP) if value < 0 else "1" + head


def int_order_sql(alias: str, floats: bool = False) -> str:
    """SQL of ``int_order`` of the int in a params or values row ``alias`` (vtype int or bigint); else NULL.
    ``floats``: of a float row's whole number too, from 2^53 (every such DOUBLE is one) to 2^127 (a HUGEINT's)."""
    big = f"abs({alias}.value_num) BETWEEN {EXACT_PAST} AND 1.7e38"
    digits = (f"CASE WHEN {alias}.vtype = 'int' THEN lower(hex(abs(TRY_CAST({alias}.value_json AS HUGEINT)))) "
              f"WHEN {alias}.vtype = 'bigint' THEN regexp_extract({alias}.value_json, '0x([0-9a-f]+)', 1) "
              + (f"WHEN {alias}.vtype = 'float' AND {big} THEN lower(hex(abs(TRY_CAST({alias}.value_num AS HUGEINT)))) "
                 if floats else "") + "END")
    head = f"lpad(lower(hex(length({digits}))), 8, '0') || {digits}"
    negative = f"({alias}.value_json LIKE '%-%' OR {alias}.value_num < 0)"
    return (f"CASE WHEN {digits} <> '' THEN CASE WHEN {negative} "
            f"THEN '0' || translate({head}, '0123456789abcdef', 'fedcba9876543210') ELSE '1' || {head} END END")


def text_safe(text: str) -> str:
    """``text`` for a text column: a lone surrogate becomes its ``\\udXXX`` escape (not UTF-8), NUL the
    four characters ``\\x00``: DuckLake cuts a filter's text at NUL when it passes it to PostgreSQL (a
    syntax error), and a PostgreSQL array cannot hold one. ``value_json`` keeps a string exactly."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:   # beyond str()'s digit limit
        return f"<int of {value.bit_length()} bits>"


def scalar_columns(value: Any) -> tuple[str, float | None, str | None]:
    """``(vtype, value_num, value_text)`` of a value that is not a plain JSON scalar: what SQL and
    ``where`` filters compare (a Decimal as a number, a date as ISO text); ``value_json`` holds it exactly."""
    if isinstance(value, Decimal):
        return "decimal", float(value), str(value)
    if isinstance(value, dt.datetime):
        return "datetime", value.timestamp() if value.tzinfo is not None else None, value.isoformat()
    if isinstance(value, dt.date):
        return "date", None, value.isoformat()
    if isinstance(value, dt.time):
        return "time", None, value.isoformat()
    if isinstance(value, dt.timedelta):
        return "timedelta", value.total_seconds(), str(value)
    if isinstance(value, (bytes, bytearray)):
        return "bytes", None, None
    if isinstance(value, complex):
        return "complex", None, None
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return "json", None, None
    return "object", None, text_safe(_repr(value))


def for_display(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy for a front end or a report: what a person reads, not what round-trips
    (non-finite floats are null, ints past 2**53 are text, other types their text)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return text_safe(value)
    if isinstance(value, int):
        return int(value) if abs(value) <= 2**53 else _int_text(value)
    if isinstance(value, float):
        return float(value) if value == value and value not in (float("inf"), float("-inf")) else None
    if depth > MAX_DEPTH:
        return text_safe(_repr(value))
    if isinstance(value, dict):
        return {(text_safe(k) if isinstance(k, str) else text_safe(_repr(k))): for_display(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [for_display(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((for_display(v, depth + 1) for v in value), key=repr)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        try:
            return for_display(value.item(), depth + 1)
        except Exception:
            pass
    if isinstance(value, (Decimal, dt.date, dt.time, dt.timedelta)):
        return str(value)
    return text_safe(_repr(value))
