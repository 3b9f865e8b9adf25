"""This process's state, in one object: the store runs go to, the runs in progress, the latest run, sweep
and check, and the background workers. The kernel layer sets it (``%load_ext``, ``%nbtrack store``),
``nbtrack.connect`` sets the store, the API reads it, and ``session.reset()`` starts afresh (tests).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import system
from .sync import Syncer, syncer

if TYPE_CHECKING:
    from ..store import Store
    from .run import ActiveRun

RECENT = 64   # runs kept in memory for --check to compare with first


@dataclass
class Session:
    store: Store | None = None      # the store connect() chose; None: $NBTRACK_STORE or ./.nbtrack/runs.duckdb
    tracker: Any = None             # the CellTracker of the loaded IPython extension, if any
    active: list[ActiveRun] = field(default_factory=list)   # runs in progress; nbtrack.log goes to the last
    last_run_id: str | None = None  # this process's latest finished run, cell or script
    last_finished: ActiveRun | None = None
    last_sweep_id: str | None = None   # the latest %%track --grid/--repeat sweep
    last_check: Any = None          # the latest check report (repro/report.py's CheckReport)
    recent: dict[str, Any] = field(default_factory=dict)   # run id -> Run, newest last: what --check tries first
    syncer: Syncer = syncer        # the background import
    monitor: system.Monitor = system.monitor   # the system-metrics sampler
    hub: Any = None                 # the thread that keeps open panels current (widgets/live.py), once made

    def current_store(self) -> Store:
        """The store runs go to now: the loaded extension's, else the one ``connect()`` chose, else the
        default location."""
        if self.tracker is not None:
            return self.tracker.store
        if self.store is None:
            from ..store import Store

            return Store()
        return self.store

    def remember(self, run: Any) -> None:
        """Keep a finished run in memory for ``--check`` (the latest ``RECENT``)."""
        self.recent[run.run_id] = run
        while len(self.recent) > RECENT:
            self.recent.pop(next(iter(self.recent)))

    def forget(self, run_ids: Any) -> None:
        """Drop deleted runs from memory, so ``--check`` no longer compares with them."""
        for run_id in run_ids:
            self.recent.pop(run_id, None)

    def reset(self, store: Store | None = None) -> None:
        """Forget every run, sweep and check of this process, wait for pending imports and drop their
        errors, and record into ``store`` (the extension stays loaded)."""
        self.syncer.flush()
        self.syncer.errors.clear()
        self.active.clear()
        self.last_run_id = self.last_finished = self.last_sweep_id = self.last_check = None
        self.recent.clear()
        self.store = store
        if self.tracker is not None and store is not None:
            self.tracker.store = store


session = Session()
