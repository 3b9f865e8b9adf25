"""The value encoding (store/codec.py): every type round-trips exactly, as text any JSON reader parses."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings

import nbtrack
from nbtrack.store import Store, codec
from nbtrack.store.records import decode_value, encode_value

from strategies import VALUES, same


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_every_value_round_trips_through_strict_json_text(value):
    text = codec.dumps(value)
    text.encode("utf-8")                       # storable in a text column
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert same(codec.loads(text), value)
    columns = encode_value(value)
    assert same(decode_value(columns["vtype"], columns["value_json"], columns["value_num"],
                             columns["value_text"]), value)


@pytest.mark.parametrize("value, text", [
    ({"x": float("inf"), "label": "Infinity War"}, '{"x":{"$float":"inf"},"label":"Infinity War"}'),
    ((1, "a"), '{"$tuple":[1,"a"]}'),
    ({("CA", 2010): 37253956}, '{"$dict":[[{"$tuple":["CA",2010]},37253956]]}'),
    ({"$tuple": [1]}, '{"$dict":[["$tuple",[1]]]}'),
    (2**64, '{"$int":"0x10000000000000000"}'),
    (Decimal("1.10"), '{"$decimal":"1.10"}'),
    (dt.date(2026, 11, 29), '{"$date":"2026-11-29"}'),
    (b"\x00\xff", '{"$bytes":"AP8="}'),
    ({3, 1, 2}, '{"$set":[1,2,3]}'),
    (-0.0, "-0.0"),
    ("a\x00b", '"a\\u0000b"'),
])
def test_the_documented_representations(value, text):
    assert codec.dumps(value) == text
    assert same(codec.loads(text), value)


def test_ints_past_the_digit_limit_and_deep_or_cyclic_values_never_raise():
    big = 7 ** 20000                                     # str(big) raises ValueError
    assert codec.loads(codec.dumps(big)) == big
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    assert isinstance(codec.loads(codec.dumps(deep)), list)
    cyclic: list = [1]
    cyclic.append(cyclic)
    assert codec.loads(codec.dumps(cyclic)) == [1, "[1, [...]]"]   # the cycle is kept as its repr, documented

    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr")
    assert "Hostile object" in codec.loads(codec.dumps([Hostile()]))[0]


@pytest.mark.parametrize("legacy, value", [
    ('{"x": "Infinity", "label": ""Infinity" War"}', {"x": float("inf"), "label": "Infinity War"}),
    ('[NaN, 1.5]', [float("nan"), 1.5]),                    # Python's own json wrote bare NaN
    ('["NaN", 1.5]', ["NaN", 1.5]),                         # valid JSON: read as it is (a string stays one)
    ("not json at all", "not json at all"),
])
def test_text_written_by_the_old_encoder_still_reads(legacy, value):
    assert same(codec.loads(legacy), value)


def test_migration_0006_rewrites_old_values_and_keeps_every_run_readable(tmp_path):
    """A store made before the encoding: the patched text that broke runs() for the whole store is
    repaired by the migration, and the new text is plain JSON."""
    path = tmp_path / "old.duckdb"
    for name, params in (("inf", {"x": {"x": float("inf"), "label": "Infinity War"}}), ("list", {"x": [1, 2]}),
                         ("big", {"x": 2**64})):
        with nbtrack.run(name, params=params, store=path):
            pass
    store = Store(path)
    with store.connect() as con:   # write what nbtrack 0.1 wrote, and forget the migration ran
        con.execute("UPDATE params SET value_json = '{\"x\": \"Infinity\", \"label\": \"\"Infinity\" War\"}' "
                    "WHERE key = 'x' AND vtype = 'json' AND value_json LIKE '%inf%'")
        con.execute("UPDATE params SET value_json = '18446744073709551616', vtype = 'int' WHERE vtype = 'bigint'")
        con.execute("DELETE FROM schema_migrations WHERE name = '0006_typed_values'")
    with store.connect() as con:
        stored = dict(con.execute("SELECT r.name, p.value_json FROM params p JOIN runs r USING (run_id) "
                                  "WHERE p.key = 'x'").fetchall())
        vtypes = dict(con.execute("SELECT r.name, p.vtype FROM params p JOIN runs r USING (run_id) "
                                  "WHERE p.key = 'x'").fetchall())
    assert stored["inf"] == '{"x":{"$float":"inf"},"label":"Infinity War"}'
    assert vtypes["big"] == "bigint" and stored["big"] == '{"$int":"0x10000000000000000"}'
    frame = nbtrack.runs(store=path).set_index("name")
    assert same(frame.at["inf", "params.x"], {"x": float("inf"), "label": "Infinity War"})
    assert frame.at["big", "params.x"] == 2**64 and frame.at["list", "params.x"] == [1, 2]
