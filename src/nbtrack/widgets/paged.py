"""The compare panel past a few thousand runs: the table pages from DuckDB and only its visible rows
travel to the page; the scatter counts runs in bins; a brush or a click selects exactly, here.

The view (paged_view.py) keeps the run ids in table order and the values of the scatter's two axes,
never the runs themselves; filtering and sorting are queries (store/paging.py), and the filter box
speaks the language of ``runs(where=...)``. This module answers the page's messages and draws the
charts of a big view on a thread of their own.
"""
from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from typing import Any, Iterator

import duckdb

from .. import chart_data, plots
from ..errors import warn
from ..store import paging, queries
from . import binning
from .latest import Superseded, interrupt
from .paged_view import PagedView
from .payload import DEFAULT_CURVE_RUNS, MAX_CURVE_RUNS, table_payload

PAGE_PAST = 5_000   # runs; below, the whole table goes to the page, which sorts and filters it itself
FIRST_ROWS = 12     # rows sent first after a sort or filter, the rest of the window after them: the table
#                    shows 11 (TABLE_H / ROW_H in js/compare.js) and part of a 12th; each row more costs a row group read


class PagedPanel:
    """The paged half of ComparePanel (compare.py), which it inherits: refreshing from the store, the
    page's window, the charts of a big view on their own thread, and the page's messages (view, click,
    brush, group, clear). Uses the panel's traits and its ``_view``, ``_lock`` and ``store``."""

    def _refresh_due(self) -> bool:
        """Whether the thread that follows the store may refresh this panel now: a paged panel waits ten
        times what its last refresh took (1-2 s at 10^6 runs), or a sweep writing a run a second would
        keep the kernel re-reading the store and the table waiting."""
        return time.monotonic() >= self._refreshed_at + 10 * self._refresh_cost

    def _refresh_paged(self, con: Any) -> bool:
        """Page the table from the store when the view is big (or ``paged=True``); False: the page gets
        the whole table. A panel that pages keeps paging (its runs only grow, mostly). The caller
        updates the charts once the connection is closed."""
        if self._paged is False:
            return False
        if self._view is None and not self._paged:
            cond, args = paging.view_sql(con, self.experiment, self.where, self._ids)
            if paging.count(con, cond, args) <= PAGE_PAST:
                return False
        view = self._view or PagedView(self.store, self.experiment, self.where, self._ids)
        view.refresh(con)
        self._view = view
        self._key_counts = view.metric_counts if view.metric_counts is not None else \
            queries.metric_key_counts(con, self._ids)   # (the view is every run: keys counted them)
        cond, args = paging.view_sql(con, self.experiment, self.where, self._ids)
        self._logged = paging.recent_logged(con, cond, args, DEFAULT_CURVE_RUNS)
        # the sample is what the charts drawn run by run show; the selected runs are always in it. Read
        # on the charts' thread (_read_sample), after the table is sent: its runs lie all over the store,
        # and reading them took 0.6 s of the first table's 1.5 s at 10^6 runs
        self._sample_due = list(dict.fromkeys([*list(self.selected)[:MAX_CURVE_RUNS], *view.sampled]))
        with self.hold_trait_notifications():
            self._publish_window(con)
        return True

    def _publish_window(self, con: Any, seq: Any = None, limit: int | None = None) -> None:
        view = self._view
        payload = table_payload(view.window(con, limit), self.store, kinds=view.kinds())
        payload.update(paged=True, total=len(view.order), offset=view.offset, all=view.total_all,
                       filter=view.box, sort=view.sort, desc=view.desc, error=view.error, seq=seq)
        self.table = payload
        self.status = self._status()
        self.send_state("selected")   # the ids the page shows changed with the window

    def _selected_json(self, value: list[str]) -> Any:
        view = getattr(self, "_view", None)   # None too while the widget is being made
        if view is None:
            return list(value)
        shown = set(view.window_ids()) | set(view.sampled)
        return {"count": len(value), "ids": [i for i in value if i in shown][:5_000]}

    def _update_paged_specs(self) -> None:
        """A paged panel's charts, built on a thread of their own: at 10^6 runs counting the scatter's
        cells takes about a second, which the table need not wait for. The table goes first: the build
        waits for its answers, and a message for it interrupts the build's read of the store (which it
        held meanwhile: a filter typed right after another waited 450 ms for it), which then starts over."""
        try:
            self._views.wait_idle(timeout=30)
            self._read_sample()   # first: the axes are chosen from it, and the charts key on them
            if not len(self._frame):   # a view without runs
                self.specs, self._specs_key = {}, None
                return
            key = self._charts_key()
            if key == self._specs_key:   # asked again for the same charts: they are drawn already
                return
            specs = self._paged_specs()   # without the lock: scrolling the table goes on meanwhile
            with self._lock:
                if key == self._charts_key():   # else a newer state has its own build queued
                    self.specs, self._specs_key = specs, key
        except (duckdb.InterruptException, Superseded):   # a message for the table wanted the store
            self._update_specs()
        except Exception as e:   # the table still works; the user is told in one line
            warn(f"the panel's charts could not be drawn: {e}")

    def _read_sample(self) -> None:
        """The rows of the runs the charts draw one by one (``_sample_due``), with every column of the view;
        then the axes (the defaults are chosen from them) and the curve key (which follows the y axis)."""
        chosen = self._sample_due
        if chosen is None:
            return
        with self._reading() as con:
            raw = queries.runs_frame(con, ids=chosen)
        frame = self._view.with_every_column(chart_data.chart_frame(raw))
        with self._lock:
            if self._sample_due is not chosen:   # a refresh since wants another: its own build reads it
                return
            self._raw, self._frame, self._sample_due = raw, frame, None
            first = self.y is None
            with self.hold_trait_notifications():
                self._choose_axes()
            # the curves shown follow the y axis chosen first, as an unpaged panel's do; not read again
            # here: the store is never opened under the panel's lock on this thread (a table message
            # holds the store while it waits for that lock)
            preferred = (self.y or "").removeprefix("metrics.")
            if first and preferred in self.curve_keys and self.curve_key != "*":
                self.curve_key = preferred

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A connection for the charts' thread, which a message for the table interrupts (_yield_to_table)."""
        with self.store.connect() as con:
            with self._reading_lock:
                self._charts_con = con
            try:
                if self._views.busy():   # a message came before the connection could be interrupted
                    raise Superseded
                yield con
            finally:
                with self._reading_lock:
                    self._charts_con = None

    def _yield_to_table(self) -> None:
        """Interrupt the charts' read of the store, if one runs (a message for the table came: it was
        given to ``_views`` first, and a read that starts after this sees it waiting)."""
        with self._reading_lock:
            con = self._charts_con
        if con is not None:
            interrupt(con, lambda: self._charts_con, self._reading_lock)

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
        with self._reading() as con:
            values = view.axis_values(con, self.x, self.y)
        shown = len(view.order)
        cells = None
        if values is not None and self.x != self.y:
            cells, logs = binning.bins(values, self.x, self.y)
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

    # -- what a paged panel's page asks of the kernel ------------------------------------------------
    def _page_view_done(self, content: dict[str, Any]) -> None:
        if "filter" in content:   # the scatter counts the runs that pass the filter (after the rows went)
            self._update_specs()

    def _page_view(self, content: dict[str, Any], con: Any) -> None:
        """A scroll, sort or filter: the rows for the page's window, ordered and filtered here, answered
        on a thread of their own (``_views``, latest.py); ``seq`` goes back with them, so that the page
        knows which of its messages they answer. Under the panel's lock, taken before ``con`` was opened."""
        view = self._view
        reordered = any(k in content for k in ("filter", "sort", "desc")) and view.set_view(
            con, box=content.get("filter"), sort=content.get("sort", ""), desc=content.get("desc"))
        view.move(content.get("offset", view.offset), content.get("limit", view.limit))
        self._views.superseded()
        if reordered and view.limit > FIRST_ROWS:
            # the rows on screen first: a new order's runs lie all over the store, and a read costs ~1.8 ms
            # per row group their rows are in (at 10^6 runs: 20 runs 59 ms, 40 95, 100 and more ~210)
            self._publish_window(con, content.get("seq"), FIRST_ROWS)
            self._views.superseded()
        self._publish_window(con, content.get("seq"))

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
