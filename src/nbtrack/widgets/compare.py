"""The compare panel: one anywidget that draws the runs table, the charts and the diff (js/compare.js).

One widget per panel on purpose: anywidget sends the front-end bundle with every widget instance,
so a panel built from many small widgets would ship it many times and bloat saved notebooks.
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import pyarrow as pa
import traitlets

from .. import curate, plots
from ..errors import NbtrackError, warn
from ..api import resolve_store, run_from_detail
from ..diff import diff_many
from ..recorder.run import ActiveRun
from ..recorder.session import session
from ..store import Store, paging, queries
from .live import hub
from .paged import PAGE_PAST, PagedView, bins
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
    # a paged panel sends the page only a count and the ids it shows (a brush may select 100,000)
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True, to_json=lambda v, w: w._selected_json(v))
    specs = traitlets.Dict().tag(sync=True)
    sample = traitlets.Dict().tag(sync=True)   # a paged panel's sampled runs, the fields its charts draw
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
                 color: str | None = None, store: str | os.PathLike[str] | Store | None = None,
                 paged: bool | None = None) -> None:
        require_bundle("compare")
        super().__init__()
        self.store = resolve_store(store)
        self.experiment, self.where = experiment, where
        if isinstance(runs, pd.DataFrame):
            runs = [str(i) for i in runs["run_id"]]
        self._ids: list[str] | None = list(runs) if runs is not None else None
        self._paged = paged
        self._view: PagedView | None = None
        self._specs_key: tuple[Any, ...] | None = None
        self._refreshed_at, self._refresh_cost = 0.0, 0.0
        self._charts_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbtrack-charts")
        self._charts: Future[None] | None = None
        self._anchor: str | None = None
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
        """The runs the panel shows, as ``nbtrack.runs()`` returns them (a paged panel reads them
        from the store now: all of them, so mind the size)."""
        if self._view is not None:
            with self.store.connect() as con:
                return queries.runs_frame(con, ids=self._view.order.to_pylist())
        return self._raw.copy()

    @property
    def selected_runs(self) -> pd.DataFrame:
        """The selected runs' rows of ``nbtrack.runs()``, in selection order."""
        if self._view is not None:
            with self.store.connect() as con:
                rows = queries.runs_frame(con, ids=list(self.selected)).set_index("run_id", drop=False)
        else:
            rows = self._raw.set_index("run_id", drop=False)
        ids = [i for i in self.selected if i in rows.index]
        return rows.loc[ids].reset_index(drop=True)

    @property
    def paged(self) -> bool:
        """Whether the table pages from the store (past ``PAGE_PAST`` runs, or ``compare(paged=True)``)."""
        return self._view is not None

    def __repr__(self) -> str:   # stable text (nbval compares it), no object address
        n = self._view.total_all if self._view is not None else len(self._raw)
        return f"ComparePanel({n} runs, {len(self.selected)} selected)"

    def close(self) -> None:
        hub.remove(self)
        if hasattr(self, "_charts_thread"):   # not when __init__ failed early
            self._charts_thread.shutdown(wait=False, cancel_futures=True)
        super().close()

    def save(self, path: str | os.PathLike[str], title: str | None = None) -> Path:
        """Save this comparison as ONE self-contained HTML file that anyone can open, from disk, with no
        Python, kernel, server or network: the table, charts, curves, diff and selection work there."""
        from .share import save

        if self._view is not None:
            raise NbtrackError(f"this panel pages its {self._view.total_all:,} runs from the store, and a saved page "
                               "has no store behind it: save a narrower comparison, e.g. nbtrack.compare(where="
                               "...).save(...), or every run with nbtrack.compare(paged=False).save(...) (large)")
        return save(self, path, title)

    # -- data -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the store (the panel does this by itself when runs are written)."""
        with self._lock:
            session.syncer.flush()
            if self.store.exists() and self._refresh_paged():
                return
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

    def refresh_due(self) -> bool:
        """Whether the thread that follows the store may refresh this panel now: a paged panel waits ten
        times what its last refresh took (1-2 s at 10^6 runs), or a sweep writing a run a second would
        keep the kernel re-reading the store and the table waiting."""
        return time.monotonic() >= self._refreshed_at + 10 * self._refresh_cost

    def _refresh_paged(self) -> bool:
        """Page the table from the store when the view is big (or ``paged=True``); False: the page gets
        the whole table. A panel that pages keeps paging (its runs only grow, mostly)."""
        if self._paged is False:
            return False
        started = time.monotonic()
        with self.store.connect() as con:
            if self._view is None and not self._paged:
                cond, args = paging.view_sql(con, self.experiment, self.where, self._ids)
                if paging.count(con, cond, args) <= PAGE_PAST:
                    return False
            view = self._view or PagedView(self.store, self.experiment, self.where, self._ids)
            view.refresh(con)
            self._view = view
            self._key_counts = queries.metric_key_counts(con, self._ids)
            cond, args = paging.view_sql(con, self.experiment, self.where, self._ids)
            self._logged = paging.recent_logged(con, cond, args, DEFAULT_CURVE_RUNS)
            # the sample is what the charts drawn run by run show; the selected runs are always in it
            chosen = list(dict.fromkeys([*list(self.selected)[:MAX_CURVE_RUNS], *view.sampled]))
            raw = queries.runs_frame(con, ids=chosen)
            self._raw = raw
            self._frame = plots.chart_frame(raw)
            d = plots.defaults(self._frame, self._key_counts) if len(raw) else {"x": None, "y": None, "color": None}
            with self.hold_trait_notifications():
                for axis in ("x", "y", "color"):
                    current = getattr(self, axis)
                    if current is None or current not in self._frame.columns:
                        setattr(self, axis, self._asked.get(axis) if self._asked.get(axis) in self._frame
                                else d[axis])
                self._publish_window(con)
        self._update_curves()
        self._update_specs()
        self._update_diff()
        self._refreshed_at, self._refresh_cost = time.monotonic(), time.monotonic() - started
        return True

    def _publish_window(self, con: Any) -> None:
        view = self._view
        payload = table_payload(view.window(con), self.store, kinds=view.kinds())
        payload.update(paged=True, total=len(view.order), offset=view.offset, all=view.total_all,
                       filter=view.box, sort=view.sort, desc=view.desc, error=view.error)
        self.table = payload
        self.status = self._status()
        self.send_state("selected")   # the ids the page shows changed with the window

    def _selected_json(self, value: list[str]) -> Any:
        view = getattr(self, "_view", None)   # None too while the widget is being made
        if view is None:
            return list(value)
        shown = set(view.window_ids()) | set(view.sampled)
        return {"count": len(value), "ids": [i for i in value if i in shown][:5_000]}

    def _status(self) -> str:
        if self._view is not None:
            text = f"{self._view.total_all:,} runs"
            if self._view.running:
                text += f", {self._view.running:,} running"
            return text + " (paged from the store)"
        running = int((self._raw["status"] == RUNNING).sum()) if len(self._raw) else 0
        text = f"{len(self._raw)} runs"
        if running:
            text += f", {running} running"
        return text

    def _check_axes(self, *names: str | None) -> None:
        if len(self._raw):
            plots.check_fields(self._frame, *names)

    def _update_specs(self) -> None:
        if self._view is not None and len(self._frame):   # on the charts' thread: the table is drawn meanwhile
            self._charts = self._charts_thread.submit(self._update_paged_specs)
            return
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

    def _update_paged_specs(self) -> None:
        """A paged panel's charts, built on a thread of their own: at 10^6 runs counting the scatter's
        cells takes about a second, which the table need not wait for."""
        try:
            key = self._charts_key()
            if key == self._specs_key:   # asked again for the same charts: they are drawn already
                return
            specs = self._paged_specs()   # without the lock: scrolling the table goes on meanwhile
            with self._lock:
                if key == self._charts_key():   # else a newer state has its own build queued
                    self.specs, self._specs_key = specs, key
        except Exception as e:   # the table still works; the user is told once, in one line
            warn(f"the panel's charts could not be drawn: {e}")

    def _charts_key(self) -> tuple[Any, ...]:
        view = self._view
        return (self.x, self.y, self.color, self.group, self.curve_key, view.box, view.error, view.total_all,
                tuple(view.sampled[:3]), len(self._raw), id(self._stored_points))

    def _paged_specs(self) -> dict[str, Any]:
        """A big panel's charts: the scatter counts every run of the view in a grid when both axes are
        numbers; the others draw the sample, and say so."""
        frame, view = self._frame, self._view
        metric = self.y if (self.y or "").startswith("metrics.") else None
        specs = {
            "scatter": plots.scatter(frame, self.x, self.y, self.color or None, named_data=True),
            "parallel": plots.parallel(frame, metric=metric, named_data=True),
            "bars": plots.bars(frame, metric=metric, group=self.group, named_data=True),
            "curves": plots.curves(data=self._stored_points, keys=self._shown_keys(), named_data=True),
        }
        with self.store.connect() as con:
            values = view.axis_values(con, self.x, self.y)
        shown = len(view.order)
        cells = None
        if values is not None and self.x != self.y:
            cells, logs = bins(values, self.x, self.y)
            if len(cells):
                specs["scatter"] = plots.density(cells, self.x, self.y, logs, int(cells["runs"].sum()),
                                                 named_data=True)
        out = {k: v.to_dict(validate=False) for k, v in specs.items()}
        if out["scatter"].get("usermeta", {}).get("nbtrack", {}).get("aggregated"):
            out["scatter"]["datasets"] = {plots.CELLS_DATA: json.loads(cells.to_json(orient="records"))}
        fields = {"run_id", "label"}
        for name in ("scatter", "parallel", "bars"):
            meta = out[name].setdefault("usermeta", {}).setdefault("nbtrack", {})
            if meta.get("aggregated"):
                continue
            meta["sampled"] = True
            fields.update(meta.get("fields") or [])
            title = out[name].get("title")
            text = title.get("text") if isinstance(title, dict) else title
            out[name]["title"] = {"text": text or "", "subtitle": f"a random sample of {len(view.sampled):,} of "
                                                                 f"{shown:,} runs, and the selected ones"}
        self.sample = table_payload(frame[[c for c in frame.columns if c in fields]], self.store)
        return out

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
        ids = list(self.selected)[:MAX_DIFF_RUNS] if self._view is not None else \
            [i for i in self.selected if i in set(self._raw["run_id"])][:MAX_DIFF_RUNS]
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
        kind = content.get("type")
        if kind == "refresh":
            self.refresh()
        elif kind == "edit":
            self._edit(content)
        elif self._view is not None and kind in ("view", "click", "brush", "clear", "group"):
            with self._lock:
                getattr(self, f"_page_{kind}")(content)

    # -- what a paged panel's page asks of the kernel ------------------------------------------------
    def _page_view(self, content: dict[str, Any]) -> None:
        """A scroll, sort or filter: the rows for the page's window, ordered and filtered here."""
        view = self._view
        box = view.box
        with self.store.connect() as con:
            if any(k in content for k in ("filter", "sort", "desc")):
                view.set_view(con, box=content.get("filter"), sort=content.get("sort", ""),
                              desc=content.get("desc"))
            view.move(content.get("offset", view.offset), content.get("limit", view.limit))
            self._publish_window(con)
        if view.box != box:   # the scatter counts the runs that pass the filter (after the rows went)
            self._update_specs()

    def _page_click(self, content: dict[str, Any]) -> None:
        """A click on a row or a mark, with the keys the table's clickSelect reads (js/table.js)."""
        run_id, current = str(content.get("run") or ""), list(self.selected)
        if content.get("shift") and self._anchor:
            chosen = list(dict.fromkeys(current + self._view.range_to(self._anchor, run_id)))
        elif content.get("ctrl") or content.get("shift"):
            chosen = [i for i in current if i != run_id] if run_id in current else current + [run_id]
        else:
            chosen = [] if current == [run_id] else [run_id]
        self._anchor = run_id
        self.selected = chosen

    def _page_brush(self, content: dict[str, Any]) -> None:
        ranges = {re.sub(r"\\(.)", r"\1", name): value for name, value in (content.get("ranges") or {}).items()
                  if isinstance(value, list) and len(value) == 2}
        with self.store.connect() as con:
            ids = self._view.brushed(con, ranges, self.x, self.y)
        if ids is not None:
            self.selected = ids

    def _page_clear(self, content: dict[str, Any]) -> None:
        self.selected = []

    def _page_group(self, content: dict[str, Any]) -> None:
        with self.store.connect() as con:
            ids = self._view.where_equals(con, str(content.get("column")), content.get("value"))
        self.selected = list(dict.fromkeys([*self.selected, *ids])) if content.get("add") else ids

    def _edit(self, content: dict[str, Any]) -> None:
        """An edit from the toolbar or the table: the same call a user makes from Python (curate.py);
        the page is told how many runs changed, or why nothing did, in one line."""
        action, value = content.get("action"), content.get("value")
        # a paged panel's page holds only the selected runs it shows: it asks for "the selection"
        runs = self.selected if content.get("runs") == "selected" else content.get("runs") or []
        ids = [str(i) for i in runs]
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


def table_payload(frame: pd.DataFrame, store: Store, kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """The table as columns (one list or buffer per column: far smaller than one object per row);
    ``kinds`` fixes a column's kind where one page of rows could not tell it (a paged table)."""
    columns, data = [], {}
    for name in frame.columns:
        group, _, key = name.partition(".")
        if group not in plots.GROUPS:
            group, key = "run", name
        series = frame[name]
        if kinds and name in kinds:
            kind = kinds[name]
        elif name in plots.TIME_COLUMNS:
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
            store: str | os.PathLike[str] | Store | None = None, paged: bool | None = None) -> ComparePanel:
    """Runs side by side in the notebook: a table, charts, curves and a diff, linked by selection.

    Parameters
    ----------
    runs : a frame from ``nbtrack.runs()`` or a list of run ids; default: every run (new ones appear).
    experiment, where : as for ``nbtrack.runs()``.
    x, y, color : the scatter's columns, e.g. ``x="params.lr", y="metrics.acc"``; default: the param
        that varies most against the metric most runs have.
    store : a store path or Store; default: the current store.
    paged : page the table from the store instead of sending the page every run; default: past
        5,000 runs. A paged panel filters with the ``where=`` language and counts runs in a grid.
    """
    return ComparePanel(runs, experiment=experiment, where=where, x=x, y=y, color=color, store=store,
                        paged=paged)

