"""Altair charts of runs: the panel's charts, usable on their own (public as ``nbtrack.charts``).

Each function takes the frame ``nbtrack.runs()`` returns (or queries the current
store) and returns a plain ``altair.Chart`` to customise, save or display. The
panel draws the very same specs, with the data named ``"runs"`` / ``"curves"``
and supplied by its front end, and a variable param ``selected_ids`` (the
selected run ids) that every chart uses to highlight the selection.

Column names such as ``params.lr`` hold a dot, which Vega-Lite reads as a
nested field: every field reference goes through :func:`field`.
"""
from __future__ import annotations

import json
from typing import Any

import altair as alt
import pandas as pd

from .chart_data import (GROUPS, PREPARED, TIME_COLUMNS, chart_frame, check_fields, column_kind, default_metric, defaults,
                         shown_names, varying)

RUNS_DATA = "runs"
CURVES_DATA = "curves"
SELECTED = "selected_ids"
_ANY_SELECTED = f"length({SELECTED}) > 0"
_IS_SELECTED = f"indexof({SELECTED}, datum.run_id) >= 0"
_SHOWN = f"!({_ANY_SELECTED}) || {_IS_SELECTED}"


def field(name: str) -> str:
    """A column name as a Vega-Lite field reference (dots and brackets are not nesting here)."""
    return name.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[").replace("]", "\\]")


def _js_string(text: str) -> str:
    return json.dumps(text)


def _datum(name: str) -> str:
    """A column of the current datum in a Vega expression."""
    return f"datum[{_js_string(name)}]"


def _frame(runs: pd.DataFrame | None, store: Any) -> pd.DataFrame:
    if runs is None:
        from .api import runs as all_runs

        runs = all_runs(store=store)
    if not runs.attrs.get(PREPARED):
        runs = chart_frame(runs)
    return runs


def _title(name: str) -> str:
    for prefix in GROUPS:
        if name.startswith(prefix + "."):
            return name[len(prefix) + 1:]
    return name


def _enc(channel: type, name: str, frame: pd.DataFrame, **kw: Any) -> Any:
    kind = column_kind(frame[name]) if name in frame else "nominal"
    if kind == "quantitative" and channel in (alt.X, alt.Y):
        values = frame[name].dropna()
        # a sweep over 1e-4 ... 1e-1 reads on a log axis; a linear one piles it into one corner
        spread = len(values) > 1 and (values > 0).all() and values.max() / values.min() >= 100
        kw.setdefault("scale", alt.Scale(type="log") if spread else alt.Scale(zero=False))
    return channel(field=field(name), type=kind, title=_title(name), **kw)


def _tooltip(frame: pd.DataFrame, names: list[str | None]) -> list[Any]:
    out = [alt.Tooltip(field="label", type="nominal", title="run")]
    for name in dict.fromkeys(n for n in names if n):
        if name in frame and name != "label":
            out.append(alt.Tooltip(field=field(name), type=column_kind(frame[name]), title=name))
    return out


def _when(channel: type, test: str, yes: Any, no: Any) -> Any:
    """A conditional value; built directly, it costs a fraction of ``alt.condition``'s schema search."""
    return channel(value=no, condition={"test": test, "value": yes})


def _fields(*names: str | None) -> list[str]:
    """The columns a chart reads: the panel sends the chart only these."""
    return list(dict.fromkeys(["run_id", "label", *(n for n in names if n)]))


def _selected_param() -> Any:
    return alt.param(name=SELECTED, value=[])


def _data(frame: pd.DataFrame, named: bool) -> Any:
    return alt.NamedData(name=RUNS_DATA) if named else frame


# -- the charts ------------------------------------------------------------------------------------
def scatter(runs: pd.DataFrame | None = None, x: str | None = None, y: str | None = None,
            color: str | None = None, *, store: Any = None, named_data: bool = False) -> alt.Chart:
    """A metric against a param, one point per run; drag to brush, click to pick."""
    frame = _frame(runs, store)
    d = defaults(frame) if x is None or y is None or color is None else {}
    x, y = x or d["x"] or "started_at", y or d["y"] or "duration_s"
    color = color if color is not None else d["color"]
    check_fields(frame, x, y, color)
    brush_on = [c for c, n in (("x", x), ("y", y)) if n in frame and column_kind(frame[n]) == "quantitative"]
    enc: dict[str, Any] = {
        "x": _enc(alt.X, x, frame),
        "y": _enc(alt.Y, y, frame),
        "opacity": _when(alt.OpacityValue, _SHOWN, 0.9, 0.15),
        "size": _when(alt.SizeValue, f"{_ANY_SELECTED} && {_IS_SELECTED}", 140, 60),
        "tooltip": _tooltip(frame, [x, y, color, "status"]),
    }
    if color:
        enc["color"] = _enc(alt.Color, color, frame)
    chart = alt.Chart(_data(frame, named_data)).mark_point(filled=True, stroke="black", strokeWidth=0)
    chart = chart.encode(**enc).add_params(_selected_param())
    if brush_on:
        chart = chart.add_params(alt.selection_interval(name="brush", encodings=brush_on))
    return chart.properties(width=420, height=280, title=f"{_title(y)} vs {_title(x)}",
                            usermeta={"nbtrack": {"chart": "scatter", "x": x, "y": y, "color": color,
                                                  "fields": _fields(x, y, color, "status"),
                                                  "brush": brush_on}})


CELLS_DATA = "cells"


def density(cells: pd.DataFrame, x: str, y: str, logs: dict[str, bool], total: int, *,
            named_data: bool = False) -> alt.Chart:
    """The scatter of a panel too big to draw run by run: runs counted in the cells of a grid (``cells``
    from ``widgets.binning.bins``: edges and exact counts); a brush selects every run in it. ``named_data``:
    the data is left out, named ``"cells"``, for the caller to add as ``datasets`` (Altair would walk
    every cell's record one by one: a third of a second for 1,600 cells)."""
    def axis(channel: type, name: str) -> Any:
        kind = "temporal" if name in TIME_COLUMNS else "quantitative"
        scale = alt.Scale(type="log") if logs.get(name) else alt.Scale(zero=False)
        return channel(field=field(name), type=kind, bin="binned", title=_title(name), scale=scale)

    enc: dict[str, Any] = {
        "x": axis(alt.X, x), "x2": alt.X2(field=field(f"{x} (end)")),
        "y": axis(alt.Y, y), "y2": alt.Y2(field=field(f"{y} (end)")),
        "color": alt.Color(field="runs", type="quantitative", title="runs",
                           scale=alt.Scale(type="log", scheme="blues")),
        "tooltip": [alt.Tooltip(field="runs", type="quantitative", format=","),
                    alt.Tooltip(field=field(x), type="quantitative", title=f"{x} from"),
                    alt.Tooltip(field=field(y), type="quantitative", title=f"{y} from")],
    }
    chart = alt.Chart(alt.NamedData(name=CELLS_DATA) if named_data else cells).mark_rect().encode(**enc)
    chart = chart.add_params(_selected_param(), alt.selection_interval(name="brush", encodings=["x", "y"]))
    title = alt.TitleParams(f"{_title(y)} vs {_title(x)}",
                            subtitle=f"{total:,} runs counted in a grid (too many to draw one by one); "
                                     "brush to select every run inside")
    return chart.properties(width=420, height=280, title=title, usermeta={"nbtrack": {
        "chart": "scatter", "x": x, "y": y, "aggregated": True, "runs": int(total), "brush": ["x", "y"]}})


def parallel(runs: pd.DataFrame | None = None, params: list[str] | None = None, metric: str | None = None,
             *, store: Any = None, named_data: bool = False) -> alt.Chart:
    """Parallel coordinates: one line per run through each varying param into a metric.

    Each axis is scaled to its own range; categorical params are spread over their categories in order.
    """
    frame = _frame(runs, store)
    metric = metric or default_metric(frame)
    dims = list(params) if params is not None else varying(frame, "params")[:12]
    if metric:
        dims = [d for d in dims if d != metric] + [metric]
    check_fields(frame, *dims)
    calc: dict[str, str] = {}
    for i, name in enumerate(dims):
        if name in frame and column_kind(frame[name]) == "quantitative":
            calc[f"nbt_d{i}"] = f"toNumber({_datum(name)})"
        else:
            cats = sorted({str(v) for v in frame[name] if v is not None}) if name in frame else []
            calc[f"nbt_d{i}"] = f"indexof({json.dumps(cats)}, {_datum(name)} + '')"
    labels = {f"nbt_d{i}": name for i, name in enumerate(dims)}
    chart = alt.Chart(_data(frame, named_data)).transform_calculate(**calc)
    if dims:
        chart = chart.transform_fold(list(labels), as_=["nbt_key", "nbt_raw"])
    chart = chart.transform_filter("isValid(datum.nbt_raw) && isFinite(datum.nbt_raw) && datum.nbt_raw >= 0 "
                                   "|| datum.nbt_key == null")
    chart = chart.transform_joinaggregate(nbt_min="min(nbt_raw)", nbt_max="max(nbt_raw)", groupby=["nbt_key"])
    chart = chart.transform_calculate(
        nbt_value="datum.nbt_max > datum.nbt_min ? (datum.nbt_raw - datum.nbt_min) / "
                  "(datum.nbt_max - datum.nbt_min) : 0.5",
        nbt_axis=f"{json.dumps(labels)}[datum.nbt_key]")
    enc: dict[str, Any] = {
        "x": alt.X(field="nbt_axis", type="nominal", sort=dims, title=None,
                   axis=alt.Axis(labelAngle=0, labelExpr="replace(datum.label, /^(params|metrics)\\./, '')")),
        "y": alt.Y(field="nbt_value", type="quantitative", axis=None),
        "detail": alt.Detail(field="run_id", type="nominal"),
        "opacity": _when(alt.OpacityValue, _SHOWN, 0.8, 0.08),
        "strokeWidth": _when(alt.StrokeWidthValue, f"{_ANY_SELECTED} && {_IS_SELECTED}", 3, 1.5),
        "tooltip": _tooltip(frame, dims),
    }
    if metric:
        enc["color"] = _enc(alt.Color, metric, frame)
    chart = chart.mark_line().encode(**enc).add_params(_selected_param())
    return chart.properties(width=560, height=280, title="params → " + (_title(metric) if metric else "runs"),
                            usermeta={"nbtrack": {"chart": "parallel", "dims": dims, "metric": metric,
                                                  "fields": _fields(*dims)}})


def bars(runs: pd.DataFrame | None = None, metric: str | None = None, group: str | None = None,
         *, store: Any = None, named_data: bool = False) -> alt.LayerChart:
    """A metric per group (default: run name, else the param that varies most): mean bar, one point per
    run, and the spread (mean ± std) where a group has repeats."""
    frame = _frame(runs, store)
    metric = metric or default_metric(frame) or "duration_s"
    if group is None:
        params = varying(frame, "params")
        group = "name" if frame["name"].nunique() > 1 or not params else params[0]
    check_fields(frame, metric, group)
    x = alt.X(field=field(group), type="nominal", title=_title(group), sort=None)
    y = alt.Y(field=field(metric), type="quantitative", title=_title(metric))
    base = alt.Chart(_data(frame, named_data))
    bar = base.mark_bar(opacity=0.35).encode(x=x, y=alt.Y(field=field(metric), type="quantitative",
                                                          aggregate="mean", title=_title(metric)))
    spread = base.mark_errorbar(extent="stdev", ticks=True).encode(x=x, y=y)
    points = base.mark_circle(size=50).encode(
        x=x, y=y, color=_when(alt.ColorValue, f"{_ANY_SELECTED} && {_IS_SELECTED}", "#e45756", "#4c78a8"),
        opacity=_when(alt.OpacityValue, _SHOWN, 0.9, 0.2),
        tooltip=_tooltip(frame, [group, metric]),
    ).add_params(_selected_param())
    repeats = bool(frame.groupby(frame[group].astype(str))[metric].count().gt(1).any()) if len(frame) else False
    layers = [bar, spread, points] if repeats else [bar, points]
    return alt.layer(*layers).properties(
        width=420, height=280, title=f"{_title(metric)} per {_title(group)}",
        usermeta={"nbtrack": {"chart": "bars", "metric": metric, "group": group, "repeats": repeats,
                              "fields": _fields(group, metric)}})


def curves(runs: pd.DataFrame | list[str] | None = None, keys: list[str] | None = None, *,
           store: Any = None, data: pd.DataFrame | None = None, named_data: bool = False) -> alt.Chart:
    """Step curves (``nbtrack.log`` history) of runs, one colour per run, one panel per metric.

    ``runs`` is a runs frame or a list of run ids; ``data`` the points if already queried
    (columns ``run_id, label, key, step, value``). Series are downsampled in DuckDB to about
    1,000 points, keeping each bucket's minimum and maximum so spikes survive.
    """
    if data is None:
        data = curve_points(runs, keys, store=store)
    if not keys:
        keys = sorted(data["key"].unique()) if len(data) else []
    chart = alt.Chart(alt.NamedData(name=CURVES_DATA) if named_data else data)
    chart = chart.mark_line(interpolate="linear", point=False, clip=True).encode(
        x=alt.X(field="step", type="quantitative"),
        y=alt.Y(field="value", type="quantitative", scale=alt.Scale(zero=False), title=None),
        color=alt.Color(field="label", type="nominal", title="run"),
        detail=alt.Detail(field="run_id", type="nominal"),
        opacity=_when(alt.OpacityValue, _SHOWN, 1.0, 0.25),
        tooltip=[alt.Tooltip(field="label", type="nominal", title="run"),
                 alt.Tooltip(field="key", type="nominal", title="metric"),
                 alt.Tooltip(field="step", type="quantitative"), alt.Tooltip(field="value", type="quantitative")],
    ).add_params(_selected_param())
    meta = {"nbtrack": {"chart": "curves", "keys": list(keys)}}
    if len(keys) > 1:
        return chart.properties(width=300, height=200).facet(
            facet=alt.Facet(field="key", type="nominal", title=None), columns=2
        ).resolve_scale(y="independent").properties(usermeta=meta)
    return chart.properties(width=560, height=280, title=keys[0] if keys else "no curves logged", usermeta=meta)


def curve_points(runs: pd.DataFrame | list[str] | None, keys: list[str] | None = None, *, store: Any = None,
                 max_points: int = 1000) -> pd.DataFrame:
    """Downsampled logged points of runs: ``run_id, label, key, step, value``."""
    from .api import resolve_store
    from .recorder.session import session
    from .store import curves as stored, queries

    st = resolve_store(store)
    session.syncer.flush()
    if runs is None:
        from .api import runs as all_runs

        runs = all_runs(store=st)
    labels: dict[str, str] = {}
    if isinstance(runs, pd.DataFrame):
        ids = [str(i) for i in runs["run_id"]]
        labels = {str(i): f"{n} · {str(i)[:8]}" for i, n in zip(runs["run_id"], shown_names(runs))}
    else:
        ids = [str(i) for i in runs]
    if not st.exists() or not ids:
        return pd.DataFrame(columns=["run_id", "label", "key", "step", "value"])
    with st.connect() as con:
        points = stored.curves(con, ids, keys, max_points)
        missing = sorted(set(points["run_id"]) - set(labels))
        if missing:
            labels.update(queries.run_labels(con, missing))
    points.insert(1, "label", points["run_id"].map(labels))
    return points


__all__ = ["scatter", "parallel", "curves", "bars", "curve_points", "lineage_chart", "field"]


def lineage_chart(graph: Any) -> alt.LayerChart:
    """A lineage graph (``nbtrack.lineage(run)``): runs left to right by generation, links labelled
    with the input they carry; the run asked about is drawn larger."""
    depth: dict[str, int] = {}
    order = sorted(graph.nodes, key=lambda i: (str(graph.nodes[i].get("started_at")), i))
    for rid in order:   # producers start before their consumers, so one pass in time order suffices
        parents = [p for p, c, _ in graph.edges if c == rid and p in depth]
        depth[rid] = 1 + max((depth[p] for p in parents), default=-1)
    rows: dict[int, int] = {}
    nodes = []
    for rid in order:
        d = depth[rid]
        rows[d] = rows.get(d, -1) + 1
        node = graph.nodes[rid]
        nodes.append({"run_id": rid, "label": f"{node['name']} · {rid[:8]}", "x": d, "y": rows[d],
                      "status": node.get("status"), "focus": rid == graph.run_id})
    pos = {n["run_id"]: n for n in nodes}
    links = [{"x": pos[p]["x"], "y": pos[p]["y"], "x2": pos[c]["x"], "y2": pos[c]["y"], "input": name,
              "mx": (pos[p]["x"] + pos[c]["x"]) / 2, "my": (pos[p]["y"] + pos[c]["y"]) / 2}
             for p, c, name in graph.edges if p in pos and c in pos]
    node_data = pd.DataFrame(nodes, columns=["run_id", "label", "x", "y", "status", "focus"])
    link_data = pd.DataFrame(links, columns=["x", "y", "x2", "y2", "input", "mx", "my"])
    xs = alt.X(field="x", type="quantitative", axis=None, scale=alt.Scale(padding=60))
    ys = alt.Y(field="y", type="quantitative", axis=None, scale=alt.Scale(padding=30, reverse=True))
    edges = alt.Chart(link_data).mark_rule(color="#999", strokeWidth=1.5).encode(
        x=xs, y=ys, x2=alt.X2(field="x2"), y2=alt.Y2(field="y2"))
    edge_labels = alt.Chart(link_data).mark_text(color="#666", dy=-6, fontSize=10).encode(
        x=alt.X(field="mx", type="quantitative", axis=None, scale=alt.Scale(padding=60)),
        y=alt.Y(field="my", type="quantitative", axis=None, scale=alt.Scale(padding=30, reverse=True)),
        text=alt.Text(field="input", type="nominal"))
    points = alt.Chart(node_data).mark_circle().encode(
        x=xs, y=ys, size=alt.Size(field="focus", type="nominal", scale=alt.Scale(domain=[False, True],
                                                                               range=[120, 400]), legend=None),
        color=alt.Color(field="status", type="nominal", title="status"),
        tooltip=[alt.Tooltip(field="label", type="nominal", title="run"),
                 alt.Tooltip(field="status", type="nominal")])
    labels = alt.Chart(node_data).mark_text(dy=16, fontSize=11).encode(
        x=xs, y=ys, text=alt.Text(field="label", type="nominal"))
    width = 160 * (max(depth.values(), default=0) + 1)
    height = 60 * (max(rows.values(), default=0) + 1)
    return alt.layer(edges, edge_labels, points, labels).properties(
        width=width, height=height, title=f"lineage of {graph.run_id[:8]}")
