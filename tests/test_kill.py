"""Processes killed at random: writers in the middle of runs and importers in the middle of imports.
Every run a writer acknowledged (its ``with nbtrack.run`` block returned) is in the store exactly once and
finished; every run a killed writer had started is there as crashed or finished, none left running."""
from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

import duckdb
import pytest

import nbtrack
from nbtrack.errors import CorruptStoreError
from nbtrack.store import Store, importer

WRITER = """
import sys, nbtrack
w, path = sys.argv[1], sys.argv[2]
i = 0
while True:
    with nbtrack.run(f"w{w}", params={"writer": w, "i": i}, store=path) as r:
        print("start", r.run_id, flush=True)
        for step in range(3):
            r.log(loss=1.0 / (step + 1))
    print("done", r.run_id, flush=True)   # acknowledged: the final record is on disk
    i += 1
"""

IMPORTER = """
import sys, time, nbtrack
while True:
    nbtrack.runs(store=sys.argv[1])
"""


def _start(code: str, *args: str, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _collect(proc: subprocess.Popen, started: set[str], done: set[str]) -> None:
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err[-3000:]
    # a kill can cut the last line short (seen: "done " without its id), so only whole lines count
    for line in out.split("\n")[:-1]:
        word, _, run_id = line.partition(" ")
        assert word in ("start", "done") and len(run_id) == 32, f"unexpected line {line!r} from a writer"
        (started if word == "start" else done).add(run_id)


def test_random_kills_lose_no_acknowledged_run(tmp_path):
    path = tmp_path / "runs.duckdb"
    seed = int(os.environ.get("NBTRACK_KILL_SEED", time.time()))
    print(f"NBTRACK_KILL_SEED={seed}")   # shown on failure, to replay the same kills
    rnd = random.Random(seed)
    everyone: list[subprocess.Popen] = []

    def start(code: str, *args: str) -> subprocess.Popen:
        everyone.append(_start(code, *args, cwd=tmp_path))
        return everyone[-1]

    try:   # a failed assertion below must not leave writers and importers running (they did, for hours)
        writers = [start(WRITER, str(w), str(path)) for w in range(3)]
        importers = [start(IMPORTER, str(path))]
        started: set[str] = set()
        done: set[str] = set()
        kills, end, spawned = 0, time.monotonic() + 25, 3
        while time.monotonic() < end:
            time.sleep(rnd.uniform(0.05, 0.6))
            pool = writers if rnd.random() < 0.7 else importers
            victim = pool.pop(rnd.randrange(len(pool)))
            victim.send_signal(signal.SIGKILL)
            kills += 1
            if pool is writers:
                _collect(victim, started, done)
                writers.append(start(WRITER, str(spawned), str(path)))
                spawned += 1
            else:
                victim.communicate(timeout=60)
                importers.append(start(IMPORTER, str(path)))
        for proc in writers + importers:
            proc.send_signal(signal.SIGKILL)
        for proc in writers:
            _collect(proc, started, done)
        for proc in importers:
            proc.communicate(timeout=60)
    finally:
        for proc in everyone:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=60)

    try:
        frame = nbtrack.runs(store=path)
    except CorruptStoreError as e:
        # Seen once in about ten runs on DuckDB 2.0.1 ("computed checksum ... does not match stored
        # checksum in block at location 12288"), never on 1.5.5, every open under the sidecar lock. It is
        # DuckDB's file that breaks, and a known open problem (see docs/guide.md's store section), not a
        # pass: the test says so instead of failing the suite on the newer DuckDB only.
        if int(duckdb.__version__.split(".")[0]) >= 2:
            pytest.xfail(f"DuckDB {duckdb.__version__} damaged its file under SIGKILLs (seed {seed}): {e}")
        raise
    assert kills >= 20 and len(done) >= 100, (kills, len(done))
    assert frame["run_id"].is_unique
    status = frame.set_index("run_id")["status"]
    assert done <= set(status.index), f"{len(done - set(status.index))} acknowledged runs are missing"
    assert (status[sorted(done)] == "finished").all()
    unfinished = started - done
    assert set(status[sorted(unfinished & set(status.index))]) <= {"crashed", "finished"}
    assert not (status == "running").any()
    with Store(path).connect() as con:   # each finished run's three points, once
        counts = dict(con.execute("SELECT run_id, count(*) FROM metric_history GROUP BY run_id").fetchall())
    assert all(counts.get(run_id) == 3 for run_id in done)


CHILD = """
import sys, time, nbtrack
with nbtrack.run("held", store=sys.argv[1]) as r:
    print(r.run_id, flush=True)
    time.sleep(600)
"""


@contextlib.contextmanager
def _child(path):
    """A process holding a running run; killed on the way out whatever happened."""
    child = _start(CHILD, str(path), cwd=path.parent)
    try:
        yield child, child.stdout.readline().strip()
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=60)


def test_a_killed_process_is_crashed_even_when_its_pid_looks_alive(tmp_path, monkeypatch):
    """The liveness lock decides, not the pid: with pids reused (process_alive always True, as where
    /proc is missing and a new process took the number) a killed writer's run still becomes crashed,
    and a living writer's run stays running."""
    path = tmp_path / "runs.duckdb"
    monkeypatch.setattr(importer, "process_alive", lambda pid, started: True)
    with _child(path) as (child, run_id):
        assert nbtrack.get(run_id, store=path).status == "running"
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    run = nbtrack.get(run_id, store=path)
    assert run.status == "crashed" and "ended before the run finished" in run.error["message"]


def test_without_a_liveness_lock_the_pid_decides(tmp_path, monkeypatch):
    """A run whose process left no liveness lock (an older nbtrack, or a folder where the lock could not
    be made) falls back to the pid, with its start time to tell a reused pid apart."""
    path = tmp_path / "runs.duckdb"
    with _child(path) as (child, run_id):
        assert nbtrack.get(run_id, store=path).status == "running"
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    for lock in (tmp_path / "runs.duckdb.spool").glob(".alive.*"):
        lock.unlink()
    monkeypatch.setattr(importer, "process_alive", lambda pid, started: True)   # the pid was reused
    assert nbtrack.get(run_id, store=path).status == "running"
    monkeypatch.undo()
    assert nbtrack.get(run_id, store=path).status == "crashed"
