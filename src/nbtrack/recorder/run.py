"""One run's lifecycle: start, log, finish, written to the spool at each step.

A run is written when it starts (status ``running``) and again when it ends,
so a process that dies mid-run leaves a ``running`` record that the next
import marks ``crashed``. Everything a run writes is sealed (redacted, encoded) by store/seal.py.
"""
from __future__ import annotations

import atexit
import os
import resource
import sys
import time
import traceback
import uuid
from array import array
from typing import TYPE_CHECKING, Any

from ..errors import NoActiveRunError
from ..store import Store, records
from ..store.codec import text_safe
from ..store.lock import hold_alive, process_start
from ..store.spool import POINTS_PREFIX, parse_name, read_points
from .. import secrets
from . import environment, system
from .session import session

if TYPE_CHECKING:   # pyarrow is imported where a table is made: `import nbtrack` stays light
    import pyarrow as pa

CHUNK_POINTS = 500_000
EMBED_POINTS = 1_000   # a run's last points up to this many go in its final record, not a file of their own
_PID = os.getpid()
_PROC_START = process_start(_PID)
SESSION_ID = uuid.uuid4().hex



def current() -> "ActiveRun | None":
    return session.active[-1] if session.active else None




def _float(key: str, value: Any) -> float:
    try:
        if hasattr(value, "item") and not isinstance(value, (int, float)):
            value = value.item()  # numpy scalars, 0-d arrays, one-element tensors
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        return float(value)
    except Exception:
        msg = f"nbtrack.log: {key}={value!r:.60} is not a number; log numbers only (values go in variables)"
        raise TypeError(msg) from None


class ActiveRun:
    """A run in progress. Cells and ``nbtrack.run`` scripts both go through this class."""

    def __init__(self, store: Store, *, name: str, experiment: str, kind: str, tags: list[str] | None = None,
                 command: str | None = None, cell_id: str | None = None, execution_count: int | None = None,
                 notebook: str | None = None, source: str | None = None, source_path: str | None = None,
                 secret_values: set[str] | None = None, git_dir: str | None = None) -> None:
        self.store = store
        self.run_id = uuid.uuid4().hex
        self.name, self.experiment, self.kind = name, experiment, kind
        self.tags = list(tags or [])
        self.command, self.cell_id, self.execution_count = command, cell_id, execution_count
        self.notebook, self.source, self.source_path = notebook, source, source_path
        self.git_dir = git_dir or os.getcwd()
        self.status = records.RUNNING
        self.params: dict[str, tuple[Any, str]] = {}
        self.values: dict[str, Any] = {}
        self.metrics: dict[str, tuple[float, int | None, str]] = {}
        self.inputs: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, tuple[str, dict[str, Any]]] = {}
        self.displays: list[tuple[str, dict[str, Any]]] = []
        self.streams: dict[str, dict[str, Any]] = {}   # stdout/stderr: kept head and tail (streams.py)
        self.secret_values: set[str] = set(secret_values or ())
        self.redacted: set[str] = set()
        self.error: dict[str, str] | None = None
        self._seq = 0
        self._series: dict[str, tuple[Any, Any]] = {}          # key -> (steps.append, values.append)
        self._lists: dict[str, tuple[array, array]] = {}
        self.last_points: dict[str, tuple[int, float]] = {}   # key -> (step, value) of the last flush
        self._n_points = 0
        self._next_step = 0
        self._chunk = 0
        self._embedded: dict[str, Any] | None = None   # the last points, for the final record
        self.started_at = time.time()
        self._t0 = time.perf_counter()
        self._cpu0 = time.process_time()
        self.ended_at: float | None = None
        self.duration_s: float | None = None
        self.cpu_s: float | None = None
        self.sync_after = True   # False when the store is known to be unwritable: keep the spool
        self.record: dict[str, Any] | None = None
        self.system_points: dict[str, tuple[array, array]] = {}   # sys.* curves, from the sampler thread
        self.sampler: system.Watch | None = None
        self.checked_against: str | None = None
        self.sweep_id: str | None = None
        self.repeat_group: str | None = None
        self.repeat_index: int | None = None
        self.rng: dict[str, list[str | None]] = {}          # generator -> [state hash before, after]
        self.provenance: dict[str, dict[str, Any]] = {}     # name read -> the cell that bound it

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> "ActiveRun":
        """Mark the run as running: that record is on disk before the run's code runs, so a process
        killed at any point leaves a run to mark ``crashed``. Written here, not from a background thread:
        a thread woken for it competes for the GIL with the cell (measured in a real kernel: 0.5 ms more
        per cell than writing it here)."""
        self._write(durable=False)   # a crash needs it, an acknowledgement does not: no fsync
        hold_alive(self.store.spool.dir, SESSION_ID)   # how an importer tells this process has ended
        session.active.append(self)  # only a run that could be written receives nbtrack.log points
        if system.enabled() and self.kind in ("cell", "script"):
            self.sampler = session.monitor.watch(self.log_system, self.started_at)
        return self

    def log_system(self, step: int, values: dict[str, float]) -> None:
        """Points of the ``sys.*`` curves (sampler thread): kept apart from ``log``'s buffers."""
        for key, value in values.items():
            series = self.system_points.get(key)
            if series is None:
                series = self.system_points[key] = (array("q"), array("d"))
            series[0].append(step)
            series[1].append(value)

    def finish(self) -> None:
        """End the run as ``finished`` and write it."""
        self._end(records.FINISHED, None)

    def fail(self, exc: BaseException) -> None:
        """End the run as ``failed`` by ``exc`` (its type, message and the user's part of its traceback)."""
        self._end(records.FAILED, exc)

    def interrupt(self, exc: BaseException | None = None) -> None:
        """End the run as ``interrupted`` (KeyboardInterrupt)."""
        self._end(records.INTERRUPTED, exc)

    def end(self, exc: BaseException | None) -> None:
        """End the run as a cell or a ``with`` block ended: by ``exc`` (interrupted by KeyboardInterrupt,
        failed by anything else), or finished without one."""
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.interrupt(exc)
        else:
            self.fail(exc)

    def _end(self, status: str, exc: BaseException | None) -> None:
        session.last_run_id, session.last_finished = self.run_id, self
        if self in session.active:
            session.active.remove(self)
        if self.sampler is not None:
            session.monitor.unwatch(self.sampler)
            self.sampler = None
            for key, series in self.system_points.items():   # the sampler is done: merge its curves
                self._lists[key] = series
                self._n_points += len(series[0])
            self.system_points = {}
        self.ended_at = time.time()
        self.duration_s = time.perf_counter() - self._t0
        self.cpu_s = time.process_time() - self._cpu0
        if exc is not None:
            self.error = {"error_type": type(exc).__name__, "error_message": str(exc),
                          "traceback": "".join(_user_traceback(exc))}
        self.status = status
        try:
            self._flush_points(final=True)
        finally:
            self._write()
            if self.sync_after:
                session.syncer.request(self.store)

    # -- logging --------------------------------------------------------------
    def log(self, step: int | None = None, **metrics: Any) -> None:
        self.log_dict(step, metrics)

    def log_dict(self, step: int | None, metrics: dict[str, Any]) -> None:
        """The hot path of ``nbtrack.log``: a few list appends per point, no I/O until a chunk is full."""
        if step is None:
            step = self._next_step
        elif type(step) is not int:
            try:
                step = int(step)
            except Exception:
                raise TypeError(f"nbtrack.log: step={step!r} is not an integer") from None
        self._next_step = step + 1
        series = self._series
        for key, value in metrics.items():
            if type(value) is not float:
                value = _float(key, value)
            appends = series.get(key)
            if appends is None:
                # typed arrays: 8 bytes a point, and handed to Arrow without a copy at flush time
                steps, values = array("q"), array("d")
                self._lists[key] = (steps, values)
                appends = series[key] = (steps.append, values.append)
            appends[0](step)
            appends[1](value)
        self._n_points += len(metrics)
        if self._n_points >= CHUNK_POINTS:
            self._flush_points()

    def points_snapshot(self) -> pa.Table:
        """Every point logged so far (``run_id, key, step, value``), for live curves while the run lasts.

        Runs on another thread than ``log``: it copies the buffers, never touches them.
        """
        import pyarrow as pa

        tables = []
        for path in self.store.spool.pending():
            name = parse_name(path)
            if name is None or name[0] != POINTS_PREFIX or name[1] != self.run_id:
                continue
            try:
                tables.append(read_points(path).select(["key", "step", "value"]))
            except (OSError, ValueError, KeyError, pa.ArrowException):
                continue  # imported meanwhile; the store has these points
        for key, (steps, values) in [*self._lists.items(), *self.system_points.items()]:
            n = min(len(steps), len(values))  # log appends the step first: one may be ahead
            tables.append(pa.table({"key": pa.array([key] * n, pa.string()), "step": pa.array(steps[:n], pa.int64()),
                                    "value": pa.array(values[:n], pa.float64())}))
        if not tables:
            return pa.table({"run_id": pa.array([], pa.string()), "key": pa.array([], pa.string()),
                             "step": pa.array([], pa.int64()), "value": pa.array([], pa.float64())})
        table = pa.concat_tables([t.cast(pa.schema([("key", pa.string()), ("step", pa.int64()),
                                                    ("value", pa.float64())])) for t in tables])
        return table.add_column(0, "run_id", pa.array([self.run_id] * table.num_rows, pa.string()))

    def _drain(self) -> tuple[list[str], array, array, array] | None:
        """Take the buffered points out: key names, one key index per point, steps and values end to
        end, in typed arrays that Arrow takes without a copy (a handful of calls per chunk, not per key)."""
        if not self._n_points:
            return None
        names, index, steps, values = [], array("i"), array("q"), array("d")
        for i, (key, (s, v)) in enumerate(self._lists.items()):
            n = min(len(s), len(v))   # a sampler point merged at finish may have its step but not its value
            names.append(text_safe(key))
            index.extend(array("i", [i]) * n)
            steps.extend(s if n == len(s) else s[:n])
            values.extend(v if n == len(v) else v[:n])
            self.last_points[key] = (s[n - 1], v[n - 1])
        self._series, self._lists = {}, {}
        self._n_points = 0
        return names, index, steps, values

    def _flush_points(self, final: bool = False) -> None:
        """Write the buffered points as one Arrow chunk file. At the end of a run, a remainder of up to
        ``EMBED_POINTS`` rides in the final record instead: one file and one fsync fewer per short run,
        and a record and its last points arrive together."""
        drained = self._drain()
        if drained is None:
            return
        names, index, steps, values = drained
        if final and len(steps) <= EMBED_POINTS:
            self._embedded = {"chunk": self._chunk, "keys": names, "key": index.tolist(),
                              "step": steps.tolist(), "value": values.tolist()}
            self._chunk += 1
            return
        import pyarrow as pa

        n = len(steps)
        table = pa.Table.from_arrays(
            [pa.DictionaryArray.from_arrays(pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(index)]),
                                            pa.array(names, pa.string())),
             pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(steps)]),
             pa.Array.from_buffers(pa.float64(), n, [None, pa.py_buffer(values)])], schema=records.POINTS_SCHEMA)
        self.store.spool.write_points(self.run_id, self._chunk, table, self._known_secrets())
        self._chunk += 1

    # -- the record -----------------------------------------------------------
    def _known_secrets(self) -> set[str]:
        return set(self.secret_values) | environment.environ_secrets()

    def public(self, items: dict[str, Any], prefix: str, known: set[str] | None = None) -> dict[str, Any]:
        """Params or values as they may be shown (the summary line): secrets replaced by "***"."""
        known = self._known_secrets() if known is None else known
        out = {}
        for key, value in items.items():
            out[key], _ = secrets.redact_value(value, known, key)
        return out

    def _record(self) -> dict[str, Any]:
        """The run as plain Python values; the spool seals it (redaction, encoding) on its way to disk."""
        env = environment.environment()
        git = environment.git_state(self.git_dir)
        ended = self.ended_at
        run = {
            "run_id": self.run_id, "experiment": self.experiment, "name": self.name, "status": self.status,
            "kind": self.kind, "started_at": self.started_at, "ended_at": ended,
            "duration_s": self.duration_s, "cpu_s": self.cpu_s,
            "peak_rss_mb": _peak_rss_mb() if ended else None, "tags": list(self.tags),
            "command": self.command or None, "cell_id": self.cell_id,
            "execution_count": self.execution_count, "source_hash": None,
            "source_path": self.source_path, "notebook": self.notebook, "env_id": env["env_id"],
            **git, "session_id": SESSION_ID, "kernel_id": environment.kernel_id(),
            "host": environment.HOST, "user": environment.USER, "pid": _PID, "proc_start": _PROC_START,
            **(self.error or {}),
            "checked_against": self.checked_against, "repeat_group": self.repeat_group,
            "repeat_index": self.repeat_index, "rng": self.rng or None, "provenance": self.provenance or None,
            "sweep_id": self.sweep_id, "redacted": sorted(self.redacted),
        }
        metrics = [{"key": k, "value": v, "step": s, "source": "log"}
                   for k, (s, v) in self.last_points.items() if k not in self.metrics]
        metrics += [{"key": k, "value": v, "step": s, "source": src} for k, (v, s, src) in self.metrics.items()]
        return {
            "run": run,
            "params": [{"key": k, "kind": kind, "value": v} for k, (v, kind) in self.params.items()],
            "values": [{"key": k, "value": v} for k, v in self.values.items()],
            "metrics": metrics,
            "inputs": [_fingerprint_row(name, fp) for name, fp in self.inputs.items()],
            "outputs": [{**_fingerprint_row(name, fp), "change": change} for name, (change, fp) in self.outputs.items()],
            "displays": list(self.displays) if ended else [],
            "streams": dict(self.streams) if ended else {},
            "source": self.source, "env": env,
            **({"points": self._embedded} if self._embedded and ended else {}),
        }

    def _write(self, durable: bool = True) -> None:
        # the latest record, as written: checks read it back from memory
        self.record = self.store.spool.write_record(self.run_id, self._seq, self._record(), self._known_secrets(),
                                                    durable)
        self.redacted.update(self.record["run"]["redacted"])
        self._seq += 1


def _fingerprint_row(name: str, fp: dict[str, Any]) -> dict[str, Any]:
    row = {"name": name, "type": fp.get("type"), "hash": fp.get("hash"), "hash_method": fp.get("hash_method"),
           "shape": fp.get("shape"), "length": fp.get("length"), "dtype": fp.get("dtype"),
           "summary": fp.get("summary") or {}}
    if fp.get("artifact"):
        row.update(artifact=fp["artifact"], artifact_format=fp.get("artifact_format"))
    return row


def _peak_rss_mb() -> float | None:
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except Exception:
        return None
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _user_traceback(exc: BaseException) -> list[str]:
    """The traceback from the user's own first frame on: no IPython or nbtrack frames."""
    tb = exc.__traceback__
    internal = (os.sep + "IPython" + os.sep, os.sep + "ipykernel" + os.sep, os.sep + "nbtrack" + os.sep,
                os.sep + "asyncio" + os.sep)
    while tb is not None and any(p in tb.tb_frame.f_code.co_filename for p in internal):
        tb = tb.tb_next
    return traceback.format_exception(type(exc), exc, tb)


def require_active() -> ActiveRun:
    run = current()
    if run is None:
        msg = ("nbtrack.log() was called outside a tracked run: put %%track on the cell "
               "(after %load_ext nbtrack), or wrap the code in `with nbtrack.run('name') as run:`")
        raise NoActiveRunError(msg)
    return run


atexit.register(session.syncer.finish)
