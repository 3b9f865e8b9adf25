"""The runs table written out: JSON records (``nbtrack runs --json``, ``export --format json``), CSV and
Parquet, with one stated representation per type (docs/guide.md's "How values are stored" table).

``runs()`` gives Python values; JSON has no NaN, tuples or decimals, CSV has only text, and a Parquet
column has one type. So: JSON writes a value with codec.py's encoding (plain JSON where the value is
plain, ``{"$tuple": [...]}`` and the like where it is not); CSV writes text as it is, numbers and
booleans as Python writes them, anything else as that same JSON; Parquet keeps a column's native type
where every value has it and writes the JSON text otherwise, naming those columns in its metadata.
A float column of ``runs()`` cannot tell a run without the key from a NaN value (both are NaN): such a
cell is null in JSON and empty in CSV; ``nbtrack.get()`` tells them apart.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .store import codec

JSON_COLUMNS_KEY = b"nbtrack.json_columns"   # Parquet metadata: columns holding codec JSON text
TIME_COLUMNS = ("started_at", "ended_at")


def _plain(value: Any) -> Any:
    """A pandas cell as a Python value (numpy scalars, NaT and NA as None)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        return item()
    return value


def _is_float_column(series: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(series.dtype)


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-ready dict per run."""
    records = []
    floats = {c for c in frame.columns if _is_float_column(frame[c])}
    for row in frame.itertuples(index=False, name=None):
        record = {}
        for column, value in zip(frame.columns, row):
            value = _plain(value)
            if column in TIME_COLUMNS:
                record[column] = None if value is None else pd.Timestamp(value).isoformat()
            elif column == "tags":
                record[column] = [codec.text_safe(str(t)) for t in (value if value is not None else [])]
            elif column in floats and isinstance(value, float) and math.isnan(value):
                record[column] = None
            else:
                record[column] = codec.encode(value)
        records.append(record)
    return records


def dumps_records(frame: pd.DataFrame) -> str:
    """The records as JSON text: UTF-8 where it can be, escapes where a string holds a lone surrogate."""
    records = json_records(frame)
    text = json.dumps(records, indent=1, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(records, indent=1, ensure_ascii=True, allow_nan=False)
    return text


def csv_text(value: Any) -> str:
    """A value as CSV text: text as it is, numbers and booleans as Python writes them, empty for None,
    anything else as its JSON (codec.py)."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return codec.text_safe(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and -codec.INT64 <= value < codec.INT64:
        return str(value)
    return codec.dumps(value)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    floats = {c for c in frame.columns if _is_float_column(frame[c])}
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        series = frame[column]
        if column in TIME_COLUMNS:
            out[column] = [None if _plain(v) is None else pd.Timestamp(v).isoformat() for v in series]
        elif column == "tags":
            out[column] = [codec.dumps([str(t) for t in (v if v is not None else [])]) for v in series]
        elif column in floats:
            out[column] = ["" if math.isnan(v) else repr(float(v)) for v in series]
        else:
            out[column] = [csv_text(v) for v in series]
    # every field quoted: a carriage return in a name or a tag must not end a row
    out.to_csv(path, index=False, encoding="utf-8", quoting=csv.QUOTE_ALL)


def _native(series: pd.Series) -> bool:
    """Whether Parquet can hold this object column as text, as it is."""
    for value in series:
        value = _plain(value)
        if value is None:
            continue
        if not isinstance(value, str):
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = frame.copy()
    encoded = []
    for column in out.columns:
        dtype = out[column].dtype
        if column in ("tags", *TIME_COLUMNS) or pd.api.types.is_bool_dtype(dtype) \
                or pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype) \
                or ((dtype == object or pd.api.types.is_string_dtype(dtype)) and _native(out[column])):
            continue
        out[column] = [None if _plain(v) is None else codec.dumps(_plain(v)) for v in out[column]]
        encoded.append(column)
    table = pa.Table.from_pandas(out, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[JSON_COLUMNS_KEY] = json.dumps(encoded).encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A Parquet file written by ``write_parquet``, with its JSON columns decoded."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    frame = table.to_pandas()
    for column in json.loads((table.schema.metadata or {}).get(JSON_COLUMNS_KEY, b"[]")):
        frame[column] = pd.Series([codec.loads(v) if isinstance(v, str) else None for v in frame[column]],
                                  index=frame.index, dtype=object)
    return frame
