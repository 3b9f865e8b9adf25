"""The spool record format: what a run looks like between the recorder and the DuckDB file.

A record is plain JSON so that a spool file is readable without nbtrack and a
retried import is exact. Encoding a Python value into the typed columns of
``params``/``values`` lives here, next to the Arrow schemas the importer uses;
the value itself is written by codec.py.
"""
from __future__ import annotations

from typing import Any

from . import codec

# A run's status. Its lifecycle: RUNNING when it starts, then FINISHED, FAILED (an exception) or INTERRUPTED
# (KeyboardInterrupt) when it ends; a run whose process ended first stays RUNNING until an importer on its
# host marks it CRASHED (importer.py).
RUNNING, FINISHED, FAILED, INTERRUPTED, CRASHED = "running", "finished", "failed", "interrupted", "crashed"
STATUSES = (RUNNING, FINISHED, FAILED, INTERRUPTED, CRASHED)
# display MIME types stored as bytes (the rest are text)
BINARY_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "application/pdf")

RUN_FIELDS = (
    "run_id", "experiment", "name", "status", "kind", "started_at", "ended_at", "duration_s",
    "cpu_s", "peak_rss_mb", "tags", "command", "cell_id", "execution_count", "source_hash",
    "source_path", "notebook", "env_id", "git_commit", "git_branch", "git_dirty", "session_id",
    "kernel_id", "host", "user", "pid", "proc_start", "error_type", "error_message", "traceback",
    "redacted", "checked_against", "repeat_group", "repeat_index", "rng", "provenance", "sweep_id",
)

def __getattr__(name: str) -> Any:
    """SCHEMAS, ENV_SCHEMA and POINTS_SCHEMA, made on first use: building them imports pyarrow, which
    `import nbtrack` leaves for the first run that needs it."""
    if name not in ("SCHEMAS", "ENV_SCHEMA", "POINTS_SCHEMA"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import pyarrow as pa

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
    ENV_SCHEMA = pa.schema([("env_id", _S), ("python", _S), ("implementation", _S), ("platform", _S), ("machine", _S),
                            ("packages", _S), ("created_at", _F)])
    POINTS_SCHEMA = pa.schema([("key", pa.dictionary(pa.int32(), _S)), ("step", _I), ("value", _F)])
    globals().update(SCHEMAS=SCHEMAS, ENV_SCHEMA=ENV_SCHEMA, POINTS_SCHEMA=POINTS_SCHEMA)
    return globals()[name]


def encode_value(value: Any) -> dict[str, Any]:
    """A param or value as the typed columns of ``params``/``values``: ``value_json`` always holds it
    exactly (codec.py); ``value_num``/``value_text`` are for SQL and filters; ``vtype`` names the type."""
    np_item = getattr(value, "item", None)
    if np_item is not None and type(value).__module__ == "numpy":
        try:
            value = np_item()
        except Exception:
            pass
    text = codec.dumps(value)
    num: float | None = None
    plain: str | None = None
    if value is None:
        vtype = "none"
    elif isinstance(value, bool):
        vtype, num = "bool", float(value)
    elif isinstance(value, int):
        vtype = "int" if -codec.INT64 <= value < codec.INT64 else "bigint"
        num = _as_float(value)
    elif isinstance(value, float):
        vtype, num = "float", float(value)
    elif isinstance(value, str):
        plain = codec.text_safe(value)
        vtype = "str" if plain == value else "json"   # a lone surrogate: only value_json holds it exactly
    else:
        vtype, num, plain = codec.scalar_columns(value)
    return {"vtype": vtype, "value_json": text, "value_num": num, "value_text": plain}


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (OverflowError, ValueError, TypeError):
        return None


def decode_value(vtype: str, value_json: str | None, value_num: float | None, value_text: str | None) -> Any:
    """Inverse of encode_value."""
    if vtype == "none" or value_json is None:
        return None
    if vtype == "bool":
        return value_json == "true"
    if vtype == "float" and value_num is not None and value_num != 0:
        return value_num   # a zero is read from the text: DuckDB's storage may drop the sign of -0.0
    if vtype == "str" and value_text is not None:
        return value_text
    if vtype == "int":
        try:
            return int(value_json)
        except ValueError:
            pass
    return codec.loads(value_json)
