"""Reproducibility checks: compare two runs output by output (report.py), rank what explains a
difference (causes.py), and find what ``%%track --check`` compares with.
"""
from __future__ import annotations

import json
import os
from typing import Any

from ..api import Run, resolve_store, run_from_detail
from .causes import causes
from ..errors import NbtrackError
from ..recorder.session import session
from .report import CAUSE_KINDS, VERDICTS, Cause, CheckReport, OutputCheck, compare_outputs, verdict_of
from ..store import Store, queries
from ..store.records import FINISHED

__all__ = ["CAUSE_KINDS", "VERDICTS", "Cause", "CheckReport", "OutputCheck", "check", "last_check"]
RTOL, ATOL = 1e-9, 0.0


class _Reader:
    """Runs for one check: from this kernel's memory when it just recorded them, else from the store,
    which is opened on first need only (a check of two runs made here never waits for DuckDB)."""

    def __init__(self, store: Store, use_recent: bool = False) -> None:
        self.store = store
        self.use_recent = use_recent
        self._cm: Any = None
        self._con: Any = None

    @property
    def con(self) -> Any:
        if self._con is None:
            session.syncer.flush()
            self._cm = self.store.connect()
            self._con = self._cm.__enter__()
        return self._con

    def run(self, ref: Run | str) -> Run:
        if isinstance(ref, Run):
            return ref
        cached = session.recent.get(ref) if self.use_recent else None
        if cached is not None and cached.store is not None and cached.store.path == self.store.path:
            return cached
        con = self.con
        return run_from_detail(queries.run_detail(con, queries.resolve_run_id(con, ref, str(self.store.path))), self.store)

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = self._con = None


def _repeat_group(run: Run, reader: _Reader) -> list[Run]:
    group = run.info.get("repeat_group")
    if not group:
        return []
    members = [r for r in session.recent.values() if r.info.get("repeat_group") == group] if reader.use_recent else []
    if members and len(members) == max(m.info.get("repeat_index") or 0 for m in members) + 1:
        return sorted(members, key=lambda r: r.info.get("repeat_index") or 0)
    return [reader.run(i) for i in queries.repeat_members(reader.con, group)]


def check(run_a: Run | str, run_b: Run | str, *, rtol: float = RTOL, atol: float = ATOL,
          tolerances: dict[str, float | tuple[float, float]] | None = None,
          store: str | os.PathLike[str] | Store | None = None) -> CheckReport:
    """Compare run ``b`` with run ``a`` (the reference): per output and overall, and why they differ.

    Metrics within ``rtol``/``atol`` (or ``tolerances={"loss": rtol}`` / ``{"loss": (rtol, atol)}``)
    are ``within_tolerance``; runs made with ``--repeat`` are compared by mean against the spread
    of their repeats.
    """
    return _check(_Reader(resolve_store(store)), run_a, run_b, rtol, atol, tolerances)


def check_recent(run_a: str, run_b: str, store: Store, rtol: float = RTOL, atol: float = ATOL,
                 tolerances: dict[str, float | tuple[float, float]] | None = None) -> CheckReport:
    """``check`` for ``%%track --check``: runs this kernel just recorded are read from memory."""
    return _check(_Reader(store, use_recent=True), run_a, run_b, rtol, atol, tolerances)


def _check(reader: _Reader, run_a: Run | str, run_b: Run | str, rtol: float, atol: float,
           tolerances: dict[str, float | tuple[float, float]] | None) -> CheckReport:
    try:
        a, b = reader.run(run_a), reader.run(run_b)
        groups = {"a": _repeat_group(a, reader), "b": _repeat_group(b, reader)}
        outputs = compare_outputs(a, b, rtol, atol, tolerances, groups)
        verdict = verdict_of(outputs)
        return CheckReport(a, b, verdict, outputs, causes(a, b, verdict, reader))
    finally:
        reader.close()


def remember_run(run: Run) -> None:
    """Keep this kernel's latest runs, as recorded: what --check compares with first."""
    session.remember(run)


def recent_reference(name: str, params: dict[str, Any], store: Store) -> str | None:
    """The latest run of this kernel with this name and these cell params, if it finished."""
    want = _normal(params)
    for run in reversed(list(session.recent.values())):
        if run.name == name and run.store is not None and run.store.path == store.path:
            own = {k: v for k, v in run.params.items() if run.param_kinds.get(k) in CELL_PARAM_KINDS}
            if _normal(own) == want:
                return run.run_id if run.status == FINISHED else None
    return None


CELL_PARAM_KINDS = ("literal", "override")


def find_reference(store: Store, name: str, params: dict[str, Any], exclude: str | None = None) -> str | None:
    """The latest finished run of this name with these params (what ``%%track --check`` compares with).

    ``params`` are the cell's own (literal and ``-p``) params: a changed input is what a check
    should explain, not a reason to compare with another run."""
    if not store.exists():
        return None
    want = _normal(params)
    with store.connect() as con:
        for run_id in queries.reference_candidates(con, name, exclude):
            if _normal(queries.params_of(con, run_id, CELL_PARAM_KINDS)) == want:
                return run_id
    return None


def _normal(params: dict[str, Any]) -> str:
    """Params as the store gives them back (tuples are lists, keys sorted)."""
    return json.dumps(params, sort_keys=True, default=repr)


def last_check() -> CheckReport:
    """The report of this kernel's latest ``%%track --check``."""
    if session.last_check is None:
        raise NbtrackError("no check report: run a cell with %%track --check (the latest one, if any, found "
                           "no earlier run of that cell with the same params to compare with)")
    return session.last_check


def remember(report: CheckReport | None) -> None:
    session.last_check = report
