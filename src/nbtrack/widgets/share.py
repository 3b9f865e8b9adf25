"""A comparison anyone can open without Python: the compare panel saved as ONE self-contained HTML file
(``panel.save(path)``, ``nbtrack report``): the front-end bundle and the data inlined, working from
``file://`` with no kernel, server or network.

What the kernel computes for a live panel is precomputed here: the chart specs, every run's curves
(downsampled to fit a budget of points) and a curves spec per metric. The page computes the rest
itself: filtering, sorting, selection, and the diff of the selected runs (from the table's params,
metrics and values; the source diff needs the notebook).
"""
from __future__ import annotations

import base64
import html
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots
from ..store import curves, queries
from ..version import __version__
from .bundles import STATIC, require_bundle

if TYPE_CHECKING:
    from .compare import ComparePanel

POINT_BUDGET = 120_000   # curve points in one page: 1,000 runs with curves stay under ~3 MB
MIN_POINTS, MAX_POINTS = 50, 1000   # per series, within the budget
MAX_CURVE_KEYS = 30
# the synced traits the page starts from; curve_data and diff it derives itself (js/page.js)
TRAITS = ("table", "selected", "specs", "curve_keys", "curve_key", "x", "y", "color", "group", "renderer", "status")


def save(panel: ComparePanel, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write the panel as one HTML file; return its path."""

    require_bundle("page")
    state = page_state(panel, title)
    script = (STATIC / "page.js").read_text(encoding="utf-8")
    style = (STATIC / "compare.css").read_text(encoding="utf-8")
    name = title or f"nbtrack: {len(panel.runs)} runs"
    text = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<title>{html.escape(name)}</title>\n"
        # nothing may leave the page: no request of any kind, even if the bundle tried one
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:\">\n"
        f"<style>{_raw_text(style)}\nbody {{ margin: 16px; }} .nbt-page-title {{ font: 600 16px system-ui, sans-serif; }}"
        " .nbt-page-meta { font: 12px system-ui, sans-serif; color: #666; margin-bottom: 8px; }</style>\n"
        "</head><body>\n"
        f"<div class=\"nbt-page-title\">{html.escape(name)}</div>\n"
        f"<div class=\"nbt-page-meta\">saved by nbtrack {html.escape(__version__)} on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from {html.escape(str(panel.store.path))}: "
        "a copy, not connected to the store</div>\n"
        "<div id=\"nbt-root\"></div>\n"
        f"<script type=\"application/json\" id=\"nbt-state\">{_json_in_html(state)}</script>\n"
        f"<script type=\"module\">{_raw_text(script)}</script>\n"
        "</body></html>\n")
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    return out


def page_state(panel: ComparePanel, title: str | None = None) -> dict[str, Any]:
    """What the page needs: the panel's synced traits, every run's curves and a curves spec per metric."""
    traits = {name: getattr(panel, name) for name in TRAITS}
    traits["table"] = _encode_table(traits["table"])
    ids = [str(i) for i in panel.runs["run_id"]]
    logged: list[str] = []
    if ids and panel.store.exists():
        with panel.store.connect() as con:
            logged = queries.logged_runs(con, ids)
    curves, specs, keys = _curves(panel, logged)
    return {"traits": traits, "curves": curves, "curve_specs": specs, "curve_keys": keys, "logged": logged,
            "title": title}


def _curves(panel: ComparePanel, logged: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    if not logged:
        return [], {}, []
    with panel.store.connect() as con:
        series = curves.curve_series_count(con, logged)
    per_series = max(MIN_POINTS, min(MAX_POINTS, POINT_BUDGET // max(series, 1)))
    points = plots.curve_points(logged, store=panel.store, max_points=per_series)
    keys = sorted(points["key"].unique())[:MAX_CURVE_KEYS]
    points = points[points["key"].isin(keys)]
    out = []
    for (run_id, key), rows in points.groupby(["run_id", "key"], sort=False):
        steps = rows["step"].to_numpy()
        small = steps.min() >= -2**31 and steps.max() < 2**31
        out.append({"run_id": run_id, "label": rows["label"].iloc[0], "key": key,
                    "steps": _b64(steps.astype("<i4" if small else "<f8")), "steps_type": "i4" if small else "f8",
                    "values": _b64(rows["value"].to_numpy(dtype="float64", na_value=np.nan).astype("<f4"))})
    specs = {k: plots.curves(data=points[points["key"] == k], keys=[k], named_data=True).to_dict(validate=False)
             for k in keys}
    specs["*"] = plots.curves(data=points, keys=keys, named_data=True).to_dict(validate=False)
    return out, specs, keys


def _encode_table(table: dict[str, Any]) -> dict[str, Any]:
    data = {name: {"$f64": _b64(bytes(v))} if isinstance(v, memoryview) else v for name, v in table["data"].items()}
    return {**table, "data": data}


def _b64(data: Any) -> str:
    return base64.b64encode(bytes(memoryview(data))).decode("ascii")


def _json_in_html(value: Any) -> str:
    """JSON that cannot end its <script> element or open a comment: every < is written \\u003c."""
    return json.dumps(value, allow_nan=False, default=str).replace("<", "\\u003c")


def _raw_text(text: str) -> str:
    """Script or style text that cannot end its element early: "</script" (inside a string of the
    bundle) written "<\\/script", which JavaScript reads the same in a string or a regular expression."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)
