"""Likely causes of a difference between two runs, each from facts recorded with the runs: source,
params, input fingerprints and the runs that produced them, package versions, RNG states before
and after, and where each name the cell read came from. Nothing is guessed from the source text.
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from ..api import Run
from ..errors import RunNotFoundError
from .report import MISSING, Cause, describe_fingerprint, number_text
from ..store import codec, queries

_RNG_NAMES = {"random": "Python's `random`", "numpy": "NumPy's global generator (`np.random`)",
              "torch": "torch's global generator"}
_GENERATOR_TYPES = ("Generator", "RandomState", "Random")


def _rng(run: Run) -> dict[str, list[str | None]]:
    raw = run.info.get("rng")
    value = codec.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _rng_causes(a: Run, b: Run, whose: str) -> list[Cause]:
    """Generators that started from different states and ended in different states: drawn from
    without a seed in the cell. (Seeded ones end in the same state whatever they started from.)"""
    ra, rb = _rng(a), _rng(b)
    causes = []
    for gen in sorted(set(ra) & set(rb)):
        (a0, a1), (b0, b1) = ra[gen], rb[gen]
        if None in (a0, a1, b0, b1):
            continue
        drew = a0 != a1 or b0 != b1
        if drew and a1 != b1:
            how = ("started from different states in the two runs and was not seeded in the cell"
                   if a0 != b0 else "was seeded from the operating system (a seed call without a value)")
            label = _RNG_NAMES.get(gen, gen)
            detail = (f"{whose} drew from {label} without a fixed seed: it {how}, so its results depend on "
                      f"what ran before; seed it in the cell (e.g. `{_seed_hint(gen)}`)")
            causes.append(Cause("randomness", detail, {"generator": gen, "a": {"before": a0, "after": a1},
                                                        "b": {"before": b0, "after": b1},
                                                        "runs": [a.run_id, b.run_id]}, 0.7))
    return causes


def _seed_hint(gen: str) -> str:
    return {"random": "random.seed(0)", "numpy": "np.random.seed(0)", "torch": "torch.manual_seed(0)"}.get(
        gen, "seed it")


def _packages(run: Run) -> dict[str, str]:
    return dict(run.env.get("packages") or {})


def _hidden_state(run: Run, reader: Any) -> list[Cause]:
    raw = run.info.get("provenance")
    provenance = codec.loads(raw) if isinstance(raw, str) else raw
    provenance = provenance if isinstance(provenance, dict) else {}
    if not provenance:
        return []
    cells = _notebook_cells(run)
    reading_cell = run.info.get("cell_id")
    causes = []
    for name, prod in sorted(provenance.items()):
        if "import" in prod:
            continue   # a module or a package's function: nothing hidden
        cell_id, count, producer_run = prod.get("cell_id"), prod.get("execution_count"), prod.get("run_id")
        where = f"execution [{count}]" if count else "an earlier execution"
        if cells is not None and cell_id and cell_id not in cells:
            causes.append(Cause("hidden_state", f"`{name}` was defined by a cell that no longer exists in the "
                                f"notebook ({where}); restore that cell or define `{name}` in a cell that "
                                "runs before this one", {"name": name, "producer": prod,
                                                          "notebook": run.env.get("notebook")}, 0.6))
        elif cells is not None and cell_id and reading_cell in cells and \
                cells.index(cell_id) > cells.index(reading_cell):
            causes.append(Cause("hidden_state", f"`{name}` was defined by a cell below this one ({where}): the "
                                "notebook was run out of order; move that cell up or re-run from the top",
                                {"name": name, "producer": prod, "notebook": run.env.get("notebook")}, 0.55))
        elif producer_run and name in run.inputs:
            try:
                produced = reader.run(producer_run).outputs.get(name)
            except RunNotFoundError:
                produced = None
            now = run.inputs[name].get("hash")
            if produced and produced.get("hash") and now and produced["hash"] != now:
                causes.append(Cause("hidden_state", f"`{name}` was changed after run {producer_run[:8]} "
                                    "produced it (mutated in place, e.g. by an untracked cell)",
                                    {"name": name, "producer": prod, "produced_hash": produced["hash"],
                                     "read_hash": now}, 0.5))
        elif not cell_id and not producer_run and count is None:
            causes.append(Cause("hidden_state", f"`{name}` was not defined by any cell nbtrack saw run (it "
                                "comes from before `%load_ext nbtrack`, or from `%run`/`exec`)",
                                {"name": name, "producer": prod}, 0.2))
    return causes


def _notebook_cells(run: Run) -> list[str] | None:
    path = run.env.get("notebook")
    if not path or not os.path.isabs(path):
        return None
    try:
        nb = json.loads(Path(path).read_text())
        return [c.get("id") for c in nb.get("cells", [])]
    except (OSError, ValueError):
        return None


def causes(a: Run, b: Run, verdict: str, reader: Any) -> list[Cause]:
    causes: list[Cause] = []
    if verdict != "identical":
        if (a.source or "") != (b.source or "") and a.source is not None and b.source is not None:
            lines = list(difflib.unified_diff((a.source or "").splitlines(), (b.source or "").splitlines(),
                                              f"run {a.run_id[:8]}", f"run {b.run_id[:8]}", lineterm=""))
            added = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
            removed = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
            causes.append(Cause("source", f"the cell's source changed ({added} line(s) added, {removed} removed)",
                                {"diff": lines}, 0.9))
        changed = {k: (a.params.get(k, "—"), b.params.get(k, "—")) for k in sorted(set(a.params) | set(b.params))
                   if a.params.get(k, MISSING) != b.params.get(k, MISSING)}
        if changed:
            text = ", ".join(f"{k}: {number_text(x)} → {number_text(y)}" for k, x, y in ((k, *v) for k, v in changed.items()))
            causes.append(Cause("params", f"params changed: {text}", {"changed": changed}, 0.85))
        causes += _input_causes(a, b, reader)
        causes += _rng_causes(a, b, "the cell")
        generators = [o for o in set(a.outputs) & set(b.outputs)
                      if (a.outputs[o].get("type") or "").split(".")[-1] in _GENERATOR_TYPES
                      and a.outputs[o].get("hash") != b.outputs[o].get("hash")]
        for name in sorted(generators):
            causes.append(Cause("randomness", f"`{name}` is a random generator whose state differs between the "
                                "runs: create it with a seed (e.g. `np.random.default_rng(0)`)",
                                {"name": name, "a": a.outputs[name].get("hash"), "b": b.outputs[name].get("hash")},
                                0.68))
        pa_, pb_ = _packages(a), _packages(b)
        # versions that changed; a package imported in one session and not the other is not drift
        drift = {k: (pa_[k], pb_[k]) for k in sorted(set(pa_) & set(pb_)) if pa_[k] != pb_[k]}
        system = {k: (a.env.get(k), b.env.get(k)) for k in ("python", "implementation", "platform", "machine")
                  if a.env.get(k) != b.env.get(k)}
        if drift or system:
            parts = [f"{k} {x or 'absent'} → {y or 'absent'}" for k, (x, y) in {**system, **drift}.items()]
            detail = "the environment changed: " + ", ".join(parts[:8]) + (", ..." if len(parts) > 8 else "")
            causes.append(Cause("environment", detail, {"packages": drift, "system": system}, 0.5))
    causes += _hidden_state(b, reader)
    causes.sort(key=lambda c: -c.score)
    return causes


def _input_causes(a: Run, b: Run, reader: Any) -> list[Cause]:
    names = sorted(n for n in set(a.inputs) | set(b.inputs)
                   if (a.inputs.get(n) or {}).get("hash") != (b.inputs.get(n) or {}).get("hash"))
    if not names:
        return []
    hashes = [h for n in names for h in ((a.inputs.get(n) or {}).get("hash"), (b.inputs.get(n) or {}).get("hash")) if h]
    producers = queries.producers(reader.con, hashes)
    causes = []
    for name in names:
        ia, ib = a.inputs.get(name), b.inputs.get(name)
        ha, hb = (ia or {}).get("hash"), (ib or {}).get("hash")
        pa_ = _producer(producers.get(ha or ""), a)
        pb_ = _producer(producers.get(hb or ""), b)
        made = []
        for label, p in (("old", pa_), ("new", pb_)):
            if p:
                made.append(f"the {label} one by run {p['run_id'][:8]} ({p['name']})")
        detail = f"input `{name}` changed: {describe_fingerprint(ia)} → {describe_fingerprint(ib)}" + (f"; {', '.join(made)}" if made else "")
        causes.append(Cause("input_data", detail, {"name": name, "a": ia, "b": ib, "produced_by":
                                                   {"a": pa_, "b": pb_}}, 0.8))
        if pa_ and pb_ and pa_["run_id"] != pb_["run_id"]:
            try:
                upstream_a, upstream_b = reader.run(pa_["run_id"]), reader.run(pb_["run_id"])
            except RunNotFoundError:
                continue
            for cause in _rng_causes(upstream_a, upstream_b, f"run {pb_['run_id'][:8]}, which produced `{name}`,"):
                cause.score = 0.75
                causes.append(cause)
    return causes


def _producer(candidates: list[dict[str, Any]] | None, consumer: Run) -> dict[str, Any] | None:
    """The latest run that produced this fingerprint before the consumer started."""
    if not candidates:
        return None
    started = consumer.started_at
    before = [c for c in candidates if c["run_id"] != consumer.run_id and
              (started is None or c["started_at"] is None or c["started_at"] <= started)]
    return before[-1] if before else None


# -- the public entry points -------------------------------------------------------------------------
