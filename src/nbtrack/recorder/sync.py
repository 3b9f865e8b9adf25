"""The background thread that imports a kernel's spool into its store, off the cell's path."""
from __future__ import annotations

import queue
import threading
from typing import Any

from ..store import Store


class _Syncer:
    """Imports spools into their DuckDB files off the cell's path, one store at a time."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._queued: set[str] = set()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.errors: dict[str, str] = {}
        self.listeners: list[Any] = []   # called with each store after it was synced (open panels)

    def write_later(self, store: Store, run_id: str, seq: int, record: dict[str, Any], known: set[str],
                    stale: Any = None) -> None:
        """Write a spool record from the background thread (a start record: only a crash needs it),
        unless ``stale()`` says a newer record of the run was written meanwhile."""
        self._ensure_thread()
        self._queue.put((store, run_id, seq, record, known, stale))

    def _ensure_thread(self) -> None:
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="nbtrack-sync", daemon=True)
                self._thread.start()

    def request(self, store: Store) -> None:
        with self._guard:
            if str(store.path) in self._queued:
                return
            self._queued.add(str(store.path))
        self._ensure_thread()
        self._queue.put(store)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, tuple):
                store, run_id, seq, record, known, stale = item
                try:
                    if stale is None or not stale():
                        store.spool.write_record(run_id, seq, record, known, durable=False)
                except Exception as e:
                    self.errors[str(store.path)] = str(e)
                finally:
                    self._queue.task_done()
                continue
            store = item
            try:
                with self._guard:
                    self._queued.discard(str(store.path))
                store.sync(blocking=False)
                self.errors.pop(str(store.path), None)   # a later success makes an earlier error moot
            except Exception as e:  # reported by the next cell, in one line
                self.errors[str(store.path)] = str(e)
            finally:
                self._queue.task_done()
            for listener in list(self.listeners):
                listener(store)

    def flush(self) -> None:
        if self._thread is not None and self._thread.is_alive():
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


syncer = _Syncer()
