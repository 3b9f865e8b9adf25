"""``%%track`` in IPython: the cell runs as IPython runs it, nbtrack watches from the events.

The ``%%track`` line is removed by an input transformer (replaced by a blank
line, so tracebacks keep the cell's own line numbers), the cell then runs
through IPython's normal path - top-level await, ``Out``/``_``, display,
magics, tracebacks without a single nbtrack frame - and the run is recorded
from ``pre_run_cell``/``post_run_cell``. ``-p`` overrides replace the value
node of the literal assignment in the cell's AST; the text is not edited.
A line with bad options is left in place, so IPython calls the ``track``
magic, which raises the UsageError and the cell does not run.
"""
from __future__ import annotations

import ast
import difflib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from ..errors import NbtrackError, warn
from .options import TrackOptions, parse_track_line
from ..store import Store
from ..recorder import artifacts, environment, rng
from .. import secrets
from ..recorder.analysis import CellAnalysis, OverrideParams, analyze
from ..recorder.budget import BUDGET_SECONDS, Budget
from ..recorder.capture import is_data
from .checking import CheckHooks
from ..recorder.outputs import record_input, record_output
from ..recorder.provenance import Producers
from ..recorder.run import ActiveRun
from ..recorder.session import session
from .streams import OutputCapture

HIDDEN = {"In", "Out", "exit", "quit", "get_ipython"}
_MISSING = object()


@dataclass
class Plan:
    options: TrackOptions
    body: str
    analysis: CellAnalysis
    source: str          # the body with secret literals redacted
    secrets: set[str]


@dataclass
class _Frame:
    run: ActiveRun
    plan: Plan
    keys_before: set[str]
    before: dict[str, Any]
    capture: OutputCapture | None
    rng_before: dict[str, str]
    budget: Budget
    applied: bool = False


def _hidden(name: str) -> bool:
    return name.startswith("_") or name in HIDDEN


def split_track(raw_cell: str) -> tuple[str, str] | None:
    """(options text, body) when the cell starts with ``%%track``."""
    text = raw_cell.lstrip("\n")
    first, _, body = text.partition("\n")
    if first.split(None, 1)[:1] != ["%%track"]:
        return None
    return first[len("%%track"):], body


class CellTracker:
    """Owns the IPython hooks of one shell."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.enabled = True
        self.summary = os.environ.get("NBTRACK_SUMMARY", "1").lower() not in ("0", "false", "off", "no")
        self.budget_seconds = BUDGET_SECONDS   # fingerprinting's slow paths, per cell (%nbtrack budget)
        self.store = Store()
        self._plans: dict[tuple[str, str], Plan] = {}
        self._frames: list[_Frame | None] = []
        self._forced: Plan | None = None
        self._repeat: tuple[str, int] | None = None      # (group id, index) of the forced run
        self._sweep: str | None = None
        self._store_checked: str | None = None
        self._override_hook = _OverrideHook(self)
        self.producers = Producers(_hidden)
        self.checks = CheckHooks()

    def reset(self) -> None:
        """Back to the settings of a freshly loaded extension, with no cell in progress (tests)."""
        self.enabled = True
        self.summary = True
        self.budget_seconds = BUDGET_SECONDS
        self._frames.clear()
        self._forced = self._repeat = self._sweep = None
        self._store_checked = None

    # -- registration ---------------------------------------------------------
    def register(self) -> None:
        shell = self.shell
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        shell.input_transformers_cleanup.append(self.transform)
        shell.ast_transformers.append(self._override_hook)
        environment.warm()
        environment.prefetch_git(os.getcwd())

    def unregister(self) -> None:
        shell = self.shell
        for event, fn in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            try:
                shell.events.unregister(event, fn)
            except ValueError:
                pass
        if self.transform in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(self.transform)
        if self._override_hook in shell.ast_transformers:
            shell.ast_transformers.remove(self._override_hook)

    # -- planning (pure with respect to the user's namespace) -------------------
    def prepare(self, line: str, body: str) -> Plan:
        """Parse options and analyse the cell; raise UsageError for anything wrong with them."""
        key = (line, body)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        try:
            options = parse_track_line(line)
        except NbtrackError as e:
            raise UsageError(str(e)) from None
        try:
            transformed = self.shell.transform_cell(body)
        except Exception:
            transformed = body
        analysis = analyze(transformed)
        flags = [*(("-p", n) for n in options.overrides), *(("--grid", n) for n in options.grid),
                 *([("--seed", options.seed)] if options.seed else [])]
        for flag, name in flags:
            if name not in analysis.params:
                close = difflib.get_close_matches(name, list(analysis.params), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                known = ", ".join(analysis.params) or "none"
                msg = (f"{flag} {name}: the cell has no literal assignment `{name} = ...` to override{hint}; "
                       f"literal parameters in this cell: {known}")
                raise UsageError(msg)
        source, found = secrets.redact_source(body, analysis.tree)
        plan = Plan(options, body, analysis, source, found)
        if len(self._plans) > 16:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def transform(self, lines: list[str]) -> list[str]:
        """Input transformer: drop a valid ``%%track`` line, keep an invalid one for the magic."""
        if not lines or not lines[0].startswith("%%track"):
            return lines
        split = split_track(lines[0] + "\n")
        if split is None:
            return lines
        if self.enabled:
            try:
                plan = self.prepare(split[0], "".join(lines[1:]))
            except Exception:
                return lines
            if plan.options.sweep:
                return lines   # the track magic runs the body once per combination and repeat
        rest = lines[1:]
        if rest and rest[0].startswith("%%"):
            return rest  # another cell magic below %%track must stay first
        return ["\n", *rest]

    def force(self, plan: Plan, repeat: tuple[str, int] | None = None, sweep: str | None = None) -> None:
        """Track the next cell run with this plan (``run_cell_magic('track', ...)``), optionally as
        repeat ``index`` of ``group`` and as a run of a sweep."""
        self._forced = plan
        self._repeat = repeat
        self._sweep = sweep

    # -- events ---------------------------------------------------------------
    def active(self) -> _Frame | None:
        return next((f for f in reversed(self._frames) if f is not None), None)

    def pre_run_cell(self, info: Any) -> None:
        plan, self._forced = self._forced, None
        repeat, self._repeat = self._repeat, None
        sweep, self._sweep = self._sweep, None
        if plan is None and self.enabled and not self.active():
            split = split_track(getattr(info, "raw_cell", "") or "")
            if split is not None:
                try:
                    plan = self.prepare(*split)
                except Exception:
                    plan = None
                if plan is not None and plan.options.sweep:
                    plan = None   # the magic's own runs record each combination and repeat
        if plan is None or not self.enabled or self.active():
            self._frames.append(None)
            return
        try:
            self._frames.append(self._start(plan, info, repeat, sweep))
        except Exception as e:
            self._frames.append(None)
            warn(f"this cell runs untracked: {e}")

    def _check_store(self) -> None:
        """Open the store once per session to say early what is wrong with it; never wait for it:
        when another process holds it, the run goes to the spool and the check is retried later."""
        if self._store_checked == str(self.store.path):
            return
        if self.store.sync(blocking=False):
            self._store_checked = str(self.store.path)

    def _start(self, plan: Plan, info: Any, repeat: tuple[str, int] | None = None,
               sweep: str | None = None) -> _Frame:
        problem = None
        try:
            self._check_store()
        except NbtrackError as e:
            problem = str(e)
        shell, ns, opts, analysis = self.shell, self.shell.user_ns, plan.options, plan.analysis
        excluded = set(opts.exclude)
        budget = Budget(self.budget_seconds)
        notebook = environment.notebook_path(ns)
        cell_id = getattr(info, "cell_id", None)
        name = opts.name or (f"cell-{cell_id[:8]}" if cell_id else analysis.group_key)
        experiment = opts.experiment or (Path(notebook).stem if notebook else "default")
        git_dir = str(Path(notebook).parent) if notebook and os.path.isabs(notebook) else os.getcwd()
        run = ActiveRun(self.store, name=name, experiment=experiment, kind="cell", tags=opts.tags,
                        command=f"%%track {opts.line}".strip(), cell_id=cell_id,
                        execution_count=getattr(shell, "execution_count", None), notebook=notebook,
                        source=plan.source, secret_values=plan.secrets | self.producers.secret_values(ns),
                        git_dir=git_dir)
        run.sync_after = problem is None
        if repeat is not None:
            run.repeat_group, run.repeat_index = repeat
        run.sweep_id = sweep
        if plan.source != plan.body:
            run.redacted.add("source")
        for key, value in analysis.params.items():
            if key not in excluded:
                if key in opts.overrides:
                    run.params[key] = (opts.overrides[key], "override")
                else:
                    run.params[key] = (value, "literal")
        for name_ in analysis.free:
            if name_ in excluded or _hidden(name_) or name_ in run.params:
                continue
            value = ns.get(name_, _MISSING)
            if value is _MISSING or not is_data(value):
                continue
            record_input(run, name_, value, budget)
        for name_ in analysis.free:
            if name_ in ns and not _hidden(name_) and name_ not in excluded:
                is_input = name_ in run.inputs or run.params.get(name_, (None, ""))[1] == "input"
                origin = self.producers.of(name_, ns[name_], is_input)
                if origin:
                    run.provenance[name_] = origin
        if opts.check and problem is None:
            run.checked_against = self.checks.find(self.store, run, opts.check, repeat)
        watched = analysis.bound | analysis.deleted
        before = {n: ns.get(n, _MISSING) for n in watched}
        capture = None if opts.no_outputs else OutputCapture(shell)
        environment.prefetch_git(git_dir)
        frame = _Frame(run, plan, set(ns), before, capture, rng.snapshot(), budget)
        try:
            run.start()
        except NbtrackError as e:
            raise NbtrackError(problem or str(e)) from None  # one line says it all
        if problem:
            warn(f"{problem} (this run is kept in {self.store.spool.dir} until the store can be written)")
        if capture is not None:
            capture.install()
        return frame

    def post_run_cell(self, result: Any) -> None:
        frame = self._frames.pop() if self._frames else None
        try:
            self._note_producer(result, frame)
        except Exception:   # provenance is a nicety: never a warning for it
            pass
        if frame is None:
            return
        try:
            self._finish(frame, result)
        except Exception as e:
            warn(f"could not record this run: {type(e).__name__}: {e}")
        finally:
            if frame.capture is not None:
                frame.capture.uninstall()
            if frame.run in session.active:  # a failure before finish() must not leave the run active
                session.active.remove(frame.run)

    def _note_producer(self, result: Any, frame: _Frame | None) -> None:
        """Remember which cell (and run) bound each name: checks use it to name hidden state."""
        info = getattr(result, "info", None)
        raw = getattr(info, "raw_cell", None)
        if raw and self.shell is not None:
            self.producers.note(raw, self.shell.transform_cell, getattr(info, "cell_id", None),
                                getattr(result, "execution_count", None),
                                frame.run.run_id if frame is not None else None,
                                frame.plan.analysis.bound if frame is not None else None)

    def _finish(self, frame: _Frame, result: Any) -> None:
        if frame.capture is not None:
            frame.capture.uninstall()
        run, ns, plan = frame.run, self.shell.user_ns, frame.plan
        if result is None:  # the kernel cancelled the cell's coroutine on interrupt
            exc: BaseException | None = KeyboardInterrupt()
        else:
            exc = result.error_before_exec or result.error_in_exec
        if exc is None and getattr(self.shell, "_last_traceback_during_displayhook", False):
            # a display formatter raised: IPython shows the traceback and carries on, and ipykernel
            # replies "error" from this flag; the run's status follows the kernel's reply
            exc = getattr(sys, "last_value", None) or RuntimeError("a display formatter raised")
        excluded = set(plan.options.exclude)
        # loop counters (`for epoch in ...`) are neither metrics nor outputs
        candidates = (plan.analysis.bound | (set(ns) - frame.keys_before)) - excluded - plan.analysis.loop_only
        for name in sorted(candidates):
            if _hidden(name):
                continue
            value = ns.get(name, _MISSING)
            if value is _MISSING or not is_data(value):
                continue
            if name in run.params and run.params[name][1] in ("literal", "override"):
                continue
            previous = frame.before.get(name, _MISSING)
            if exc is not None and previous is value:
                continue   # the cell failed before rebinding it: an earlier run's value, not this run's
            change = "new" if previous is _MISSING and name not in frame.keys_before else "rebound"
            fp = record_output(run, name, value, change, frame.budget)
            if fp is not None and name in plan.options.save:
                artifacts.save(run, name, value, fp)
        for name in plan.options.save:
            if name not in run.outputs:
                warn(f"--save {name}: the cell made no such output (a DataFrame, table or array it binds)")
        for name in plan.analysis.deleted - excluded:
            if name in frame.keys_before and name not in ns:
                previous = frame.before.get(name)
                run.outputs[name] = ("removed", {"type": type(previous).__name__, "hash": None,
                                                 "hash_method": "removed", "summary": {}})
        if frame.capture is not None:
            run.displays = frame.capture.displays
            run.streams = {"stdout": frame.capture.stdout.parts(), "stderr": frame.capture.stderr.parts()}
        run.rng = rng.pair(frame.rng_before, rng.snapshot())
        run.end(exc)
        self.checks.remember(run)
        error = session.syncer.pop_error(run.store)
        if error and run.sync_after:  # otherwise this cell has already said what is wrong
            warn(error)
        if self.summary and not (frame.capture is not None and frame.capture.clear_pending):
            self._show_summary(run)   # (after clear_output(wait=True) it would clear the cell's output)
        if plan.options.check:
            self.checks.report(self.store, run, plan.options)

    def _show_summary(self, run: ActiveRun) -> None:
        from .summary import show, summary_bundle

        show(self.shell, summary_bundle(run))


class _OverrideHook(ast.NodeTransformer):
    """Registered in ``shell.ast_transformers``; acts once, on the tracked cell being run."""

    def __init__(self, tracker: CellTracker) -> None:
        self.tracker = tracker

    def visit(self, node: ast.AST) -> ast.AST:
        frame = self.tracker.active()
        if frame is None or frame.applied or not frame.plan.options.overrides:
            return node
        frame.applied = True
        try:
            return ast.fix_missing_locations(OverrideParams(frame.plan.options.overrides).visit(node))
        except Exception as e:
            warn(f"could not apply -p overrides: {e}")
            return node
