"""Messages from a page answered one at a time on a thread of their own, the newest winning.

A message that comes while another is answered is merged into the one waiting (its keys win: a scroll
after a sort keeps the sort) and interrupts the DuckDB query running, so a double click on a header or
a scroll across a big table costs one answer, not one per message (a sort of 10^6 runs takes most of a
second). DuckDB forgets an interrupt that comes between two queries, so the query running is
interrupted until its answer stops; the answer checks ``superseded()`` before it sends anything.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, Callable

import duckdb

from ..errors import warn


class Superseded(Exception):
    """A newer message came while one was answered: its answer is left to that one's."""


class LatestAnswer:
    """``answer(content, con)`` for the messages given to ``ask``, each on a connection from ``connect``
    (opened before it is interruptible: a writable open imports the spool first) under ``guard``, taken
    before the connection is opened; ``then(content)`` after an answer that went through."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Any]],
                 answer: Callable[[dict[str, Any], Any], None], then: Callable[[dict[str, Any]], None],
                 guard: AbstractContextManager[Any]) -> None:
        self._connect, self._answer, self._then, self._guard = connect, answer, then, guard
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbtrack-answers")
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._asked: dict[str, Any] | None = None   # merged, not yet taken by an answer
        self._running = False                        # an answer is on its way (connecting too)
        self._con: Any = None                        # the connection of the answer running
        self.last: Future[None] | None = None        # the answer of the last message (tests wait on it)

    def ask(self, content: dict[str, Any]) -> Future[None]:
        with self._lock:
            self._asked = {**(self._asked or {}), **content}
            running = self._con
        if running is not None:
            interrupt(running, lambda: self._con, self._lock)
        self.last = self._thread.submit(self._run)
        return self.last

    def busy(self) -> bool:
        """Whether a message waits or is answered."""
        with self._lock:
            return self._busy()

    def wait_idle(self, timeout: float) -> None:
        """Return once no message waits or is answered (or after ``timeout`` seconds)."""
        with self._idle:
            self._idle.wait_for(lambda: not self._busy(), timeout)

    def _busy(self) -> bool:   # under the lock
        return self._asked is not None or self._running

    def superseded(self) -> None:
        """Raise Superseded when a newer message waits (one that came between two queries)."""
        if self._asked is not None:
            raise Superseded

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        with self._lock:
            content, self._asked = self._asked, None
            self._running = content is not None
        if content is None:   # merged into one answered already
            return
        try:
            self._answer_one(content)
        finally:
            with self._idle:
                self._running = False
                self._idle.notify_all()

    def _answer_one(self, content: dict[str, Any]) -> None:
        try:
            with self._guard, self._connect() as con:
                with self._lock:
                    self._con = con
                try:
                    self._answer(content, con)
                finally:
                    with self._lock:
                        self._con = None
        except (duckdb.InterruptException, Superseded):   # a newer message came: its answer answers both
            with self._lock:
                self._asked = {**content, **(self._asked or {})}
            return
        except Exception as e:   # the page keeps what it shows; the user is told in one line
            warn(f"the panel could not show those rows: {e}")
            return
        self._then(content)


def interrupt(con: Any, current: Callable[[], Any], lock: threading.Lock) -> None:
    """Interrupt ``con``'s query, on a thread of its own, again every 20 ms while ``current()`` is still
    ``con`` (for 30 s at most): DuckDB forgets an interrupt that comes between two queries. ``lock`` is
    held by whoever changes ``current()``, so that a connection closed meanwhile is left alone."""
    def keep_at_it() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if current() is not con:
                    return
                con.interrupt()
            time.sleep(0.02)

    threading.Thread(target=keep_at_it, name="nbtrack-interrupt", daemon=True).start()
