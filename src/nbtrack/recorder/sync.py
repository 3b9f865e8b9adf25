"""The background thread that imports a kernel's spool into its store, off the cell's path.

Imports are coalesced: a store is imported at once when it has not been for ``INTERVAL`` seconds, else
when that interval is up, with everything spooled meanwhile. A tight loop of script runs then costs one
import per interval, not one per run: a back-to-back import holds the GIL in its Python parts, and every
run of the loop waited for it after each of its system calls (measured: 0.3 ms per file opened).
Anything that reads runs calls ``flush``, which imports now.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Any

from ..store import Store

INTERVAL = 0.5   # seconds between two imports of one store while runs keep coming
_WAKE, _FLUSH = object(), object()


class Syncer:
    """Imports spools into their DuckDB files off the cell's path, one store at a time."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._due: dict[str, tuple[float, Store]] = {}   # store path -> (when to import it, the store)
        self._last: dict[str, float] = {}                 # store path -> when its last import started
        self.errors: dict[str, str] = {}
        self.listeners: list[Any] = []   # called with each store after it was synced (open panels)

    def _ensure_thread(self) -> None:
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="nbtrack-sync", daemon=True)
                self._thread.start()

    def request(self, store: Store) -> None:
        """Import ``store``'s spool soon: now, or when ``INTERVAL`` has passed since its last import. A
        store already waiting for its turn is left waiting: the thread is not woken once per run."""
        key = str(store.path)
        with self._guard:
            if key in self._due:
                return
            self._due[key] = (self._last.get(key, -INTERVAL) + INTERVAL, store)
        self._ensure_thread()
        self._queue.put(_WAKE)

    def _loop(self) -> None:
        while True:
            with self._guard:
                wait = min((when for when, _ in self._due.values()), default=None)
            try:
                item = self._queue.get(timeout=None if wait is None else max(wait - time.monotonic(), 0))
            except queue.Empty:
                item = None
            try:
                with self._guard:
                    now = time.monotonic()
                    ready = [(key, store) for key, (when, store) in self._due.items()
                             if item is _FLUSH or when <= now]
                    for key, _ in ready:
                        del self._due[key]
                        self._last[key] = now
                for key, store in ready:
                    self._sync(key, store)
            finally:
                if item is not None:
                    self._queue.task_done()

    def _sync(self, key: str, store: Store) -> None:
        try:
            store.sync(blocking=False)
            self.errors.pop(key, None)   # a later success makes an earlier error moot
        except Exception as e:  # reported by the next cell, in one line
            self.errors[key] = str(e)
        for listener in list(self.listeners):
            listener(store)

    def flush(self) -> None:
        """Wait until every requested import is done, importing now what was waiting for its interval."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_FLUSH)
            self._queue.join()

    def finish(self) -> None:
        """At exit: wait for the last imports and say, in one line each, which could not be done."""
        self.flush()
        from ..errors import warn

        for where, error in list(self.errors.items()):
            warn(f"{error} (the runs not yet in {where} are kept in the local spool and are sent by the next "
                 "nbtrack command that opens that store on this machine)")
        self.errors.clear()

    def pop_error(self, store: Store) -> str | None:
        return self.errors.pop(str(store.path), None)


syncer = Syncer()
