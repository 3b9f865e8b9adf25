"""Keeps open panels current: runs finished in this kernel, runs written by other processes, and the
curves of a cell that is still running.

One daemon thread serves every panel of the process. It wakes twice a second:
- a store this kernel has just synced (the recorder's sync thread tells it) refreshes its panels;
- every ``POLL_S`` it compares each watched store's signature (spool files, file size and time), so runs
  from other kernels and scripts show up within a few seconds without anyone re-running the panel;
- while a run of this process is logging points, panels that show its curves get the new points, at
  most ``LIVE_CURVE_S`` apart (the cell keeps the GIL most of the time; the snapshot is a copy).
Panel updates are trait changes sent from this thread; ipykernel forwards them through its IOPub
thread, so they reach the page while the kernel is busy running a cell.
"""
from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import warn
from ..recorder.session import session

if TYPE_CHECKING:
    from .compare import ComparePanel

TICK_S = 0.5
POLL_S = 2.0
LIVE_CURVE_S = 0.5


class Hub:
    def __init__(self) -> None:
        self._panels: weakref.WeakSet[ComparePanel] = weakref.WeakSet()
        self._synced: set[str] = set()
        self._seen: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    def add(self, panel: "ComparePanel") -> None:
        with self._lock:
            self._panels.add(panel)
            self._seen[str(panel.store.path)] = panel.store.signature()
            if self._thread is None or not self._thread.is_alive():
                if self._on_synced not in session.syncer.listeners:
                    session.syncer.listeners.append(self._on_synced)
                self._thread = threading.Thread(target=self._loop, name="nbtrack-panels", daemon=True)
                self._thread.start()

    def remove(self, panel: "ComparePanel") -> None:
        with self._lock:
            self._panels.discard(panel)

    def _on_synced(self, store: Any) -> None:
        with self._lock:
            self._synced.add(str(store.path))
        self._wake.set()

    def _loop(self) -> None:
        last_poll = time.monotonic()
        while True:
            self._wake.wait(TICK_S)
            self._wake.clear()
            with self._lock:
                panels = list(self._panels)
                synced, self._synced = self._synced, set()
            if not panels:
                continue
            by_store: dict[str, list[ComparePanel]] = {}
            for panel in panels:
                by_store.setdefault(str(panel.store.path), []).append(panel)
            now = time.monotonic()
            poll = now - last_poll >= POLL_S
            if poll:
                last_poll = now
            for path, group in by_store.items():
                store = group[0].store
                try:
                    changed = path in synced
                    if poll and not changed:
                        signature = store.signature()
                        changed = signature != self._seen.get(path)   # the refresh imports any spool
                    if changed:
                        # taken before the panels read: a write that lands while they refresh changes it
                        # again and is shown at the next poll. (Taken after, such a write was never
                        # shown: seen in the browser test, a note written from Python during a refresh.)
                        # A refresh that imports a spool costs one more refresh, which finds nothing new.
                        before = store.signature()
                        due = [panel for panel in group if panel._refresh_due()]
                        for panel in due:
                            panel.refresh()
                        if len(due) == len(group):   # else the change stays unseen until they are due
                            self._seen[path] = before
                    for panel in group:
                        panel.push_live_curves(LIVE_CURVE_S)
                except Exception as e:  # a panel must not kill the thread that serves the others
                    if path not in self._warned:
                        self._warned.add(path)
                        warn(f"the panel on {path} stopped updating: {e}")


hub = session.hub = Hub()   # one per process, in the session beside the syncer and the sampler
