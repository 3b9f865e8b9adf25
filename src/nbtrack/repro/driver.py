"""``python -m nbtrack.repro.driver SCRIPT STORE RUN_ID RESULT``: run an exported script in this
fresh process and record what it produced as a run linked to the original (used by ``reproduce``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..api import get
from ..recorder import rng
from ..recorder.outputs import record_input, record_output
from ..recorder.run import ActiveRun
from ..recorder.session import session
from ..store import Store


def main(argv: list[str]) -> int:
    script, run_id, result_path = argv
    store = Store()   # $NBTRACK_STORE, set by reproduce()
    original = get(run_id, store)
    run = ActiveRun(store, name=original.name, experiment=original.experiment, kind="reproduce",
                    tags=[*original.tags, "reproduce"], command=f"nbtrack reproduce {run_id}",
                    source=original.source, source_path=None)
    run.checked_against = original.run_id
    for key, value in original.params.items():
        run.params[key] = (value, original.param_kinds.get(key, "given"))
    run.start()
    before = rng.snapshot()
    ns: dict = {"__name__": "__nbtrack_reproduce__", "__file__": script}
    error: BaseException | None = None
    try:
        exec(compile(Path(script).read_text(), script, "exec"), ns)
    except BaseException as e:  # recorded as the run's failure, reported by the check
        error = e
    run.rng = rng.pair(before, rng.snapshot())
    for name in sorted(set(original.metrics) | set(original.values) | set(original.outputs)):
        if name in ns:
            record_output(run, name, ns[name])
    for name in original.inputs:
        if name in ns:
            record_input(run, name, ns[name])
    run.end(error)
    session.syncer.flush()
    Path(result_path).write_text(json.dumps({"run_id": run.run_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
