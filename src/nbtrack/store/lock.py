"""Two file locks: the sidecar lock taken around every open of the DuckDB file, and a liveness lock
that each writing process holds for its lifetime.

DuckDB locks a file for one read-write process at a time and refuses other
openers at once; DuckDB 2.0.1 can also lose commits when processes take turns
opening one file (it reads the header before taking its own lock). Waiting on
``<store>.lock`` first turns both into a short, orderly queue.

A run left ``running`` by a process that died is marked ``crashed`` by the
next importer. Asking "is pid N alive" needs ``/proc`` to tell a reused pid
from the original; a lock held by the writer for its lifetime needs nothing:
the operating system drops it when the process ends, however it ends.

filelock does the locking (``flock`` on POSIX, ``msvcrt.locking`` on
Windows), so both work wherever nbtrack installs.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from ..errors import StoreBusyError

POLL_S = 0.005   # imports take milliseconds: a waiter polls often (a flock attempt costs microseconds)


class FileLock:
    """An exclusive lock on a sidecar file; one object per acquisition."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: filelock.BaseFileLock | None = None

    def acquire(self, timeout: float = 30.0, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, return False at once if another holder has it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        lock = filelock.FileLock(str(self.path), thread_local=False)
        try:
            lock.acquire(timeout=timeout if blocking else 0, poll_interval=POLL_S)
        except filelock.Timeout:
            if not blocking:
                return False
            msg = (f"the store {self.path.with_suffix('')} stayed locked by another process for "
                   f"{timeout:.0f} s; find it with: fuser {self.path}")
            raise StoreBusyError(msg) from None
        except OSError:   # a read-only folder or a full disk: opening the store itself will say what is wrong
            return True
        self._lock = lock
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


@contextmanager
def held(path: Path, timeout: float = 30.0, blocking: bool = True) -> Iterator[bool]:
    """The sidecar lock ``path`` for the block; it yields whether it is held (False only without
    ``blocking``, when another process has it)."""
    lock = FileLock(path)
    got = lock.acquire(timeout=timeout, blocking=blocking)
    try:
        yield got
    finally:
        lock.release()


ALIVE_PREFIX = ".alive."
_held: dict[str, filelock.BaseFileLock] = {}
_guard = threading.Lock()


def hold_alive(folder: Path, session: str) -> None:
    """Hold ``<folder>/.alive.<session>`` until this process ends (once per folder)."""
    path = folder / f"{ALIVE_PREFIX}{session}"
    with _guard:
        if str(path) in _held:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = filelock.FileLock(str(path), thread_local=False)
            lock.acquire(timeout=0)
        except (OSError, filelock.Timeout):   # no liveness lock: the pid check stands in for it
            return
        _held[str(path)] = lock


def session_alive(folder: Path, session: str | None) -> bool | None:
    """Whether the process of ``session`` still runs: True or False from its liveness lock, None when it
    left none in this folder (an older nbtrack, another folder): then ask by pid."""
    if not session:
        return None
    path = folder / f"{ALIVE_PREFIX}{session}"
    if str(path) in _held:
        return True
    if not path.exists():
        return None
    probe = filelock.FileLock(str(path), thread_local=False)
    try:
        probe.acquire(timeout=0)
    except filelock.Timeout:
        return True
    except OSError:
        return None
    probe.release()
    try:
        os.unlink(path)
    except OSError:
        pass
    return False


def process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int | None, started: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is not None:
        now = process_start(pid)
        if now is not None and now != started:
            return False
    return True
