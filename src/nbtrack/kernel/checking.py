"""``%%track --check`` in a kernel: find the reference before the run, compare after it, keep the
report; and remember each run as recorded, so a check of two runs made here never opens DuckDB."""
from __future__ import annotations

from typing import Any

from ..errors import NbtrackError, warn
from ..store import Store
from ..recorder.run import ActiveRun


class CheckHooks:
    def __init__(self) -> None:
        self.reference: str | None = None   # kept across the repeats of one --repeat

    def find(self, store: Store, run: ActiveRun, wanted: str, repeat: tuple[str, int] | None) -> str | None:
        """The run ``--check`` compares with; ``None`` (and one line saying so) when there is none."""
        from ..repro import check as repro
        from ..api import get

        if repeat is not None and repeat[1] > 0:
            return self.reference
        self.reference = None
        repro.remember(None)   # last_check() must not return an older check's report
        try:
            if wanted != "latest":
                self.reference = get(wanted, store).run_id
            else:
                params = {k: v for k, (v, kind) in run.params.items() if kind in repro.CELL_PARAM_KINDS}
                self.reference = repro.recent_reference(run.name, params, store) or \
                    repro.find_reference(store, run.name, params)
                if self.reference is None:
                    warn(f"--check: no earlier finished run of {run.name!r} with these params; this run "
                         "is the reference for the next check")
        except NbtrackError as e:
            warn(f"--check: {e}")
        return self.reference

    @staticmethod
    def remember(run: ActiveRun) -> None:
        from ..repro import check as repro
        from ..api import run_from_record

        if run.record is not None:
            try:
                repro.remember_run(run_from_record(run.record, run.store))
            except Exception:   # only a shortcut: the store has the run too
                pass

    @staticmethod
    def report(store: Store, run: ActiveRun, options: Any) -> None:
        from IPython.display import display

        from ..repro import check as repro

        if not run.checked_against or (run.repeat_group and run.repeat_index != options.repeat - 1):
            return
        try:
            report = repro.check_recent(run.checked_against, run.run_id, store,
                                        rtol=repro.RTOL if options.rtol is None else options.rtol,
                                        atol=repro.ATOL if options.atol is None else options.atol,
                                        tolerances=options.tolerances)
        except Exception as e:
            warn(f"--check could not compare the runs: {type(e).__name__}: {e}")
            return
        repro.remember(report)
        display(report)

    @staticmethod
    def show_last() -> None:
        """After a sweep with ``--check``: its report, which the runs' collected output held."""
        from IPython.display import display

        from ..repro import check as repro

        try:
            display(repro.last_check())
        except NbtrackError:
            pass
