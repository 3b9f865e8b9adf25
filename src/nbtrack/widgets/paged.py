"""The compare panel past a few thousand runs: the table pages from DuckDB and only its visible rows
travel to the page; the scatter counts runs in bins; a brush or a click selects exactly, here.

The kernel keeps the view's run ids in table order (Arrow, ~40 MB at a million runs) and the values
of the scatter's two axes; never the runs themselves. Filtering and sorting are queries (store/paging.py)
and the filter box speaks the language of ``runs(where=...)``.
"""
from __future__ import annotations

import json
import math
import re
import time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import plots
from ..errors import FilterError, warn
from ..store import Store, filters, paging, queries, wide
from ..store.records import RUNNING
from . import binning
from .latest import Superseded, interrupt
from .payload import DEFAULT_CURVE_RUNS, MAX_CURVE_RUNS, table_payload

PAGE_PAST = 5_000   # runs; below, the whole table goes to the page, which sorts and filters it itself
SAMPLE = 1_000      # runs drawn mark by mark in the parallel and bar charts of a paged panel
WINDOW = 200        # rows sent at a time (the table shows ~11)
FIRST_ROWS = 12     # rows sent first after a sort or filter, the rest of the window after them: the table
#                    shows 11 (TABLE_H / ROW_H in js/compare.js) and part of a 12th; each row more costs a row group read


class PagedView:
    """The state of one paged panel's table: which runs, in what order, and which are on the page."""

    def __init__(self, store: Store, experiment: str | None, where: str | None, ids: Sequence[str] | None) -> None:
        self.store, self.experiment, self.where, self.ids = store, experiment, where, ids
        self.box, self.sort, self.desc, self.error = "", None, False, ""
        self.order = paging.Ordered(pa.chunked_array([], pa.string()))
        self.total_all = self.running = 0
        self.offset, self.limit = 0, WINDOW
        self.columns: list[tuple[str, str, str]] = []   # (group, key, kind)
        self.metric_counts: dict[str, dict[str, int]] | None = None   # paging.keys, over every run
        self.axes: tuple[str | None, str | None] = (None, None)
        self.numbers: pa.Table | None = None
        self.sampled: list[str] = []
        self._rows: dict[str, pa.Table] = {}   # filter ("": none) -> its runs (paging.view_rows)
        self._keys: tuple[tuple[str, bool], paging.SortKeys] | None = None   # ((sort, desc), its keys): paging.sort_keys

    def _cond(self, con: Any, box: str | None) -> tuple[str, list[Any]]:
        return paging.view_sql(con, self.experiment, self.where, self.ids, box)

    def refresh(self, con: Any) -> None:
        """Re-read what the view holds (after runs were written or edited)."""
        cond, args = self._cond(con, None)
        self.numbers = None   # runs came or went
        self.total_all = paging.count(con, cond, args)
        self.running = paging.count(con, f"{cond} AND r.status = ?", [*args, RUNNING])
        whole = self.experiment is None and not self.where and self.ids is None
        self.columns, self.metric_counts = paging.keys(con, cond, args, wide.MAX_COLUMNS, whole=whole)
        self.sampled = paging.sample(con, cond, args, SAMPLE)
        self._reorder(con)

    def set_view(self, con: Any, box: str | None = None, sort: str | None = "", desc: bool | None = None) -> bool:
        """A new filter or sort from the page; a filter that does not parse keeps the rows shown and
        says why in ``error``. Nothing changes unless the new order was read (a query interrupted by a
        newer message leaves the view as it was). False: the view had that filter and sort already (a
        scroll merged with the sort it interrupted, latest.py)."""
        box = self.box if box is None else box
        sort = self.sort if sort == "" else (sort or None)
        desc = self.desc if desc is None else bool(desc)
        if (box, sort, desc) == (self.box, self.sort, self.desc):
            return False
        order, sort, error = self._ordered(con, box, sort, desc)
        if box != self.box:
            self.numbers = None   # the scatter's counts follow the filter
        self.box, self.sort, self.desc, self.error, self.order = box, sort, desc, error, order
        self.offset = 0   # a new order starts at its top
        return True

    def _reorder(self, con: Any) -> None:
        self._rows, self._keys = {}, None   # runs came or went
        self.order, self.sort, self.error = self._ordered(con, self.box, self.sort, self.desc)
        self.offset = max(0, min(self.offset, len(self.order) - 1))

    def _ordered(self, con: Any, box: str, sort: str | None, desc: bool) -> tuple[paging.Ordered, str | None, str]:
        """The view's ids in the order of ``sort``, the sort column kept (None when the view no longer
        has it) and why the filter ``box`` was left out (it does not parse), else ""."""
        error = ""
        try:
            rows = self._view_rows(con, box)
        except FilterError as e:   # FilterSyntaxError too, and one that parses but cannot apply
            error = str(e)
            rows = self._view_rows(con, None)
        try:
            rank = paging.ranks(rows, self._sort_keys(con, sort, desc)) if sort else None
        except KeyError:   # a sort column the view no longer has
            rank, sort = None, None
        return paging.Ordered(rows.column("run_id"), rank), sort, error

    def _sort_keys(self, con: Any, sort: str, desc: bool) -> paging.SortKeys:
        """The sort column's keys over the store (140 ms at 10^6 runs); kept while only the filter changes,
        and turned round when only the direction does."""
        if self._keys is not None and self._keys[0] == (sort, not desc):   # the same column, the other way
            keys = paging.reversed_keys(self._keys[1])
            if keys is not None:
                self._keys = ((sort, desc), keys)
        if self._keys is None or self._keys[0] != (sort, desc):
            self._keys = ((sort, desc), paging.sort_keys(con, sort, desc))
        return self._keys[1]

    def _view_rows(self, con: Any, box: str | None) -> pa.Table:
        """The runs that pass ``box``, oldest first; kept while only the sort changes (at 10^6 runs, 100-120 ms
        of a sort's 400 were reading them again). The view's without a filter are kept beside the last
        filter's: clearing a filter read every run again (first rows after 350 ms instead of ~100)."""
        key = (box or "").strip()
        if key not in self._rows:
            cond, args = self._cond(con, box)
            rows = paging.view_rows(con, cond, args)
            self._rows = {k: v for k, v in self._rows.items() if k == ""}
            self._rows[key] = rows
        return self._rows[key]

    def window_ids(self, limit: int | None = None) -> list[str]:
        return self.order.window(self.offset, min(limit or self.limit, self.limit))

    def move(self, offset: int, limit: int) -> None:
        self.offset = max(0, min(int(offset), max(0, len(self.order) - 1)))
        self.limit = max(1, min(int(limit), 1_000))

    def window(self, con: Any, limit: int | None = None) -> pd.DataFrame:
        """The rows on the page (the first ``limit`` of them), in table order, with every column the view
        has (the same columns whatever the window: the page's column choice must not change as it scrolls)."""
        ids = self.window_ids(limit)
        frame = queries.runs_frame(con, ids=ids, max_columns=None) if ids else \
            pd.DataFrame(columns=queries.BASE_COLUMNS)
        # in table order; a run deleted since the order was read is left out, not shown as a blank row
        frame = frame.set_index("run_id", drop=False).reindex(ids).dropna(subset=["run_id"]).reset_index(drop=True)
        return self.with_every_column(plots.chart_frame(frame))

    def names(self) -> list[str]:
        """The view's params, metrics and values columns, in the frame's order."""
        return [f"{g}.{k}" for g, k, _ in sorted(self.columns, key=lambda c: (
            ("params", "metrics", "values").index(c[0]), c[1]))]

    def with_every_column(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A chart frame of some of the view's runs with every column of the view, in its order."""
        base = [c for c in frame.columns if not c.startswith(("params.", "metrics.", "values."))]
        return frame.reindex(columns=base + self.names())

    def kinds(self) -> dict[str, str]:
        return {f"{g}.{k}": kind for g, k, kind in self.columns}

    # -- the scatter's axes, over every run of the view ----------------------------------------------
    def axis_values(self, con: Any, x: str | None, y: str | None) -> pa.Table | None:
        if not x or not y:
            return None
        if self.numbers is None or self.axes != (x, y):
            cond, args = self._cond(con, self.box if not self.error else None)
            self.numbers, self.axes = paging.numbers(con, cond, args, [x, y] if x != y else [x]), (x, y)
        return self.numbers

    def brushed(self, con: Any, ranges: dict[str, list[float]], x: str | None, y: str | None) -> list[str] | None:
        """Every run of the view inside the brush on the scatter of ``x`` and ``y``, in table order:
        exact, whatever the bins showed."""
        table = self.axis_values(con, x, y) if ranges else None   # the filter may have just changed
        if table is None:
            return None
        mask = np.ones(table.num_rows, dtype=bool)
        for name, (lo, hi) in ranges.items():
            if name not in table.column_names:
                return None
            values = table.column(name).to_numpy(zero_copy_only=False).astype("float64")
            lo, hi = min(lo, hi), max(lo, hi)
            with np.errstate(invalid="ignore"):
                mask &= (values >= lo) & (values <= hi)
        chosen = table.column("run_id").filter(pa.array(mask))
        return self.in_order(chosen)

    def in_order(self, ids: Any) -> list[str]:
        order = self.order.all()
        keep = pc.is_in(order, value_set=pa.array(ids, pa.string()) if not isinstance(ids, pa.ChunkedArray)
                        else ids.combine_chunks())
        return order.filter(keep).to_pylist()

    def where_equals(self, con: Any, column: str, value: Any) -> list[str]:
        """The view's runs whose ``column`` is ``value`` (a bar of the bar chart), in table order: the
        same filter a user could type, so that it means the same."""
        if isinstance(value, float) and not math.isfinite(value):   # no filter can say it; the page shows none
            return []
        term = f"{filters.filter_name(column)} = {filters.filter_literal(value)}"
        box = f"({self.box}) and {term}" if self.box and not self.error else term
        cond, args = self._cond(con, box)
        return paging.ordered_ids(con, cond, args, self.sort, self.desc).to_pylist()

    def range_to(self, anchor: str | None, run_id: str) -> list[str]:
        """The runs between the last clicked one and this one, in table order (a shift-click)."""
        order = self.order.all()
        here = pc.index(order, run_id).as_py()
        there = pc.index(order, anchor).as_py() if anchor else -1
        if here < 0 or there < 0:
            return [run_id]
        lo, hi = min(here, there), max(here, there)
        return order.slice(lo, hi - lo + 1).to_pylist()



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
        frame = self._view.with_every_column(plots.chart_frame(raw))
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
        knows which of its messages they answer."""
        with self._lock:
            self._page_window(content, con)

    def _page_window(self, content: dict[str, Any], con: Any) -> None:
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
