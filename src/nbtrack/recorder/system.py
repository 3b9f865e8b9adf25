"""System metrics while a run lasts: CPU %, memory (RSS) and, where NVML is installed, GPU use.

A daemon thread per run waits ``START_AFTER_S`` (a short cell is not sampled at all), then samples
every ``INTERVAL_S`` until the run ends, into curves named ``sys.*`` with the seconds since the
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


class Sampler:
    """Samples for one run on a daemon thread; ``stop()`` ends it (the run's finish calls it)."""

    def __init__(self, sink: Any, started: float) -> None:
        self._sink, self._started = sink, started
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        self._stop = threading.Event()
        self.cpu_s = 0.0          # CPU time the sampler itself used: what it costs
        self.samples = 0
        self._thread = threading.Thread(target=self._loop, name="nbtrack-system", daemon=True)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)

    def _loop(self) -> None:
        if self._stop.wait(START_AFTER_S):
            return
        wall0, cpu0 = self._wall0, self._cpu0
        while not self._stop.is_set():
            t0 = time.thread_time()
            wall, cpu = time.perf_counter(), time.process_time()
            values: dict[str, float] = {}
            if wall > wall0:
                values["sys.cpu_percent"] = 100.0 * (cpu - cpu0) / (wall - wall0)
            wall0, cpu0 = wall, cpu
            memory = rss_mb()
            if memory is not None:
                values["sys.rss_mb"] = memory
            values.update(gpu_sample())
            step = int(round(time.time() - self._started))
            try:
                self._sink(step, values)
            except Exception:   # the run ended under us
                return
            self.samples += 1
            self.cpu_s += time.thread_time() - t0
            self._stop.wait(INTERVAL_S)
