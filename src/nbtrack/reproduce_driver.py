"""``python -m nbtrack.reproduce_driver SCRIPT STORE RUN_ID RESULT``: run an exported script in this
fresh process and record what it produced as a run linked to the original (used by ``reproduce``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .api import get
from .recorder import rng
from .recorder.capture import as_scalar, is_number, safe_fingerprint
from .recorder.run import ActiveRun, syncer
from .store import Store


def main(argv: list[str]) -> int:
    script, store_path, run_id, result_path = argv
    store = Store(store_path)
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
    for name in set(original.metrics) | set(original.values) | set(original.outputs):
        if name not in ns:
            continue
        value = ns[name]
        scalar, plain = as_scalar(value)
        if scalar and is_number(plain):
            run.metrics[name] = (float(plain), None, "cell")
        elif scalar:
            run.values[name] = plain
        else:
            run.outputs[name] = ("new", safe_fingerprint(value))
    for name in original.inputs:
        if name in ns:
            run.inputs[name] = safe_fingerprint(ns[name])
    run.finish(exc=error)
    syncer.flush()
    Path(result_path).write_text(json.dumps({"run_id": run.run_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
