"""What a run read and what it produced: one value at a time, into the run's params, metrics, values,
inputs and outputs. Shared by tracked cells and by reproductions (``repro.driver``)."""
from __future__ import annotations

from typing import Any

from .. import secrets
from .budget import Budget
from .capture import as_scalar, is_number, safe_fingerprint
from .run import ActiveRun


def record_input(run: ActiveRun, name: str, value: Any, budget: Budget | None = None) -> None:
    """A value the run read: a scalar is a param (kind ``input``), anything else is fingerprinted
    (within the cell's ``budget``)."""
    scalar, plain = as_scalar(value)
    if scalar:
        run.params[name] = (plain, "input")
        _remember_secret(run, name, plain)
    else:
        fp = safe_fingerprint(value, budget)
        run.inputs[name] = fp
        _capturer_facts(run, name, fp, metrics=False)


def record_output(run: ActiveRun, name: str, value: Any, change: str = "new",
                  budget: Budget | None = None) -> dict[str, Any] | None:
    """A value the run bound: numbers are metrics, other scalars values, anything else an output
    fingerprint (returned, so ``--save`` can link an artifact to it)."""
    scalar, plain = as_scalar(value)
    if scalar and is_number(plain):
        run.metrics[name] = (float(plain), None, "cell")
        _remember_secret(run, name, plain)
        return None
    if scalar:
        run.values[name] = plain
        _remember_secret(run, name, plain)
        return None
    fp = safe_fingerprint(value, budget)
    run.outputs[name] = (change, fp)
    _capturer_facts(run, name, fp, metrics=True)
    return fp


def _capturer_facts(run: ActiveRun, name: str, fp: dict[str, Any], metrics: bool) -> None:
    """Params (and, for what the run produced, metrics) a capturer found in ``name``'s object."""
    for key, value in (fp.pop("params", None) or {}).items():
        scalar, plain = as_scalar(value)
        if scalar:
            run.params[f"{name}.{key}"] = (plain, "capturer")
    for key, value in (fp.pop("metrics", None) or {}).items():
        if metrics and is_number(value):
            run.metrics[f"{name}.{key}"] = (float(value), None, "cell")


def _remember_secret(run: ActiveRun, name: str, value: Any) -> None:
    """The value of a secret-named variable is scrubbed wherever it appears in what the run writes."""
    if secrets.is_secret_name(name):
        text = secrets.known_text(value)
        if text:
            run.secret_values.add(text)
