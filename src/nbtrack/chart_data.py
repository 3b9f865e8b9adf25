"""The runs as every chart and the panel's table take them (``chart_frame``), and what the charts read
from such a frame: each column's Vega-Lite type, the params that vary, sensible default axes. Apart from
plots.py, which builds the charts' specs from it; the report (markdown.py) and the panel use it too."""
from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

GROUPS = ("params", "metrics", "values")
PREPARED = "nbtrack.chart_frame"   # a frame chart_frame() made: the charts take it as it is
TIME_COLUMNS = ("started_at", "ended_at")


def shown_names(runs: pd.DataFrame) -> pd.Series:
    """Each run's label (``nbtrack.rename``) where it has one, else its name."""
    names = runs["name"].astype(str)
    if "label" not in runs:
        return names
    labels = runs["label"]
    return labels.where(labels.notna() & (labels.astype(str) != ""), names).astype(str)


def chart_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs as charts and the panel take them: a ``label`` per run, text for tags, lists and dicts,
    milliseconds since the epoch for times, ``None`` for missing values."""
    frame = runs.copy()
    ids = frame["run_id"].astype(str)
    shown = shown_names(frame) + " · " + ids.str[:8]
    # "label" is the charts' name for a run (name · id); the label a user gave it (rename) is run_label
    frame = frame.rename(columns={"label": "run_label"})
    frame.insert(1, "label", shown)
    frame["tags"] = [", ".join(map(str, t)) if isinstance(t, (list, tuple)) else "" for t in frame["tags"]]
    for col in TIME_COLUMNS:   # milliseconds since the epoch: what Vega takes, and cheap to send
        if col in frame:
            times = pd.to_datetime(frame[col], utc=True)
            frame[col] = (times - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)
    for col in frame.columns:
        if frame[col].dtype == object and any(isinstance(v, (dict, list, tuple, float)) for v in frame[col]):
            frame[col] = [_plain(v) for v in frame[col]]
    frame.attrs[PREPARED] = True   # pandas keeps attrs through filtering and column selection
    return frame


def _plain(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def column_kind(series: pd.Series) -> str:
    """The Vega-Lite type of a column: quantitative, nominal or temporal."""
    if series.name in TIME_COLUMNS:
        return "temporal"
    if pd.api.types.is_bool_dtype(series):
        return "nominal"
    if pd.api.types.is_numeric_dtype(series):
        return "quantitative"
    return "nominal"


def varying(frame: pd.DataFrame, prefix: str) -> list[str]:
    """Columns of a group (``params``, ``metrics``) that take more than one value, most varied first."""
    cols = [c for c in frame.columns if c.startswith(prefix + ".")]
    counts = {c: frame[c].nunique(dropna=False) for c in cols}
    # the cell's own params before those a capturer found in objects (their keys hold a dot)
    return sorted((c for c in cols if counts[c] > 1), key=lambda c: ("." in c[len(prefix) + 1:], -counts[c], c))


def default_metric(frame: pd.DataFrame, key_counts: dict[str, dict[str, int]] | None = None) -> str | None:
    """The metric most runs have (logged ones first among equals); ``sys.*`` curves last."""
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    if not metrics:
        return None

    def rank(col: str) -> tuple[int, int, int, str]:
        key = col[len("metrics."):]
        logged = (key_counts or {}).get(key, {}).get("logged", 0)
        return (key.startswith("sys."), -int(frame[col].notna().sum()), -logged, col)

    return min(metrics, key=rank)


def defaults(frame: pd.DataFrame, key_counts: dict[str, dict[str, int]] | None = None) -> dict[str, str | None]:
    """Sensible axes: y the metric most runs have, x the param that varies most, colour the next one."""
    y = default_metric(frame, key_counts)
    params = varying(frame, "params")
    if params:
        x = params[0]
    else:
        x = "started_at" if "started_at" in frame else None
    color = params[1] if len(params) > 1 else ("name" if frame["name"].nunique() > 1 else None)
    return {"x": x, "y": y, "color": color}


def check_fields(frame: pd.DataFrame, *names: str | None) -> None:
    unknown = [n for n in names if n and n not in frame.columns]
    if unknown:
        cols = [c for c in frame.columns if c.startswith(GROUPS)]
        hint = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
        raise KeyError(f"no column {unknown[0]!r} in these runs; columns: {hint or 'none'} "
                       "(name params and metrics with their prefix, e.g. 'params.lr', 'metrics.acc')")
