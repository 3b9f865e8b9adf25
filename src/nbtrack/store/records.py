"""The spool record format: what a run looks like between the recorder and the DuckDB file.

A record is plain JSON so that a spool file is readable without nbtrack and a
retried import is exact. Encoding a Python value into the typed columns of
``params``/``values`` lives here, next to the Arrow schemas the importer uses.
"""
from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

RUN_FIELDS = (
    "run_id", "experiment", "name", "status", "kind", "started_at", "ended_at", "duration_s",
    "cpu_s", "peak_rss_mb", "tags", "command", "cell_id", "execution_count", "source_hash",
    "source_path", "notebook", "env_id", "git_commit", "git_branch", "git_dirty", "session_id",
    "kernel_id", "host", "user", "pid", "proc_start", "error_type", "error_message", "traceback",
    "redacted", "checked_against", "repeat_group", "repeat_index", "rng", "provenance", "sweep_id",
)

_S, _F, _I, _B = pa.string(), pa.float64(), pa.int64(), pa.bool_()
SCHEMAS: dict[str, pa.Schema] = {
    "runs": pa.schema([
        ("run_id", _S), ("seq", _I), ("experiment", _S), ("name", _S), ("status", _S), ("kind", _S),
        ("started_at", _F), ("ended_at", _F), ("duration_s", _F), ("cpu_s", _F), ("peak_rss_mb", _F),
        ("tags", pa.list_(_S)), ("command", _S), ("cell_id", _S), ("execution_count", _I),
        ("source_hash", _S), ("source_path", _S), ("notebook", _S), ("env_id", _S),
        ("git_commit", _S), ("git_branch", _S), ("git_dirty", _B), ("session_id", _S),
        ("kernel_id", _S), ("host", _S), ("user", _S), ("pid", _I), ("proc_start", _I),
        ("error_type", _S), ("error_message", _S), ("traceback", _S), ("redacted", pa.list_(_S)),
        ("checked_against", _S), ("repeat_group", _S), ("repeat_index", _I), ("rng", _S), ("provenance", _S),
        ("sweep_id", _S),
    ]),
    "params": pa.schema([("run_id", _S), ("key", _S), ("kind", _S), ("vtype", _S),
                         ("value_json", _S), ("value_num", _F), ("value_text", _S)]),
    "values": pa.schema([("run_id", _S), ("key", _S), ("vtype", _S),
                         ("value_json", _S), ("value_num", _F), ("value_text", _S)]),
    "metrics": pa.schema([("run_id", _S), ("key", _S), ("value", _F), ("step", _I), ("source", _S)]),
    "inputs": pa.schema([("run_id", _S), ("name", _S), ("type", _S), ("hash", _S), ("hash_method", _S),
                         ("shape", _S), ("length", _I), ("dtype", _S), ("summary", _S)]),
    "outputs": pa.schema([("run_id", _S), ("name", _S), ("change", _S), ("type", _S), ("hash", _S),
                          ("hash_method", _S), ("shape", _S), ("length", _I), ("dtype", _S),
                          ("summary", _S), ("artifact", _S), ("artifact_format", _S)]),
    "displays": pa.schema([("run_id", _S), ("seq", _I), ("kind", _S), ("mime", _S), ("artifact", _S),
                           ("size", _I), ("truncated", _B)]),
}
POINTS_SCHEMA = pa.schema([("key", pa.dictionary(pa.int32(), _S)), ("step", _I), ("value", _F)])


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if isinstance(obj, tuple):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return repr(obj)


def to_json(value: Any) -> str:
    """JSON text for a value; NaN/inf become strings (JSON has neither) so any reader can parse it."""
    try:
        return json.dumps(value, default=_default, allow_nan=False)
    except ValueError:
        return json.dumps(value, default=_default, allow_nan=True).replace("NaN", '"NaN"') \
            .replace("-Infinity", '"-Infinity"').replace("Infinity", '"Infinity"')


def encode_value(value: Any) -> dict[str, Any]:
    """Split a scalar or literal container into the typed columns of params/values."""
    if value is None:
        return {"vtype": "none", "value_json": "null", "value_num": None, "value_text": None}
    if isinstance(value, bool):
        return {"vtype": "bool", "value_json": "true" if value else "false",
                "value_num": float(value), "value_text": None}
    if isinstance(value, int):
        num = float(value) if abs(value) < 2**63 else None
        return {"vtype": "int", "value_json": str(value), "value_num": num, "value_text": None}
    if isinstance(value, float):
        return {"vtype": "float", "value_json": to_json(value), "value_num": value, "value_text": None}
    if isinstance(value, str):
        return {"vtype": "str", "value_json": json.dumps(value), "value_num": None, "value_text": value}
    return {"vtype": "json", "value_json": to_json(value), "value_num": None, "value_text": None}


def decode_value(vtype: str, value_json: str | None, value_num: float | None, value_text: str | None) -> Any:
    """Inverse of encode_value."""
    if vtype == "none" or value_json is None:
        return None
    if vtype == "bool":
        return value_json == "true"
    if vtype == "int":
        return int(value_json)
    if vtype == "float":
        return value_num if value_num is not None else float(json.loads(value_json))
    if vtype == "str":
        return value_text
    return json.loads(value_json)
