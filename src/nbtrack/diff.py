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
