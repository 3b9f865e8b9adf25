"""A comparison as Markdown to paste into a pull request or a wiki (``nbtrack report --format md``): a
table of the runs, what differs between them, and the charts as PNG images in a folder beside it,
rendered offline by vl-convert (no browser, no network).

Every text from the store is escaped: Markdown renderers pass raw HTML through, and a run named
``<img src=x onerror=...>`` must show as those characters.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from . import chart_data, plots
from .errors import NbtrackError
from .version import __version__

MAX_ROWS = 50        # runs in the table: the rest are counted, and every run is in the charts
MAX_COLUMNS = 12     # varying params and metrics in the table
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def text(value: Any) -> str:
    """A value as inert Markdown text, one line: Markdown's special characters backslash-escaped,
    HTML's as entities (which no renderer turns back into tags)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        value = f"{value:.6g}"
    out = " ".join(str(value).split())
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", out)


def write(runs: pd.DataFrame, path: str | Path, *, title: str | None = None, store: Any = None,
          where: str | None = None) -> list[Path]:
    """Write the Markdown report and its images; return every file written."""
    try:
        import vl_convert
    except ImportError:
        raise NbtrackError("a Markdown report renders its charts with vl-convert: pip install vl-convert-python "
                           "(or nbtrack[report])") from None
    out = Path(path)
    folder = out.with_name(out.stem + "_files")
    folder.mkdir(parents=True, exist_ok=True)
    frame = chart_data.chart_frame(runs)
    axes = chart_data.defaults(frame) if len(frame) else {"x": None, "y": None, "color": None}
    charts: dict[str, Any] = {}
    if len(frame) and axes["y"]:
        charts["scatter"] = plots.scatter(frame, axes["x"], axes["y"], axes["color"])
        charts["parallel"] = plots.parallel(frame, metric=axes["y"])
        charts["bars"] = plots.bars(frame, metric=axes["y"])
    logged = [str(i) for i in runs["run_id"]][-5:]
    if len(frame):
        points = plots.curve_points(logged, store=store)
        if len(points):
            charts["curves"] = plots.curves(data=points)
    written = []
    images = []
    for name, chart in charts.items():
        png = vl_convert.vegalite_to_png(chart.to_dict(), scale=1)
        file = folder / f"{name}.png"
        file.write_bytes(png)
        written.append(file)
        images.append(f"![{name}]({folder.name}/{name}.png)")
    lines = [f"# {text(title or f'{len(runs)} runs')}", "",
             f"{len(runs)} runs{f' where {text(where)}' if where else ''}, written by nbtrack {__version__} on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", ""]
    lines += _table(runs, frame)
    lines += _differs(frame)
    if images:
        lines += ["## Charts", ""] + [f"{image}\n" for image in images]
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return [out, *written]


def _columns(frame: pd.DataFrame) -> list[str]:
    varying = chart_data.varying(frame, "params")
    metrics = [c for c in frame.columns if c.startswith("metrics.") and not c.startswith("metrics.sys.")]
    return (varying + metrics)[:MAX_COLUMNS]


def _table(runs: pd.DataFrame, frame: pd.DataFrame) -> list[str]:
    if not len(runs):
        return ["No runs.", ""]
    columns = _columns(frame)
    head = ["run", "status", *(c.split(".", 1)[1] for c in columns)]
    lines = ["| " + " | ".join(text(h) for h in head) + " |", "|" + "---|" * len(head)]
    shown = runs.tail(MAX_ROWS)
    for _, row in shown.iterrows():
        name = row.get("label") if isinstance(row.get("label"), str) and row.get("label") else row["name"]
        cells = [f"{text(name)} `{str(row['run_id'])[:8]}`", text(row["status"]), *(text(row.get(c)) for c in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    if len(runs) > MAX_ROWS:
        lines.append(f"\n{len(runs) - MAX_ROWS} earlier runs are not in the table (they are in the charts).")
    return lines + [""]


def _differs(frame: pd.DataFrame) -> list[str]:
    lines = []
    for column in chart_data.varying(frame, "params"):
        values = sorted({text(v) for v in frame[column] if v is not None}, key=str)
        lines.append(f"- **{text(column.split('.', 1)[1])}**: {', '.join(values[:20])}"
                     f"{f' and {len(values) - 20} more' if len(values) > 20 else ''}")
    for column in [c for c in frame.columns if c.startswith("metrics.") and not c.startswith("metrics.sys.")]:
        numbers = pd.to_numeric(frame[column], errors="coerce").dropna()
        if len(numbers) and numbers.min() != numbers.max():
            lines.append(f"- **{text(column.split('.', 1)[1])}** ranges from {text(float(numbers.min()))} "
                         f"to {text(float(numbers.max()))}")
    return (["## What differs", "", *lines, ""] if lines else [])
