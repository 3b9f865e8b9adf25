"""An in-memory DuckDB per store file and process, that a writable open attaches the file to.

Making a DuckDB database instance costs 8 ms here (``duckdb.connect(':memory:')`` alone: 6.7 ms on
DuckDB 1.5.5, 10.5 ms on 2.0.1), attaching a file to a kept one 2 ms: a store open is that much
cheaper (``get(id)`` at 10^6 runs: 26 -> 19 ms). The file is detached after each use, as a connection
was closed, so a process never holds a store between operations (another process could not open it).

An instance kept alive would be inherited by a forked child (a data loader's worker) without the
threads DuckDB runs it with, where using or freeing it can hang, and where DuckDB (which lets a file
be attached once per process) would refuse to open the store again: it is closed before every fork
(``os.register_at_fork``), after the opens other threads have in flight (milliseconds to seconds),
and made again on the next open. Read-only opens do not come here: they are locked down for users'
SQL (no files, no ATTACH), which an instance that attaches cannot be.

One instance per file, not one for all: DuckDB spills a big query (an import, a migration) into its
instance's temporary folder, which it cannot switch once used. An in-memory instance's default is
``.tmp`` in the working directory (a notebook's folder: gigabytes were left there by a killed
migration); a file's own is ``<file>.tmp`` beside it, and so is each instance's here. An instance
costs about 3 MB and a thread: a process that opens many stores in turn (a script over a folder of
them) keeps only the ``KEEP`` it used last among those no open holds.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import duckdb

FORK_WAIT_S = 30.0   # a fork waits this long at most for other threads' opens to end
KEEP = 4   # idle instances kept; the least recently used others are closed
_guard = threading.Lock()   # the instances and their count of opens
_idle = threading.Condition(_guard)
_dbs: dict[Path, duckdb.DuckDBPyConnection] = {}   # least recently used first
_busy: dict[Path, int] = {}   # opens out, per file
_opens = 0
_mine = threading.local()   # this thread's opens: a fork from inside one cannot wait for it
_inherited: list[duckdb.DuckDBPyConnection] = []   # busy at a fork: never used or freed in the child


def _alias(path: Path) -> str:
    """The name a store file is attached as (its own per path: two stores may be open at once)."""
    return "nbt_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]


def attach(path: Path, storage_version: str) -> duckdb.DuckDBPyConnection:
    """A connection of its own whose default database is ``path``, attached read-write (made in
    ``storage_version`` if it does not exist). Give it back with ``detach``."""
    global _opens
    with _guard:
        if path not in _dbs:
            _dbs[path] = duckdb.connect(":memory:", config={"temp_directory": f"{path}.tmp"})
            _dbs[path].execute("SET enable_progress_bar = false")   # DuckDB draws one on the user's terminal
        else:
            _dbs[path] = _dbs.pop(path)   # the most recently used, last
        con = _dbs[path].cursor()   # one per open: a connection is for one thread at a time
        _opens += 1
        _busy[path] = _busy.get(path, 0) + 1
        _mine.opens = getattr(_mine, "opens", 0) + 1
    name = _alias(path)
    try:
        # for a file it makes: a file of a newer format (another application's) is refused the option
        made = "" if path.exists() else f" (STORAGE_VERSION '{storage_version}')"
        con.execute(f"ATTACH '{_text(path)}' AS {name}{made}")
        con.execute(f"USE {name}")
    except BaseException:
        _give_back(con, path, detach=False)
        raise
    return con


def detach(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Close what ``attach`` opened: the file is closed (checkpointed) and free for other processes."""
    _give_back(con, path)


def _give_back(con: duckdb.DuckDBPyConnection, path: Path, detach: bool = True) -> None:
    global _opens
    try:
        con.close()   # first: what it left open (a failed transaction) is rolled back, not in DETACH's way
        if detach:
            with _dbs[path].cursor() as other:   # (kept while any open is out: a fork waits for them)
                other.execute(f"DETACH DATABASE IF EXISTS {_alias(path)}")
    finally:
        with _guard:
            _opens -= 1
            _mine.opens -= 1
            _busy[path] -= 1
            _close_idle()
            _idle.notify_all()


def _close_idle() -> None:
    """Close the least recently used instances that no open holds, past ``KEEP`` (under ``_guard``)."""
    idle = [p for p in _dbs if not _busy.get(p)]
    for path in idle[:max(0, len(idle) - KEEP)]:
        _dbs.pop(path).close()
        _busy.pop(path, None)


def _text(path: Path) -> str:
    return str(path).replace("'", "''")


def _before_fork() -> None:
    _guard.acquire()   # released after the fork, in the parent and in the child
    deadline = time.monotonic() + FORK_WAIT_S
    while _opens > getattr(_mine, "opens", 0) and time.monotonic() < deadline:
        _idle.wait(max(0.0, deadline - time.monotonic()))
    if not _opens:
        for db in _dbs.values():
            db.close()
        _dbs.clear()
        _busy.clear()


def _after_fork_in_child() -> None:
    global _opens
    _inherited.extend(_dbs.values())   # another thread had a store open: the child keeps them, untouched
    _dbs.clear()
    _busy.clear()
    _opens = 0
    _guard.release()


if hasattr(os, "register_at_fork"):   # not on Windows, which does not fork
    os.register_at_fork(before=_before_fork, after_in_parent=_guard.release, after_in_child=_after_fork_in_child)
