"""Lineage: a run is linked to the run that produced each of its inputs, by fingerprint.

When a run's input fingerprint equals an earlier run's output fingerprint, the earlier run produced
that input (of several, the latest before the reader started). Following those links up gives the
chain of tracked cells a result depends on; following them down, everything built on it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..api import resolve_store
from ..recorder.session import session
from ..inline import widget_bundle
from ..store import Store, queries
from ..store.records import FINISHED

MAX_DEPTH = 100


@dataclass
class Lineage:
    """The graph around one run: ``nodes`` (run id -> facts) and ``edges`` (producer, consumer, name)."""

    run_id: str
    nodes: dict[str, dict[str, Any]]
    edges: list[tuple[str, str, str]]
    store: Store | None = field(default=None, repr=False)

    def upstream(self) -> list[str]:
        """Every run this one depends on, producers before their consumers (then oldest first)."""
        return self._order(self._closure(self.run_id, up=True))

    def downstream(self) -> list[str]:
        """Every run built on this one, in the order they ran."""
        return self._order(self._closure(self.run_id, up=False))

    def _closure(self, start: str, up: bool) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for p, c, _ in self.edges:
                nxt = p if up and c == node else c if not up and p == node else None
                if nxt and nxt not in seen and nxt != start:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def _order(self, ids: set[str]) -> list[str]:
        return sorted(ids, key=lambda i: (str(self.nodes[i].get("started_at")), i))

    def to_frame(self) -> pd.DataFrame:
        """One row per link: ``producer, producer_name, consumer, consumer_name, input``."""
        return pd.DataFrame([{"producer": p, "producer_name": self.nodes[p]["name"], "consumer": c,
                              "consumer_name": self.nodes[c]["name"], "input": n} for p, c, n in self.edges],
                            columns=["producer", "producer_name", "consumer", "consumer_name", "input"])

    def _label(self, run_id: str) -> str:
        node = self.nodes[run_id]
        status = "" if node.get("status") == FINISHED else f" [{node.get('status')}]"
        return f"run {run_id[:8]} {node['name']}{status}"

    def __str__(self) -> str:
        lines = [f"lineage of {self._label(self.run_id)}"]
        up, down = self.upstream(), self.downstream()
        lines.append("upstream:" if up else "upstream: none (no input was produced by a tracked run)")
        for rid in up:
            reads = ", ".join(sorted(n for p, c, n in self.edges if p == rid))
            lines.append(f"  {self._label(rid)}  -> {reads}")
        lines.append("downstream:" if down else "downstream: none")
        for rid in down:
            reads = ", ".join(sorted(n for p, c, n in self.edges if c == rid))
            lines.append(f"  {self._label(rid)}  <- {reads}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def chart(self) -> Any:
        """The graph as an Altair chart: runs by generation, left to right, links labelled by input."""
        from ..plots import lineage_chart

        return lineage_chart(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": str(self), **widget_bundle(self._chart_view)}   # drawn in a notebook

    def _chart_view(self) -> Any:
        from ..widgets import ChartView

        return ChartView(self.chart())


def lineage(run: Any, store: str | os.PathLike[str] | Store | None = None) -> Lineage:
    """The upstream and downstream runs of ``run`` (a Run or a run id / prefix), linked by fingerprints."""
    st = resolve_store(store)
    session.syncer.flush()
    run_id = run.run_id if hasattr(run, "run_id") else str(run)
    with st.connect() as con:
        run_id = queries.resolve_run_id(con, run_id, str(st.path))
        edges: set[tuple[str, str, str]] = set()
        frontier, seen = [run_id], {run_id}
        for _ in range(MAX_DEPTH):   # upstream
            found = queries.upstream_edges(con, frontier)
            edges.update(found)
            frontier = [p for p, _, _ in found if p not in seen]
            seen.update(frontier)
            if not frontier:
                break
        frontier = [run_id]
        down_seen = {run_id}
        for _ in range(MAX_DEPTH):   # downstream: consumers whose latest producer is in the frontier
            consumers = [c for c in queries.consumers_of(con, frontier) if c not in down_seen]
            if not consumers:
                break
            found = [e for e in queries.upstream_edges(con, consumers) if e[0] in down_seen]
            edges.update(found)
            frontier = sorted({c for _, c, _ in found} - down_seen)
            down_seen.update(frontier)
            if not frontier:
                break
        ids = sorted(seen | down_seen)
        nodes = {r["run_id"]: r for r in queries.run_rows(con, ids)}
    return Lineage(run_id, nodes, sorted(edges), st)
