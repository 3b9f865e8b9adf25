"""The state of a paged panel's table (paged.py): which runs of the store, in what order (sorted and
filtered in the store, store/paging.py), which are on the page, and the scatter's axis values over every
run of the view, from which a brush selects exactly. Never the runs themselves: their ids in table order
(Arrow, ~40 MB at a million runs) and two columns of numbers.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import chart_data
from ..errors import FilterError
from ..store import Store, filter_text, paging, queries, wide
from ..store.records import RUNNING

SAMPLE = 1_000      # runs drawn mark by mark in the parallel and bar charts of a paged panel
WINDOW = 200        # rows sent at a time (the table shows ~11)


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
        return self.with_every_column(chart_data.chart_frame(frame))

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
        term = f"{filter_text.filter_name(column)} = {filter_text.filter_literal(value)}"
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
