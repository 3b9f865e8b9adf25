"""``%%track`` and ``%nbtrack``: argument parsing only; the recorder does the work."""
from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from .. import api
from ..errors import NbtrackError
from .cell import CellTracker
from .options import help_text
from .sweep import run_sweep
from ..recorder.session import session
from ..store import Store

NBTRACK_USAGE = """%nbtrack                 show the store and the last runs
%nbtrack store PATH|URL [--data-path DIR] [--read-only]
                         record into (and read from) another store, a file or a team store URL
%nbtrack off | on        pause / resume tracking (%%track cells then run untracked)
%nbtrack summary off|on  hide / show the line printed after each tracked cell
%nbtrack budget SECONDS  time a cell's fingerprints may spend on slow paths (default 0.2)"""


@magics_class
class TrackMagics(Magics):
    def __init__(self, shell: Any, tracker: CellTracker) -> None:
        super().__init__(shell)
        self.tracker = tracker

    @cell_magic
    def track(self, line: str, cell: str) -> None:
        # Normally the line is handled before the cell runs (cell.py); IPython calls this function only
        # when the options are wrong (to report them), for sweeps, or when it is called directly.
        plan = self.tracker.prepare(line, cell)  # raises UsageError naming the bad option
        if not plan.options.sweep:
            self.tracker.force(plan)
            self.shell.run_cell(cell, store_history=False)
            return
        run_sweep(self.tracker, plan, cell)
        if plan.options.check:
            self.tracker.checks.show_last()

    track.__doc__ = help_text()   # %%track? lists every option the parser accepts

    @line_magic
    def nbtrack(self, line: str) -> None:
        """%nbtrack [store PATH | off | on | summary off|on | budget SECONDS]"""
        try:
            args = shlex.split(line)
        except ValueError as e:
            raise UsageError(f"%nbtrack: {e}\n{NBTRACK_USAGE}") from None
        tracker = self.tracker
        if not args:
            self._show()
        elif args[0] == "store" and len(args) >= 2:
            store = self._store_from(args[1:])
            try:
                store.sync()
            except NbtrackError as e:
                raise UsageError(f"%nbtrack store: {e}") from None
            tracker.store = store
            session.store = store
            print(f"nbtrack: recording into {store.path}")
        elif args == ["off"] or args == ["on"]:
            tracker.enabled = args[0] == "on"
            print(f"nbtrack: tracking {'on' if tracker.enabled else 'paused: %%track cells run untracked'}")
        elif len(args) == 2 and args[0] == "summary" and args[1] in ("on", "off"):
            tracker.summary = args[1] == "on"
        elif len(args) == 2 and args[0] == "budget":
            try:
                seconds = float(args[1])
            except ValueError:
                seconds = -1.0
            if not seconds >= 0:
                raise UsageError(f"%nbtrack budget: {args[1]!r} is not a number of seconds (0.2, 5, inf)")
            tracker.budget_seconds = seconds
            print(f"nbtrack: fingerprints may spend {seconds:g} s per cell on slow paths")
        else:
            raise UsageError(f"%nbtrack: unknown arguments {line.strip()!r}\n{NBTRACK_USAGE}")

    @staticmethod
    def _store_from(args: list[str]) -> Store:
        location, data_path, read_only = args[0], None, False
        rest = args[1:]
        while rest:
            if rest[0] == "--data-path" and len(rest) >= 2:
                data_path, rest = rest[1], rest[2:]
            elif rest[0] == "--read-only":
                read_only, rest = True, rest[1:]
            else:
                raise UsageError(f"%nbtrack store: unknown option {rest[0]!r}\n{NBTRACK_USAGE}")
        try:
            return Store(location, data_path=data_path, read_only=read_only)
        except NbtrackError as e:
            raise UsageError(f"%nbtrack store: {e}") from None

    def _show(self) -> None:
        store = self.tracker.store
        state = "on" if self.tracker.enabled else "paused"
        print(f"nbtrack store: {store.path} (tracking {state})")
        try:
            frame = api.runs(store=store, limit=10)
        except NbtrackError as e:
            print(f"nbtrack warning: {e}")
            return
        if frame.empty:
            print("no runs yet: put %%track on a cell")
            return
        cols = ["run_id", "name", "status", "duration_s"]
        cols += [c for c in frame.columns if c.startswith("params.")][:3]
        cols += [c for c in frame.columns if c.startswith("metrics.")][:4]
        view = frame[cols].copy()
        view["run_id"] = view["run_id"].str[:8]
        print(view.to_string(index=False))


def load(shell: Any) -> CellTracker:
    if session.tracker is not None and session.tracker.shell is shell:
        return session.tracker
    tracker = CellTracker(shell)
    if session.store is not None:
        tracker.store = session.store
    shell.register_magics(TrackMagics(shell, tracker))
    tracker.register()
    session.tracker = tracker
    return tracker


def unload(shell: Any) -> None:
    """``%unload_ext nbtrack``: the hooks and the magics go, so a ``%%track`` cell is an error again
    rather than a cell that silently runs untracked."""
    if session.tracker is not None:
        session.tracker.unregister()
        session.tracker = None
    magics = getattr(getattr(shell, "magics_manager", None), "magics", {})
    magics.get("cell", {}).pop("track", None)
    magics.get("line", {}).pop("nbtrack", None)
