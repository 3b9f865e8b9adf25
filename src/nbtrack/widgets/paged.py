"""The compare panel past a few thousand runs: the table pages from DuckDB and only its visible rows
travel to the page; the scatter counts runs in bins; a brush or a click selects exactly, here.

The kernel keeps the view's run ids in table order (Arrow, ~40 MB at a million runs) and the values
of the scatter's two axes; never the runs themselves. Filtering and sorting are queries (store/paging.py)
and the filter box speaks the language of ``runs(where=...)``.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import plots
from ..errors import FilterError
from ..store import Store, paging, queries, wide
from ..store.records import RUNNING

PAGE_PAST = 5_000   # runs; below, the whole table goes to the page, which sorts and filters it itself
SAMPLE = 1_000      # runs drawn mark by mark in the parallel and bar charts of a paged panel
WINDOW = 200        # rows sent at a time (the table shows ~11)
BINS = 40           # per axis of the binned scatter


class PagedView:
    """The state of one paged panel's table: which runs, in what order, and which are on the page."""

    def __init__(self, store: Store, experiment: str | None, where: str | None, ids: Sequence[str] | None) -> None:
        self.store, self.experiment, self.where, self.ids = store, experiment, where, ids
        self.box, self.sort, self.desc, self.error = "", None, False, ""
        self.order = pa.array([], pa.string())
        self.total_all = self.running = 0
        self.offset, self.limit = 0, WINDOW
        self.columns: list[tuple[str, str, str]] = []   # (group, key, kind)
        self.axes: tuple[str | None, str | None] = (None, None)
        self.numbers: pa.Table | None = None
        self.sampled: list[str] = []

    def _cond(self, con: Any, box: str | None) -> tuple[str, list[Any]]:
        return paging.view_sql(con, self.experiment, self.where, self.ids, box)

    def refresh(self, con: Any) -> None:
        """Re-read what the view holds (after runs were written or edited)."""
        cond, args = self._cond(con, None)
        self.numbers = None   # runs came or went
        self.total_all = paging.count(con, cond, args)
        self.running = paging.count(con, f"{cond} AND r.status = ?", [*args, RUNNING])
        whole = self.experiment is None and not self.where and self.ids is None
        self.columns = paging.keys(con, cond, args, wide.MAX_COLUMNS, whole=whole)
        self.sampled = paging.sample(con, cond, args, SAMPLE)
        self._reorder(con)

    def set_view(self, con: Any, box: str | None = None, sort: str | None = "", desc: bool | None = None) -> None:
        """A new filter or sort from the page; a filter that does not parse keeps the rows shown and
        says why in ``error``."""
        if box is not None and box != self.box:
            self.box = box
            self.numbers = None   # the scatter's counts follow the filter
        if sort != "":
            self.sort = sort or None
        if desc is not None:
            self.desc = bool(desc)
        self.offset = 0   # a new order starts at its top
        self._reorder(con)

    def _reorder(self, con: Any) -> None:
        try:
            cond, args = self._cond(con, self.box)
            order = paging.ordered_ids(con, cond, args, self.sort, self.desc)
            self.error = ""
        except FilterError as e:   # FilterSyntaxError too
            self.error = str(e)
            cond, args = self._cond(con, None)
            order = paging.ordered_ids(con, cond, args, self.sort, self.desc)
        except KeyError:   # a sort column the view no longer has
            self.sort = None
            return self._reorder(con)
        self.order = order
        self.offset = max(0, min(self.offset, len(order) - 1))

    def window_ids(self) -> list[str]:
        return self.order.slice(self.offset, self.limit).to_pylist()

    def move(self, offset: int, limit: int) -> None:
        self.offset = max(0, min(int(offset), max(0, len(self.order) - 1)))
        self.limit = max(1, min(int(limit), 1_000))

    def window(self, con: Any) -> pd.DataFrame:
        """The rows on the page, in table order, with every column the view has (the same columns
        whatever the window: the page's column choice must not change as it scrolls)."""
        ids = self.window_ids()
        frame = queries.runs_frame(con, ids=ids, max_columns=None) if ids else \
            pd.DataFrame(columns=queries.BASE_COLUMNS)
        # in table order; a run deleted since the order was read is left out, not shown as a blank row
        frame = frame.set_index("run_id", drop=False).reindex(ids).dropna(subset=["run_id"]).reset_index(drop=True)
        frame = plots.chart_frame(frame)
        names = [f"{g}.{k}" for g, k, _ in sorted(self.columns, key=lambda c: (
            ("params", "metrics", "values").index(c[0]), c[1]))]
        base = [c for c in frame.columns if not c.startswith(("params.", "metrics.", "values."))]
        return frame.reindex(columns=base + names)

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
        keep = pc.is_in(self.order, value_set=pa.array(ids, pa.string()) if not isinstance(ids, pa.ChunkedArray)
                        else ids.combine_chunks())
        return self.order.filter(keep).to_pylist()

    def where_equals(self, con: Any, column: str, value: Any) -> list[str]:
        """The view's runs whose ``column`` is ``value`` (a bar of the bar chart), in table order: the
        same filter a user could type, so that it means the same."""
        if isinstance(value, float) and not math.isfinite(value):   # no filter can say it; the page shows none
            return []
        term = f"{filter_name(column)} = {filter_literal(value)}"
        box = f"({self.box}) and {term}" if self.box and not self.error else term
        cond, args = self._cond(con, box)
        return paging.ordered_ids(con, cond, args, self.sort, self.desc).to_pylist()

    def range_to(self, anchor: str | None, run_id: str) -> list[str]:
        """The runs between the last clicked one and this one, in table order (a shift-click)."""
        here = pc.index(self.order, run_id).as_py()
        there = pc.index(self.order, anchor).as_py() if anchor else -1
        if here < 0 or there < 0:
            return [run_id]
        lo, hi = min(here, there), max(here, there)
        return self.order.slice(lo, hi - lo + 1).to_pylist()


def bins(values: pa.Table, x: str, y: str, n: int = BINS) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Counts of runs per cell of an n × n grid over the two axes (log-spaced where the scatter would
    use a log axis), as rows of cell edges and counts; and which axes are log."""
    xs = values.column(x).to_numpy(zero_copy_only=False).astype("float64")
    ys = values.column(y).to_numpy(zero_copy_only=False).astype("float64")
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    logs, edges = {}, []
    for name, v in ((x, xs), (y, ys)):
        log = bool(len(v) > 1 and (v > 0).all() and v.max() / v.min() >= 100)
        logs[name] = log
        lo, hi = (v.min(), v.max()) if len(v) else (0.0, 1.0)
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges.append(np.geomspace(lo, hi, n + 1) if log else np.linspace(lo, hi, n + 1))
    counts, ex, ey = np.histogram2d(xs, ys, bins=edges)
    i, j = np.nonzero(counts)
    frame = pd.DataFrame({x: ex[i], f"{x} (end)": ex[i + 1], y: ey[j], f"{y} (end)": ey[j + 1],
                          "runs": counts[i, j].astype("int64")})
    return frame, logs


def filter_name(column: str) -> str:
    """A panel column as the filter language names it (keys quoted: they may hold any character)."""
    group, _, key = column.partition(".")
    if group in ("params", "metrics", "values") and key:
        return f"{group}.`{key.replace('`', '``')}`"
    return {"label": "name", "run_label": "label"}.get(column, column)


def filter_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
