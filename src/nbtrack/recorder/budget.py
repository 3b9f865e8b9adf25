"""A cell's fingerprinting budget: the slow paths (hashing item by item, pickling) share a time limit,
and an object hashed by pickling is pickled once per cell. capture.py consults the current budget
through a context variable, so no fingerprinter needs it passed down."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

BUDGET_SECONDS = 0.2   # per cell, for the slow paths only (memory-speed hashing is not counted)
SLOW_GRACE = 0.002


class OverBudget(Exception):
    pass


class Budget:
    """One cell's fingerprinting. The slow paths (hashing item by item, pickling) share ``seconds``
    of time, counted only while they run; an object hashed by pickling is pickled once per cell
    (kept by identity), so a user's ``__reduce__`` runs once even when the object is both read and
    bound (``y = obj``)."""

    def __init__(self, seconds: float = BUDGET_SECONDS) -> None:
        self.seconds, self.spent = seconds, 0.0
        self.pickled: dict[int, tuple[Any, dict[str, Any] | Exception]] = {}
        self.skipped: dict[int, tuple[Any, str]] = {}
        self._since: float | None = None
        self._what = ""

    @contextmanager
    def slow(self, what: str) -> Iterator[None]:
        if self._since is not None:   # nested (a container's item pickled): the outer one counts
            yield
            return
        self._since, self._what = time.perf_counter(), what
        try:
            yield
        finally:
            self.spent += time.perf_counter() - self._since
            self._since = None

    def check(self) -> None:
        """Raise OverBudget once the cell's slow paths are over budget; each slow path still gets a
        couple of milliseconds, so small values are recorded however much a big one took."""
        if self._since is None:
            return
        elapsed = time.perf_counter() - self._since
        if elapsed > SLOW_GRACE and self.spent + elapsed > self.seconds:
            raise OverBudget(f"this cell's fingerprints used their {self.seconds * 1000:.0f} ms "
                             f"({self._what}); leave it out with %%track --exclude NAME or allow "
                             "more with %nbtrack budget SECONDS")


UNLIMITED = Budget(float("inf"))   # outside a cell (nbtrack.fingerprint, reproductions): no limit, no memo
current: ContextVar[Budget] = ContextVar("nbtrack_fingerprint_budget", default=UNLIMITED)
