"""The one-line summary shown after a tracked cell."""
from __future__ import annotations

import math
import sys
from typing import Any

from .. import secrets
from ..recorder.run import ActiveRun
from ..store.records import FINISHED

MIME = "application/vnd.nbtrack.run+json"
_SHOWN = 4


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def summary_bundle(run: ActiveRun) -> dict[str, Any]:
    params = run.public({k: v for k, (v, kind) in run.params.items() if kind != "input"}, "params")
    metrics = {k: v for k, (v, _, _) in run.metrics.items()}
    metrics.update({k: v for k, (_, v) in run.last_points.items() if k not in metrics})
    duration = run.duration_s or 0.0
    parts = [f"nbtrack: run {run.run_id[:8]}", run.name]
    if run.status != FINISHED:
        parts.append(run.status + (f" ({run.error['error_type']})" if run.error else ""))
    kinds = {k: kind for k, (_, kind) in run.params.items()}
    own_p = [(k, v) for k, v in params.items() if kinds.get(k) != "capturer"]   # the cell's own, if any
    shown_p = ", ".join(f"{k}={_fmt(v)}" for k, v in (own_p or list(params.items()))[:_SHOWN])
    # the cell's own numbers first; sys.* curves and capturer facts are in the record, not the line
    own = {k: v for k, v in metrics.items() if not k.startswith("sys.") and "." not in k}
    shown_m = ", ".join(f"{k}={_fmt(v)}" for k, v in list((own or metrics).items())[:_SHOWN])
    if shown_p or shown_m:
        parts.append(" -> ".join(p for p in (shown_p, shown_m) if p))
    parts.append(f"{duration:.2f} s")
    text, _ = secrets.scrub_text(" · ".join(parts), run.secret_values)   # the line is saved with the notebook
    data = {
        "run_id": run.run_id, "name": run.name, "experiment": run.experiment, "status": run.status,
        "params": {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in params.items()
                   if isinstance(v, (int, float, str, bool, type(None)))},
        "metrics": {k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
        "duration_s": duration, "store": str(run.store.path),
    }
    return {MIME: data, "text/plain": text}


def show(shell: Any, bundle: dict[str, Any]) -> None:
    """Display the summary line. Before a display ipykernel flushes stdout and stderr, each a round trip
    to its IO thread even with nothing written (0.5 ms of a trivial cell's 2 in a real kernel); when
    neither holds unsent text, the summary skips that flush. Output order stays as untracked: a stream
    with text waiting is flushed first, as always."""
    from IPython.display import display

    pub = getattr(shell, "display_pub", None)
    if pub is None or not hasattr(pub, "_flush_streams") or not all(_idle(s) for s in (sys.stdout, sys.stderr)):
        display(bundle, raw=True)
        return
    own = vars(pub).get("_flush_streams")   # someone else's patch, put back as it was
    pub._flush_streams = _no_flush
    try:
        display(bundle, raw=True)
    finally:
        if own is None:
            del pub._flush_streams
        else:
            pub._flush_streams = own


def _no_flush() -> None:
    pass


def _idle(stream: Any) -> bool:
    """Whether an ipykernel OutStream has nothing waiting to be sent; False for any other stream."""
    try:
        return (stream._flush_pending is False and stream._subprocess_flush_pending is False
                and not stream._buffers)
    except AttributeError:
        return False
