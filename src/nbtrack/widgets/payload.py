"""What the compare panel sends its page: the runs table as columns (numbers as float64 buffers), and
rows for the charts. Shared by the whole panel (compare.py) and the paged one (paged.py)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import chart_data
from ..store import Store

DEFAULT_CURVE_RUNS = 5     # curves shown while nothing is selected: the latest runs that logged points
MAX_CURVE_RUNS = 50
HIDDEN = ("label", "run_label", "ended_at")   # for the charts and the name cell; the table has name, run_id, started_at


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _column(series: pd.Series, kind: str) -> Any:
    """Numbers as one binary float64 buffer (NaN for missing: no JSON to build or parse for the bulk
    of the table); other values as a JSON list with ``None`` for missing."""
    if kind in ("number", "time"):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return memoryview(np.where(np.isfinite(values), values, np.nan).astype("<f8"))
    try:
        return pa.array(series, from_pandas=True).to_pylist()
    except (pa.ArrowException, TypeError, ValueError):  # mixed types: one value at a time
        return [_clean(v) for v in series.tolist()]


def table_payload(frame: pd.DataFrame, store: Store, kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """The table as columns (one list or buffer per column: far smaller than one object per row);
    ``kinds`` fixes a column's kind where one page of rows could not tell it (a paged table)."""
    columns, data = [], {}
    for name in frame.columns:
        group, _, key = name.partition(".")
        if group not in chart_data.GROUPS:
            group, key = "run", name
        series = frame[name]
        if kinds and name in kinds:
            kind = kinds[name]
        elif name in chart_data.TIME_COLUMNS:
            kind = "time"   # milliseconds since the epoch (chart_frame)
        elif pd.api.types.is_bool_dtype(series):
            kind = "bool"
        elif pd.api.types.is_numeric_dtype(series):
            kind = "number"
        else:
            kind = "text"
        # a capturer's params (model.max_depth) and sys.* curves: in the column picker, not shown first
        extra = (group == "params" and "." in key) or (group == "metrics" and key.startswith("sys."))
        columns.append({"name": name, "group": group, "key": key, "kind": kind, "hidden": name in HIDDEN or extra})
        data[name] = _column(series, kind)
    return {"columns": columns, "data": data, "n": len(frame), "store": str(store.path)}
