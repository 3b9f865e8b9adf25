"""What differs between two runs: params, metrics, values, inputs, source, environment."""
from __future__ import annotations

import difflib
from typing import Any

from .api import Run

_MISSING = "<missing>"


def _dict_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k, _MISSING), b.get(k, _MISSING)) for k in sorted(set(a) | set(b))
            if a.get(k, _MISSING) != b.get(k, _MISSING)}


def diff_runs(a: Run, b: Run) -> dict[str, Any]:
    """Only what differs, each as ``key: (a, b)``; ``source`` is a unified diff."""
    env_keys = ("python", "implementation", "platform", "machine", "git_commit", "git_branch", "git_dirty",
                "host")
    source = list(difflib.unified_diff((a.source or "").splitlines(), (b.source or "").splitlines(),
                                       f"{a.run_id[:8]}", f"{b.run_id[:8]}", lineterm=""))
    return {
        "params": _dict_diff(a.params, b.params),
        "metrics": _dict_diff(a.metrics, b.metrics),
        "values": _dict_diff(a.values, b.values),
        "inputs": _dict_diff({k: v.get("hash") for k, v in a.inputs.items()},
                             {k: v.get("hash") for k, v in b.inputs.items()}),
        "source": source,
        "env": _dict_diff({k: a.env.get(k) for k in env_keys}, {k: b.env.get(k) for k in env_keys}),
        "packages": _dict_diff(a.env.get("packages") or {}, b.env.get("packages") or {}),
    }


def _text(value: Any) -> str:
    if value is _MISSING:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value) if not isinstance(value, str) else value


def _input_text(item: dict[str, Any] | None) -> Any:
    if item is None:
        return _MISSING
    shape = f" {tuple(item['shape'])}" if item.get("shape") else ""
    return f"{item.get('type') or '?'}{shape} #{(item.get('hash') or '')[:12]}"


def diff_many(runs: list[Run]) -> dict[str, Any]:
    """What differs across two or more runs, as text for a table with one column per run.

    ``sections`` holds the params, metrics, values, inputs, environment entries and packages whose
    values are not all equal; ``source`` a unified diff of each run's source against the first run's.
    """
    env_keys = ("python", "implementation", "platform", "machine", "git_commit", "git_branch", "git_dirty",
                "host", "user", "notebook")
    tables: dict[str, list[dict[str, Any]]] = {
        "params": [r.params for r in runs],
        "metrics": [r.metrics for r in runs],
        "values": [r.values for r in runs],
        "inputs": [{k: _input_text(v) for k, v in r.inputs.items()} for r in runs],
        "environment": [{k: r.env.get(k) for k in env_keys} for r in runs],
        "packages": [r.env.get("packages") or {} for r in runs],
    }
    sections = []
    for title, dicts in tables.items():
        rows = []
        for key in sorted(set().union(*dicts)):
            values = [d.get(key, _MISSING) for d in dicts]
            if any(v != values[0] for v in values[1:]):
                rows.append({"key": key, "values": [_text(v) for v in values]})
        if rows:
            sections.append({"title": title, "rows": rows})
    first = runs[0]
    source = []
    for other in runs[1:]:
        lines = list(difflib.unified_diff((first.source or "").splitlines(), (other.source or "").splitlines(),
                                          f"{first.name} {first.run_id[:8]}", f"{other.name} {other.run_id[:8]}",
                                          lineterm=""))
        if lines:
            source.append({"run_id": other.run_id, "lines": lines})
    return {
        "runs": [{"run_id": r.run_id, "label": f"{r.label or r.name} · {r.run_id[:8]}", "status": r.status} for r in runs],
        "sections": sections,
        "source": source,
    }
