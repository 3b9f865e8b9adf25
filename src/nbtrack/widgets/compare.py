"""The compare panel: one anywidget that draws the runs table, the charts and the diff (js/compare.js).

One widget per panel on purpose: anywidget sends the front-end bundle with every widget instance,
so a panel built from many small widgets would ship it many times and bloat saved notebooks.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anywidget
import pandas as pd
import traitlets

from .. import chart_data, curate, plots
from ..errors import NbtrackError
from ..api import resolve_store, run_from_detail
from ..diff import diff_many
from ..recorder.run import ActiveRun
from ..recorder.session import session
from ..store import Store, curves, queries
from .live import hub
from .bundles import STATIC, require_bundle, vega_code
from .latest import LatestAnswer
from .paged import PagedPanel
from .paged_view import PagedView
from .payload import DEFAULT_CURVE_RUNS, MAX_CURVE_RUNS, records, table_payload
from ..store.records import RUNNING

MAX_DIFF_RUNS = 8
EDITS = {"tag": curate.tag, "untag": curate.untag, "rename": curate.rename, "note": curate.note, "star": curate.star,
         "delete": curate.delete, "restore": curate.restore}   # what the page may ask for


class ComparePanel(PagedPanel, anywidget.AnyWidget):
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
    # vega-embed's code, apart from _esm: the page draws the table before it evaluates this (js/vega_loader.js)
    _vega = traitlets.Unicode().tag(sync=True)

    def __init__(self, runs: pd.DataFrame | list[str] | None = None, *, experiment: str | None = None,
                 where: str | None = None, x: str | None = None, y: str | None = None,
                 color: str | None = None, store: str | os.PathLike[str] | Store | None = None,
                 paged: bool | None = None) -> None:
        require_bundle("compare", "vega")
        super().__init__(_vega=vega_code())
        self.store = resolve_store(store)
        self.experiment, self.where = experiment, where
        if isinstance(runs, pd.DataFrame):
            runs = [str(i) for i in runs["run_id"]]
        self._ids: list[str] | None = list(runs) if runs is not None else None
        self._paged = paged
        self._view: PagedView | None = None
        self._sample_due: list[str] | None = None   # the runs a paged panel's charts draw, to read (paged.py)
        self._specs_key: tuple[Any, ...] | None = None
        self._refreshed_at, self._refresh_cost = 0.0, 0.0
        self._charts_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbtrack-charts")
        self._charts_con: Any = None   # the charts' connection while they read the store (paged.py)
        self._reading_lock = threading.Lock()
        self._charts: Future[None] | None = None
        # taken before the store by every thread that takes both, never the other way round: a page's
        # message answered holding the store waited for a refresh holding this, which waited for the store
        self._lock = threading.RLock()
        self._views = LatestAnswer(self.store.connect, self._page_view, self._page_view_done, self._lock)   # paged.py
        self._anchor: str | None = None
        self._raw = pd.DataFrame(columns=queries.BASE_COLUMNS)
        self._frame = chart_data.chart_frame(self._raw)
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
                return queries.runs_frame(con, ids=self._view.order.all().to_pylist())
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
        self._closed = True   # before the threads stop: the thread that follows the store may hold it
        hub.remove(self)
        if hasattr(self, "_charts_thread"):   # not when __init__ failed early
            self._charts_thread.shutdown(wait=False, cancel_futures=True)
            self._views.close()
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
            started, paged = time.monotonic(), False
            if self.store.exists():
                with self.store.connect() as con:
                    paged = self._refresh_paged(con)   # past PAGE_PAST runs: the table's window only
                    if not paged:
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
            if not paged:
                self._raw = raw
                self._frame = chart_data.chart_frame(raw)
                with self.hold_trait_notifications():
                    self._choose_axes()
                    self.table = table_payload(self._frame, self.store)
                    self.status = self._status()
            # once the connection is closed: the curves, charts and diff open their own
            self._update_curves()   # before the charts: a paged panel's charts key on the points read
            self._update_specs()
            self._update_diff()   # a selected run may have been renamed or edited
            if paged:
                self._refreshed_at, self._refresh_cost = time.monotonic(), time.monotonic() - started

    def _choose_axes(self) -> None:
        """Axes the charts' runs have: those the user chose or asked for, else the defaults."""
        d = chart_data.defaults(self._frame, self._key_counts) if len(self._raw) else {"x": None, "y": None,
                                                                                   "color": None}
        for axis in ("x", "y", "color"):
            current = getattr(self, axis)
            if current is None or current not in self._frame.columns:
                setattr(self, axis, self._asked.get(axis) if self._asked.get(axis) in self._frame else d[axis])

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

    def _fields(self) -> pd.DataFrame | None:
        """A frame of the columns the axes may name: the charts' runs', or every column of a paged panel's
        view (whose sample may not be read yet); None while there are no runs (any name goes)."""
        if self._view is not None:
            return self._view.with_every_column(self._frame)
        return self._frame if len(self._raw) else None

    def _check_axes(self, *names: str | None) -> None:
        fields = self._fields()
        if fields is not None:
            chart_data.check_fields(fields, *names)

    def _update_specs(self) -> None:
        if self._view is not None:   # on the charts' thread: the table is drawn meanwhile
            try:
                self._charts = self._charts_thread.submit(self._update_paged_specs)
            except RuntimeError:   # shut down: closed while the thread that follows the store refreshed it
                if not getattr(self, "_closed", False):
                    raise
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
            self.curve_data = records(rows)
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
                points = curves.downsample_points(r.points_snapshot())
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
        fields = self._fields()
        if change["new"] and fields is not None and change["new"] not in fields.columns:
            setattr(self, change["name"], change["old"])
            chart_data.check_fields(fields, change["new"])
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
        elif self._view is not None and kind == "view":
            self._views.ask(content)   # on a thread of its own: a newer one interrupts it (latest.py)
            self._yield_to_table()   # then the charts' read of the store, if one runs (paged.py)
        elif self._view is not None and kind in ("click", "brush", "clear", "group"):
            with self._lock:
                getattr(self, f"_page_{kind}")(content)

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

