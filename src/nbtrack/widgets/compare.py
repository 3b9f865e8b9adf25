"""The compare panel: one anywidget that draws the runs table, the charts and the diff (js/compare.js).

One widget per panel on purpose: anywidget sends the front-end bundle with every widget instance,
so a panel built from many small widgets would ship it many times and bloat saved notebooks.
"""
from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import pyarrow as pa
import traitlets

from .. import curate, plots
from ..errors import NbtrackError
from ..api import resolve_store, run_from_detail
from ..diff import diff_many
from ..recorder.run import ActiveRun
from ..recorder.session import session
from ..store import Store, queries
from .live import hub
from ..store.records import RUNNING

STATIC = Path(__file__).resolve().parent.parent / "static"
DEFAULT_CURVE_RUNS = 5     # curves shown while nothing is selected: the latest runs that logged points
MAX_CURVE_RUNS = 50
MAX_DIFF_RUNS = 8
HIDDEN = ("label", "run_label", "ended_at")   # for the charts and the name cell; the table has name, run_id, started_at
EDITS = {"tag": curate.tag, "untag": curate.untag, "rename": curate.rename, "note": curate.note, "star": curate.star,
         "delete": curate.delete, "restore": curate.restore}   # what the page may ask for


class ComparePanel(anywidget.AnyWidget):
    """Runs side by side: table, scatter, parallel coordinates, curves, bars and a diff.

    ``selected`` is the list of selected run ids (set it, or ``observe`` it); ``selected_runs`` their
    rows of ``nbtrack.runs()``. The panel follows the store: new runs appear without re-running it.
    """

    _esm = STATIC / "compare.js"
    _css = STATIC / "compare.css"

    # synced to the page; js/compare.js documents each one (typedef CompareModel), a test keeps them in step
    table = traitlets.Dict().tag(sync=True)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    specs = traitlets.Dict().tag(sync=True)
    curve_data = traitlets.List().tag(sync=True)
    curve_keys = traitlets.List(traitlets.Unicode()).tag(sync=True)
    curve_key = traitlets.Unicode("").tag(sync=True)
    curve_runs = traitlets.List(traitlets.Unicode()).tag(sync=True)
    diff = traitlets.Dict().tag(sync=True)
    x = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    y = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    color = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    group = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    renderer = traitlets.Unicode("auto").tag(sync=True)   # auto: SVG, canvas past a few thousand marks
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, runs: pd.DataFrame | list[str] | None = None, *, experiment: str | None = None,
                 where: str | None = None, x: str | None = None, y: str | None = None,
                 color: str | None = None, store: str | os.PathLike[str] | Store | None = None) -> None:
        require_bundle("compare")
        super().__init__()
        self.store = resolve_store(store)
        self.experiment, self.where = experiment, where
        if isinstance(runs, pd.DataFrame):
            runs = [str(i) for i in runs["run_id"]]
        self._ids: list[str] | None = list(runs) if runs is not None else None
        self._lock = threading.RLock()
        self._raw = pd.DataFrame(columns=queries.BASE_COLUMNS)
        self._frame = plots.chart_frame(self._raw)
        self._key_counts: dict[str, dict[str, int]] = {}
        self._logged: list[str] = []
        self._stored_points = pd.DataFrame(columns=["run_id", "label", "key", "step", "value"])
        self._last_live = 0.0
        self._live: set[str] = set()
        self._asked = {"x": x, "y": y, "color": color}
        try:
            self.refresh()
            self._check_axes(x, y, color)
        except BaseException:   # a bad filter or column: no half-made widget left open
            super().close()
            raise
        with self.hold_trait_notifications():
            self.x, self.y, self.color = x or self.x, y or self.y, color if color is not None else self.color
        self.observe(self._on_axes, names=["x", "y", "color", "group"])
        self.observe(self._on_selected, names=["selected"])
        self.observe(self._on_curve_key, names=["curve_key"])
        self.on_msg(self._on_msg)
        self._update_specs()
        hub.add(self)

    # -- what Python users read -------------------------------------------------------------------
    @property
    def runs(self) -> pd.DataFrame:
        """The runs the panel shows, as ``nbtrack.runs()`` returns them."""
        return self._raw.copy()

    @property
    def selected_runs(self) -> pd.DataFrame:
        """The selected runs' rows of ``nbtrack.runs()``, in selection order."""
        rows = self._raw.set_index("run_id", drop=False)
        ids = [i for i in self.selected if i in rows.index]
        return rows.loc[ids].reset_index(drop=True)

    def __repr__(self) -> str:   # stable text (nbval compares it), no object address
        return f"ComparePanel({len(self._raw)} runs, {len(self.selected)} selected)"

    def close(self) -> None:
        hub.remove(self)
        super().close()

    def save(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """Save this comparison as ONE self-contained HTML file that anyone can open, from disk, with no
        Python, kernel, server or network: the table, charts, curves, diff and selection work there."""
        from .share import save

        return save(self, path, title)

    # -- data -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the store (the panel does this by itself when runs are written)."""
        with self._lock:
            session.syncer.flush()
            if self.store.exists():
                with self.store.connect() as con:
                    raw = queries.runs_frame(con, self.experiment, self.where)
                    if self._ids is not None:
                        raw = raw[raw["run_id"].isin(self._ids)].reset_index(drop=True)
                    everything = self._ids is None and self.experiment is None and not self.where
                    ids = None if everything else [str(i) for i in raw["run_id"]]
                    self._key_counts = queries.metric_key_counts(con, ids)
                    self._logged = queries.logged_runs(con, ids)
            else:
                if self.where:
                    queries.compile_filter(self.where)
                raw = pd.DataFrame(columns=queries.BASE_COLUMNS)
            self._raw = raw
            self._frame = plots.chart_frame(raw)
            d = plots.defaults(self._frame, self._key_counts) if len(raw) else {"x": None, "y": None,
                                                                                 "color": None}
            with self.hold_trait_notifications():
                for axis in ("x", "y", "color"):
                    current = getattr(self, axis)
                    if current is None or current not in self._frame.columns:
                        setattr(self, axis, self._asked.get(axis) if self._asked.get(axis) in self._frame
                                else d[axis])
                self.table = table_payload(self._frame, self.store)
                self.status = self._status()
            self._update_specs()
            self._update_curves()
            self._update_diff()   # a selected run may have been renamed or edited

    def _status(self) -> str:
        running = int((self._raw["status"] == RUNNING).sum()) if len(self._raw) else 0
        text = f"{len(self._raw)} runs"
        if running:
            text += f", {running} running"
        return text

    def _check_axes(self, *names: str | None) -> None:
        if len(self._raw):
            plots.check_fields(self._frame, *names)

    def _update_specs(self) -> None:
        with self._lock:
            frame = self._frame
            if not len(frame):
                self.specs = {}
                return
            specs = {
                "scatter": plots.scatter(frame, self.x, self.y, self.color or None, named_data=True),
                "parallel": plots.parallel(frame, metric=self.y if (self.y or "").startswith("metrics.") else None,
                                            named_data=True),
                "bars": plots.bars(frame, metric=self.y if (self.y or "").startswith("metrics.") else None,
                                    group=self.group, named_data=True),
                "curves": plots.curves(data=self._stored_points, keys=self._shown_keys(), named_data=True),
            }
            self.specs = {k: v.to_dict(validate=False) for k, v in specs.items()}

    def _shown_keys(self) -> list[str]:
        if self.curve_key == "*":
            return list(self.curve_keys)
        return [self.curve_key] if self.curve_key else []

    def _curve_ids(self) -> list[str]:
        if self.selected:
            return list(self.selected)[:MAX_CURVE_RUNS]
        live = [r.run_id for r in self._active_runs()]
        return list(dict.fromkeys(live + self._logged[:DEFAULT_CURVE_RUNS]))

    def _active_runs(self) -> list[ActiveRun]:
        return [r for r in list(session.active) if r.store.path == self.store.path]

    def _update_curves(self) -> None:
        with self._lock:
            ids = self._curve_ids()
            points = plots.curve_points(ids, store=self.store) if ids and self.store.exists() else \
                pd.DataFrame(columns=["run_id", "label", "key", "step", "value"])
            self._stored_points = points
            self._live = set()
            self._publish_curves(points, ids)

    def _publish_curves(self, points: pd.DataFrame, ids: list[str]) -> None:
        keys = sorted(points["key"].unique()) if len(points) else []
        counts = points.groupby("key")["run_id"].nunique() if len(points) else {}
        with self.hold_trait_notifications():
            self.curve_keys = keys
            if self.curve_key not in keys and self.curve_key != "*":
                preferred = (self.y or "").removeprefix("metrics.")
                self.curve_key = preferred if preferred in keys else (
                    max(keys, key=lambda k: (counts[k], not k.startswith("sys."), k)) if keys else "")
            self.curve_runs = ids
            shown = set(self._shown_keys())
            rows = points[points["key"].isin(shown)] if len(points) else points
            self.curve_data = _records(rows)
        self._update_curve_spec()

    def _update_curve_spec(self) -> None:
        if self.specs:
            specs = dict(self.specs)
            specs["curves"] = plots.curves(data=self._stored_points, keys=self._shown_keys(),
                                            named_data=True).to_dict(validate=False)
            if specs["curves"] != self.specs.get("curves"):
                self.specs = specs

    def push_live_curves(self, min_interval: float) -> None:
        """Send the points of this process's running runs that the panel shows (called by the hub)."""
        active = [r for r in self._active_runs() if r.run_id in self._curve_ids()]
        if not active or time.monotonic() - self._last_live < min_interval:
            return
        with self._lock:
            self._last_live = time.monotonic()
            frames = [self._stored_points[~self._stored_points["run_id"].isin([r.run_id for r in active])]]
            for r in active:
                points = queries.downsample_points(r.points_snapshot())
                points.insert(1, "label", f"{r.name} · {r.run_id[:8]}")
                frames.append(points)
            frames = [f for f in frames if len(f)]
            merged = pd.concat(frames, ignore_index=True) if frames else self._stored_points
            self._live = {r.run_id for r in active}
            self._publish_curves(merged, self._curve_ids())

    def _update_diff(self) -> None:
        ids = [i for i in self.selected if i in set(self._raw["run_id"])][:MAX_DIFF_RUNS]
        if len(ids) < 2:
            self.diff = {}
            return
        with self.store.connect() as con:
            runs = [run_from_detail(queries.run_detail(con, i), self.store) for i in ids]
        self.diff = diff_many(runs)

    # -- events -----------------------------------------------------------------------------------
    def _on_axes(self, change: dict[str, Any]) -> None:
        if change["new"] and len(self._raw) and change["new"] not in self._frame.columns:
            setattr(self, change["name"], change["old"])
            plots.check_fields(self._frame, change["new"])
        self._update_specs()

    def _on_selected(self, change: dict[str, Any]) -> None:
        with self._lock:
            self._update_curves()
            self._update_diff()

    def _on_curve_key(self, change: dict[str, Any]) -> None:
        with self._lock:
            self._publish_curves(self._stored_points, self._curve_ids())

    def _on_msg(self, widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "refresh":
            self.refresh()
        elif content.get("type") == "edit":
            self._edit(content)

    def _edit(self, content: dict[str, Any]) -> None:
        """An edit from the toolbar or the table: the same call a user makes from Python (curate.py);
        the page is told how many runs changed, or why nothing did, in one line."""
        action, ids, value = content.get("action"), [str(i) for i in content.get("runs") or []], content.get("value")
        try:
            if action not in EDITS or not ids:
                raise NbtrackError(f"cannot {action!r:.40} {len(ids)} runs from the panel")
            if action in ("tag", "untag"):
                n = EDITS[action](ids, *(value if isinstance(value, list) else [value]), store=self.store)
            elif action in ("rename", "note"):
                n = EDITS[action](ids, value or None, store=self.store)
            elif action == "star":
                n = curate.star(ids, bool(value), store=self.store)
            else:
                n = EDITS[action](ids, store=self.store)
        except NbtrackError as e:
            self.send({"type": "edited", "action": action, "error": str(e)})
            return
        if action == "delete":
            self.selected = [i for i in self.selected if i not in set(ids)]
        self.refresh()
        self.send({"type": "edited", "action": action, "runs": ids, "count": n})


def require_bundle(name: str) -> None:
    """A clear error, not a blank output, when the front end was never built (an install that
    skipped npm)."""
    if not (STATIC / f"{name}.js").exists():
        from ..errors import NbtrackError

        raise NbtrackError(f"the {name} widget's front end is not built ({STATIC / (name + '.js')} is missing): "
                           "run `npm install && npm run build` in the nbtrack checkout, or reinstall with "
                           "`pip install -e .` with npm on PATH")


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
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


def table_payload(frame: pd.DataFrame, store: Store) -> dict[str, Any]:
    """The table as columns (one list or buffer per column: far smaller than one object per row)."""
    columns, data = [], {}
    for name in frame.columns:
        group, _, key = name.partition(".")
        if group not in plots.GROUPS:
            group, key = "run", name
        series = frame[name]
        if name in plots.TIME_COLUMNS:
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


def compare(runs: pd.DataFrame | list[str] | None = None, *, experiment: str | None = None,
            where: str | None = None, x: str | None = None, y: str | None = None, color: str | None = None,
            store: str | os.PathLike[str] | Store | None = None) -> ComparePanel:
    """Runs side by side in the notebook: a table, charts, curves and a diff, linked by selection.

    Parameters
    ----------
    runs : a frame from ``nbtrack.runs()`` or a list of run ids; default: every run (new ones appear).
    experiment, where : as for ``nbtrack.runs()``.
    x, y, color : the scatter's columns, e.g. ``x="params.lr", y="metrics.acc"``; default: the param
        that varies most against the metric most runs have.
    store : a store path or Store; default: the current store.
    """
    return ComparePanel(runs, experiment=experiment, where=where, x=x, y=y, color=color, store=store)

