"""Hypothesis strategies for the odd values a record must survive, and an exact comparison of them."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

# text with what breaks encoders: NUL, quotes, commas, newlines, "$", lone surrogates, words that a
# string substitution would hit (NaN, Infinity), non-BMP characters
ODD_TEXT = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=12),
    st.sampled_from(["", "\x00", "a\x00b", "'", '"', "a,b", "Infinity War", "NaN", "-Infinity", "\ud800",
                     "x\udfffy", "$tuple", "null", "𝔘𝔫𝔦", "line\nbreak", "\\", "--grid", "=", "café"]),
)
_HUGE = [2**63, -2**63 - 1, 2**64 + 1, 10**400, -(10**4400), 2**20000 + 7]   # the last two: past str()'s limit
HUGE_INTS = st.integers(0, len(_HUGE) - 1).map(lambda i: _HUGE[i])
INTS = st.one_of(st.integers(), HUGE_INTS, st.sampled_from([0, -1, 2**53 + 1, 2**63 - 1, -2**63]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, float("nan"), float("inf"), float("-inf"), 5e-324, 1.7976931348623157e308]))
DATETIMES = st.one_of(st.datetimes(), st.datetimes(timezones=st.timezones()),
                      st.datetimes(timezones=st.just(dt.timezone.utc)))
SCALARS = st.one_of(
    st.none(), st.booleans(), INTS, FLOATS, ODD_TEXT, st.binary(max_size=16),
    st.decimals(allow_nan=False, places=None), st.sampled_from([Decimal("1.10"), Decimal("-0"), Decimal("Infinity"),
                                                                Decimal("1E+400")]),
    DATETIMES, st.dates(), st.times(), st.timedeltas(),
    st.complex_numbers(allow_nan=False, allow_infinity=True),
)
HASHABLE = st.one_of(st.none(), st.booleans(), st.integers(), ODD_TEXT,
                     st.tuples(st.integers(), ODD_TEXT), st.floats(allow_nan=False))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.frozensets(HASHABLE, max_size=4),
        st.sets(HASHABLE, max_size=4),
        st.dictionaries(ODD_TEXT, inner, max_size=4),                 # includes "$"-keys and ""
        st.dictionaries(st.tuples(ODD_TEXT, st.integers()), inner, max_size=3),   # {('CA', 2010): ...}
        st.dictionaries(st.integers(), inner, max_size=3),
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal in value and type, NaN equal to NaN, -0.0 not equal to 0.0, a datetime at the same instant
    with the same UTC offset, a Decimal with the same digits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, dt.datetime):   # not ==: Python calls ambiguous times in different zones unequal
        if (a.tzinfo is None) != (b.tzinfo is None) or a.utcoffset() != b.utcoffset():
            return False
        return a.replace(tzinfo=None, fold=0) == b.replace(tzinfo=None, fold=0)
    if isinstance(a, dt.time):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None) and a.utcoffset() == b.utcoffset()
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(any(same(k, k2) and same(v, v2) for k2, v2 in b.items())
                                        for k, v in a.items())
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return a == b
