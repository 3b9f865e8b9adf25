"""The states of the global random generators, as short hashes, before and after a run.

A check compares two runs' states: a generator whose state before the cell differed between
the runs, and whose state after differed too, was drawn from without being seeded in the cell,
so the cell's results depended on whatever ran before it. One seeded in the cell ends in the same
state whatever it started from. Only generators of modules already imported are read; nbtrack
imports none of them.
"""
from __future__ import annotations

import hashlib
import random
import sys
from typing import Any


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _numpy(np: Any) -> str:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return _digest(keys.tobytes() + repr((name, pos, has_gauss, gauss)).encode())


def _torch(torch: Any) -> str:
    return _digest(bytes(torch.random.get_rng_state().numpy().tobytes()))


def snapshot() -> dict[str, str]:
    """Hash of each global generator's state: Python's ``random``, NumPy's and torch's when imported."""
    # ints hash the same in every process (unlike str and bytes): a cheap, comparable digest
    states = {"random": f"{hash(random.getstate()) & 0xFFFFFFFFFFFFFFFF:016x}"}
    readers = (("numpy", _numpy), ("torch", _torch))
    for module, read in readers:
        mod = sys.modules.get(module)
        if mod is not None:
            try:
                states[module] = read(mod)
            except Exception:   # a stub or broken install: no fact rather than a failed cell
                pass
    return states


def pair(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str | None]]:
    """``{generator: [before, after]}`` for every generator seen at either end."""
    return {name: [before.get(name), after.get(name)] for name in sorted(set(before) | set(after))}
