"""System metrics while a run lasts: CPU %, memory (RSS) and, where NVML is installed, GPU use.

One daemon thread for the process samples each running run once it has lasted ``START_AFTER_S``
(a short cell is not sampled at all), then every ``INTERVAL_S`` until the run ends, into curves named ``sys.*`` with the seconds since the
run started as the step. GPU figures come from NVML through ``nvidia-ml-py`` (module ``pynvml``)
when it is installed; nothing is sampled for GPUs otherwise. ``NBTRACK_SYSTEM_METRICS=0`` turns
sampling off.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

START_AFTER_S = 3.0
INTERVAL_S = 2.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_nvml: Any = None          # the pynvml module once initialised, False when absent or failing
_nvml_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get("NBTRACK_SYSTEM_METRICS", "1").lower() not in ("0", "false", "off", "no")


def rss_mb() -> float | None:
    """This process's resident memory now (not the peak)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE / (1 << 20)
    except (OSError, ValueError, IndexError):
        psutil = sys.modules.get("psutil")
        return psutil.Process().memory_info().rss / (1 << 20) if psutil is not None else None


def _gpu_module() -> Any:
    global _nvml
    with _nvml_lock:
        if _nvml is None:
            try:
                import pynvml   # nvidia-ml-py

                pynvml.nvmlInit()
                _nvml = pynvml
            except Exception:   # not installed, no driver, no GPU: no GPU curves
                _nvml = False
        return _nvml


def gpu_sample() -> dict[str, float]:
    """Utilisation (%) and memory used (MiB) of each GPU NVML sees."""
    nvml = _gpu_module()
    if not nvml:
        return {}
    out: dict[str, float] = {}
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            out[f"sys.gpu{i}.util_percent"] = float(util.gpu)
            out[f"sys.gpu{i}.mem_mb"] = mem.used / (1 << 20)
    except Exception:
        return out
    return out


class Watch:
    """One run being sampled: where its points go, and when it is next due."""

    def __init__(self, sink: Any, started: float) -> None:
        self.sink, self.started = sink, started
        self.due = time.monotonic() + START_AFTER_S
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.samples = 0


class Monitor:
    """One daemon thread for the whole process, started on first use: a run registers when it starts
    and leaves when it ends, so a cell pays a lock and a list append, not a thread start."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: list[Watch] = []
        self._thread: threading.Thread | None = None
        self.cpu_s = 0.0          # CPU time the sampling itself used: what it costs
        self.samples = 0
        self.wakes = 0            # times the thread woke: a loop of short runs should not add to it
        self._wakes_at = float("inf")   # when the thread wakes by itself (it waits for a notify at inf)

    def watch(self, sink: Any, started: float) -> Watch:
        handle = Watch(sink, started)
        with self._cond:
            self._watches.append(handle)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="nbtrack-system", daemon=True)
                self._thread.start()
            # woken only when this run is due before the thread would wake anyway: a loop of short runs
            # then costs a list append each, not a thread switch each (which competes for the GIL)
            if handle.due < self._wakes_at:
                self._cond.notify()
        return handle

    def unwatch(self, handle: Watch) -> None:
        with self._cond:
            if handle in self._watches:
                self._watches.remove(handle)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self.wakes += 1
                if not self._watches:
                    # the last run left: wait one start delay before sleeping for good, so that the next
                    # run of a loop (due no sooner than that) need not wake this thread
                    now = time.monotonic()
                    if self._wakes_at <= now:   # a wait ran out with no run left: sleep until the next
                        self._wakes_at = float("inf")
                        self._cond.wait()
                    else:                       # woken by a run that has already left
                        self._wakes_at = now + START_AFTER_S
                        self._cond.wait(START_AFTER_S)
                    continue
                now = time.monotonic()
                due = [w for w in self._watches if w.due <= now]
                if not due:
                    self._wakes_at = min(w.due for w in self._watches)
                    self._cond.wait(self._wakes_at - now)
                    continue
                self._wakes_at = now
            t0 = time.thread_time()
            wall, cpu = time.perf_counter(), time.process_time()
            shared: dict[str, float] = {}
            memory = rss_mb()
            if memory is not None:
                shared["sys.rss_mb"] = memory
            shared.update(gpu_sample())
            for w in due:
                values = dict(shared)
                if wall > w.wall0:
                    values["sys.cpu_percent"] = 100.0 * (cpu - w.cpu0) / (wall - w.wall0)
                w.wall0, w.cpu0 = wall, cpu
                try:
                    w.sink(int(round(time.time() - w.started)), values)
                except Exception:   # the run ended under us
                    self.unwatch(w)
                w.samples += 1
                w.due = time.monotonic() + INTERVAL_S
            self.samples += 1
            self.cpu_s += time.thread_time() - t0


monitor = Monitor()
