"""One retry-with-backoff loop for the store, its lock waits and the team store.

Hand-written rather than tenacity: each caller states one condition and one budget, and a dozen lines
here are easier to read at the call site than a decorator's options (and add no dependency)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def retry(fn: Callable[[], T], *, when: Callable[[Exception], bool], timeout: float | None = None,
          attempts: int | None = None, delay: float = 0.02, factor: float = 2.0, max_delay: float = 1.0) -> T:
    """``fn()``, tried again after a growing pause while it raises an error that ``when`` accepts, until
    ``timeout`` seconds have passed or ``attempts`` tries were made; then that error is raised. Any other
    error is raised at once."""
    deadline = None if timeout is None else time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            return fn()
        except Exception as e:
            spent = (attempts is not None and tries >= attempts) or (deadline is not None
                                                                     and time.monotonic() >= deadline)
            if spent or not when(e):
                raise
        time.sleep(delay)
        delay = min(delay * factor, max_delay)
