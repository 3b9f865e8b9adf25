"""A sidecar file lock taken around every open of the DuckDB file.

DuckDB locks a file for one read-write process at a time and refuses other
openers at once; DuckDB 2.0.1 can also lose commits when processes take turns
opening one file (it reads the header before taking its own lock). Waiting on
``flock`` of ``<store>.lock`` first turns both into a short, orderly queue.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import StoreBusyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: DuckDB's own lock, retried, is all there is
    fcntl = None


class FileLock:
    """Exclusive ``flock`` on a sidecar file; one object per acquisition (flock is per open file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float = 30.0, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, return False at once if another holder has it."""
        if fcntl is None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            try:  # a read-only folder or a full disk: readers still queue on an existing lock file
                fd = os.open(self.path, os.O_RDONLY)
            except OSError:  # nothing to lock; opening the store itself will say what is wrong
                return True
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not blocking:
                    os.close(fd)
                    return False
                if time.monotonic() > deadline:
                    os.close(fd)
                    msg = (f"the store {self.path.with_suffix('')} stayed locked by another process for "
                           f"{timeout:.0f} s; find it with: fuser {self.path}")
                    raise StoreBusyError(msg) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
