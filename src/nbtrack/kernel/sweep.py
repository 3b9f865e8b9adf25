"""Sweeps: one cell run once per combination of ``--grid`` values, ``--repeat`` times each.

Every run is an ordinary tracked run of the cell (the grid values replace the literal assignments
as ``-p`` does), and all share a sweep id. The runs' own output is collected, not shown: a progress
line stands in for it while the sweep runs, and a summary (best run, failures) replaces it after.
"""
from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from IPython.utils.capture import capture_output

from .options import combinations, count
from ..recorder.run import ActiveRun
from ..recorder.session import session

_LOWER_IS_BETTER = ("loss", "err", "error", "mse", "rmse", "mae", "perplexity")
_ABSENT = object()


def _fmt(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


class Progress:
    """Runs done/total, elapsed, ETA and the best metric so far, through ``tqdm.auto``: a widget in a
    notebook, a line rewritten in place elsewhere; gone when the sweep ends (its summary stays)."""

    def __init__(self, total: int) -> None:
        from tqdm.auto import tqdm

        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.metric: str | None = None
        self.best: tuple[float, dict[str, Any]] | None = None
        self.failed: list[tuple[dict[str, Any], str]] = []
        self._bar = tqdm(total=total, desc="sweep", unit="run", leave=False)

    def lower_is_better(self) -> bool:
        return any(word in (self.metric or "").lower() for word in _LOWER_IS_BETTER)

    def add(self, values: dict[str, Any], run: ActiveRun | None, error: str | None) -> None:
        self.done += 1
        if error:
            self.failed.append((values, error))
        elif run is not None and run.metrics:
            if self.metric is None or self.metric not in run.metrics:
                self.metric = sorted(run.metrics)[0]
            value = run.metrics[self.metric][0]
            better = self.best is None or (value < self.best[0] if self.lower_is_better() else value > self.best[0])
            if better:
                self.best = (value, values)
        self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.update(1)

    def postfix(self) -> str:
        parts = [f"{len(self.failed)} failed"] if self.failed else []
        if self.best is not None:
            parts.append(f"best {self.metric}={self.best[0]:.4g}")
        return ", ".join(parts)

    def close(self) -> None:
        self._bar.close()


def run_sweep(tracker: Any, plan: Any, cell: str) -> str:
    """Run the sweep a ``%%track`` line asks for; return its id. Prints one summary."""
    shell, opts = tracker.shell, plan.options
    combos = combinations(opts.grid)   # one at a time: a grid is never expanded in memory
    repeats = opts.repeat
    total = count(opts.grid) * repeats
    sweep_id = session.last_sweep_id = uuid.uuid4().hex
    progress = Progress(total)
    stopped: str | None = None
    # a failing combination is listed in the summary and recorded with its traceback; its traceback
    # is not shown, or a sweep with a few failures would be a wall of them
    quiet = {name: shell.__dict__.get(name, _ABSENT) for name in ("showtraceback", "showsyntaxerror")}
    for name in quiet:
        setattr(shell, name, lambda *args, **kwargs: None)
    base_seed = plan.analysis.params.get(opts.seed) if opts.seed else None
    try:
        for combo in combos:
            group = uuid.uuid4().hex if repeats > 1 else None
            for index in range(repeats):
                values = dict(combo)
                if opts.seed:
                    values[opts.seed] = (base_seed if isinstance(base_seed, int) else 0) + index
                variant = dataclasses.replace(plan, options=dataclasses.replace(
                    opts, overrides={**opts.overrides, **values}, grid={}))
                tracker.force(variant, (group, index) if group else None, sweep_id)
                with capture_output(display=True):   # each run's output is recorded, not shown
                    result = shell.run_cell(cell, store_history=False)
                error = None if result.success else _error_text(result)
                progress.add(values, session.last_finished, error)
                if isinstance(result.error_in_exec, KeyboardInterrupt):
                    stopped = "interrupted"
                    break
                if error and opts.fail_fast:
                    stopped = "stopped at the first failure (--fail-fast)"
                    break
            if stopped:
                break
    except KeyboardInterrupt:   # between two runs: the finished ones are recorded already
        stopped = "interrupted"
    finally:
        for name, previous in quiet.items():
            if previous is _ABSENT:
                shell.__dict__.pop(name, None)
            else:
                setattr(shell, name, previous)
        progress.close()
    _summary(progress, total, stopped)
    return sweep_id


def _error_text(result: Any) -> str:
    exc = result.error_in_exec or result.error_before_exec
    return f"{type(exc).__name__}: {exc}"[:200] if exc is not None else "failed"


def _summary(progress: Progress, total: int, stopped: str | None) -> None:
    elapsed = time.perf_counter() - progress.t0
    ok = progress.done - len(progress.failed)
    head = f"nbtrack sweep: {progress.done} of {total} runs ({ok} finished, {len(progress.failed)} failed)"
    if stopped:
        head += f"; {stopped} after run {progress.done}"
    lines = [head + f" in {elapsed:.1f} s"]
    if progress.best is not None:
        lines.append(f"  best {progress.metric}={progress.best[0]:.6g} with {_fmt(progress.best[1]) or 'the cell as is'}")
    for values, error in progress.failed:
        lines.append(f"  failed: {_fmt(values) or 'the cell'}: {error}")
    lines.append("  runs: nbtrack.last_sweep()")
    print("\n".join(lines))
