"""Reproducibility checks: compare two runs output by output, and rank what explains a difference.

Every cause is backed by facts recorded with the runs (source, params, input fingerprints and the
runs that produced them, package versions, RNG states before and after, where each name read came
from); nothing is guessed from the source text.
"""
from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import Run, _store, _to_run
from .errors import NbtrackError, RunNotFoundError
from .recorder import run as _run
from .store import Store, queries

VERDICTS = ("identical", "within_tolerance", "differs")
CAUSE_KINDS = ("source", "params", "input_data", "environment", "randomness", "hidden_state")
RTOL, ATOL = 1e-9, 0.0
_RNG_NAMES = {"random": "Python's `random`", "numpy": "NumPy's global generator (`np.random`)",
              "torch": "torch's global generator"}
_GENERATOR_TYPES = ("Generator", "RandomState", "Random")


@dataclass
class OutputCheck:
    """One metric, value or output compared across the two runs."""

    name: str
    kind: str                  # metric | value | output
    status: str                # identical | within_tolerance | differs | missing | new
    a: Any = None
    b: Any = None
    detail: str = ""
    spread: dict[str, dict[str, float]] = field(default_factory=dict)   # a/b -> mean, std, min, max, n

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}: {self.status}{' (' + self.detail + ')' if self.detail else ''}>"


@dataclass
class Cause:
    """A likely reason for a difference, with the recorded facts behind it."""

    kind: str                  # one of CAUSE_KINDS
    detail: str                # a sentence a user can act on
    evidence: dict[str, Any]
    score: float = 0.0

    def __repr__(self) -> str:
        return f"<Cause {self.kind}: {self.detail}>"


@dataclass
class CheckReport:
    """The result of comparing run ``b`` with run ``a`` (the reference)."""

    a: Run
    b: Run
    verdict: str
    outputs: list[OutputCheck]
    causes: list[Cause]

    @property
    def differences(self) -> list[OutputCheck]:
        return [o for o in self.outputs if o.status != "identical"]

    def _title(self) -> str:
        return (f"nbtrack check: {self.verdict.replace('_', ' ')} — run {self.b.run_id[:8]} ({self.b.name}) "
                f"against run {self.a.run_id[:8]} ({self.a.name})")

    def _status_line(self) -> str | None:
        """A run that did not finish explains its missing outputs before any cause does."""
        for label, run in (("new", self.b), ("reference", self.a)):
            if run.status != "finished":
                err = run.error or {}
                why = f": {err.get('type')}: {err.get('message')}" if err.get("type") else ""
                return f"the {label} run {run.run_id[:8]} is {run.status}{why}"
        return None

    def __str__(self) -> str:
        lines = [self._title()]
        status = self._status_line()
        if status:
            lines.append(status)
        diffs = self.differences
        same = len(self.outputs) - len(diffs)
        lines.append(f"outputs: {same} identical, {len(diffs)} not" if self.outputs else "outputs: none recorded")
        for o in diffs:
            lines.append(f"  {o.status:<16} {o.kind} {o.name}: {o.detail}")
        if self.causes:
            lines.append("likely causes:" if self.verdict != "identical" else "risks:")
            for i, c in enumerate(self.causes, 1):
                lines.append(f"  {i}. {c.kind}: {c.detail}")
        elif self.verdict != "identical":
            lines.append("no recorded difference between the runs explains it")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        out = [f"**{self._title()}**", ""]
        status = self._status_line()
        if status:
            out += [_md(status), ""]
        diffs = self.differences
        if diffs:
            out += ["| output | kind | status | detail |", "|---|---|---|---|"]
            out += [f"| {_md(o.name)} | {o.kind} | {o.status} | {_md(o.detail)} |" for o in diffs]
        else:
            out.append(f"All {len(self.outputs)} outputs identical." if self.outputs else "No outputs recorded.")
        if self.causes:
            out += ["", "**Likely causes**" if self.verdict != "identical" else "**Risks**", ""]
            out += [f"{i}. **{c.kind}**: {_md(c.detail)}" for i, c in enumerate(self.causes, 1)]
        return "\n".join(out)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": str(self), "text/markdown": self._repr_markdown_()}
        view = self.widget() if _in_kernel() else None
        if view is not None:   # the widget in a notebook; text and Markdown everywhere else
            bundle.update({k: v for k, v in _widget_bundle(view).items() if k != "text/plain"})
        return bundle

    def widget(self) -> Any:
        """The report as a widget (a table of differences, causes with their evidence)."""
        from .widgets import ReportView

        return ReportView(self)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.run_id, "b": self.b.run_id, "verdict": self.verdict,
                "outputs": [o.__dict__ for o in self.outputs],
                "causes": [{"kind": c.kind, "detail": c.detail, "evidence": c.evidence} for c in self.causes]}


def _widget_bundle(view: Any) -> dict[str, Any]:
    """A widget's MIME bundle (ipywidgets returns ``(data, metadata)`` in some versions)."""
    bundle = view._repr_mimebundle_()
    return bundle[0] if isinstance(bundle, tuple) else bundle


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and getattr(shell, "kernel", None) is not None
    except Exception:
        return False


def _md(text: Any) -> str:
    """Markdown table cells take no pipes or newlines; angle brackets are shown, not parsed."""
    return (str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;"))


# -- comparing outputs -------------------------------------------------------------------------------
def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v)


def _stats(values: list[float]) -> dict[str, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(values), "max": max(values), "n": n}


def _compare_metric(name: str, a: float, b: float, rtol: float, atol: float,
                    spread_a: list[float], spread_b: list[float]) -> OutputCheck:
    if (a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
        check = OutputCheck(name, "metric", "identical", a, b)
    else:
        diff = b - a
        rel = f", {diff / abs(a):+.2%}" if a not in (0, 0.0) and math.isfinite(a) else ""
        detail = f"{_num(a)} → {_num(b)} ({diff:+.3g}{rel})"
        ok = math.isfinite(a) and math.isfinite(b) and abs(diff) <= max(atol, rtol * max(abs(a), abs(b)))
        check = OutputCheck(name, "metric", "within_tolerance" if ok else "differs", a, b, detail)
    if len(spread_a) > 1 or len(spread_b) > 1:
        sa, sb = _stats(spread_a or [a]), _stats(spread_b or [b])
        check.spread = {"a": sa, "b": sb}
        noise = 2 * max(sa["std"], sb["std"])
        gap = abs(sb["mean"] - sa["mean"])
        check.detail = (f"mean {_num(sa['mean'])} ± {sa['std']:.3g} (n={sa['n']}) → {_num(sb['mean'])} ± "
                        f"{sb['std']:.3g} (n={sb['n']})")
        if gap == 0 and sa["std"] == 0 and sb["std"] == 0:
            check.status = "identical"
        elif gap <= max(noise, atol, rtol * max(abs(sa["mean"]), abs(sb["mean"]))):
            check.status = "within_tolerance"
            check.detail += ": within the spread of the repeats"
        else:
            check.status = "differs"
            check.detail += ": more than twice the spread of the repeats"
    return check


def _tolerance(name: str, rtol: float, atol: float, tolerances: dict[str, Any] | None) -> tuple[float, float]:
    if tolerances and name in tolerances:
        tol = tolerances[name]
        if isinstance(tol, (tuple, list)):
            return float(tol[0]), float(tol[1])
        return float(tol), atol
    return rtol, atol


def _compare_outputs(a: Run, b: Run, rtol: float, atol: float, tolerances: dict[str, Any] | None,
                     groups: dict[str, list[Run]]) -> list[OutputCheck]:
    out: list[OutputCheck] = []
    for name in sorted(set(a.metrics) | set(b.metrics)):
        if name not in b.metrics:
            out.append(OutputCheck(name, "metric", "missing", a.metrics[name], None, "not produced by the new run"))
        elif name not in a.metrics:
            out.append(OutputCheck(name, "metric", "new", None, b.metrics[name], "not in the reference run"))
        else:
            r, t = _tolerance(name, rtol, atol, tolerances)
            spread_a = [x.metrics[name] for x in groups.get("a", []) if name in x.metrics]
            spread_b = [x.metrics[name] for x in groups.get("b", []) if name in x.metrics]
            out.append(_compare_metric(name, a.metrics[name], b.metrics[name], r, t, spread_a, spread_b))
    for name in sorted(set(a.values) | set(b.values)):
        va, vb = a.values.get(name, _MISSING), b.values.get(name, _MISSING)
        if vb is _MISSING:
            out.append(OutputCheck(name, "value", "missing", va, None, "not produced by the new run"))
        elif va is _MISSING:
            out.append(OutputCheck(name, "value", "new", None, vb, "not in the reference run"))
        else:
            status = "identical" if va == vb else "differs"
            out.append(OutputCheck(name, "value", status, va, vb, "" if va == vb else f"{va!r:.60} → {vb!r:.60}"))
    for name in sorted(set(a.outputs) | set(b.outputs)):
        fa, fb = a.outputs.get(name), b.outputs.get(name)
        if fb is None:
            out.append(OutputCheck(name, "output", "missing", _fp(fa), None, "not produced by the new run"))
        elif fa is None:
            out.append(OutputCheck(name, "output", "new", None, _fp(fb), "not in the reference run"))
        elif fa.get("hash") and fa.get("hash") == fb.get("hash"):
            out.append(OutputCheck(name, "output", "identical", _fp(fa), _fp(fb)))
        else:
            detail = f"{_fp(fa)} → {_fp(fb)}"
            out.append(OutputCheck(name, "output", "differs", _fp(fa), _fp(fb), detail))
    return out


_MISSING = object()


def _fp(item: dict[str, Any] | None) -> str:
    if not item:
        return "—"
    shape = f" {tuple(item['shape'])}" if item.get("shape") else ""
    return f"{item.get('type') or '?'}{shape} #{(item.get('hash') or item.get('hash_method') or '')[:12]}"


def _verdict(outputs: list[OutputCheck]) -> str:
    statuses = {o.status for o in outputs}
    if statuses & {"differs", "missing", "new"}:
        return "differs"
    if "within_tolerance" in statuses:
        return "within_tolerance"
    return "identical"


# -- causes ------------------------------------------------------------------------------------------
def _rng(run: Run) -> dict[str, list[str | None]]:
    raw = run.info.get("rng")
    return json.loads(raw) if isinstance(raw, str) else (raw or {})


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


def _hidden_state(run: Run, reader: _Reader) -> list[Cause]:
    raw = run.info.get("provenance")
    provenance = json.loads(raw) if isinstance(raw, str) else (raw or {})
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


def _causes(a: Run, b: Run, verdict: str, reader: _Reader) -> list[Cause]:
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
                   if a.params.get(k, _MISSING) != b.params.get(k, _MISSING)}
        if changed:
            text = ", ".join(f"{k}: {_num(x)} → {_num(y)}" for k, x, y in ((k, *v) for k, v in changed.items()))
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


def _input_causes(a: Run, b: Run, reader: _Reader) -> list[Cause]:
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
        detail = f"input `{name}` changed: {_fp(ia)} → {_fp(ib)}" + (f"; {', '.join(made)}" if made else "")
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
class _Reader:
    """Runs for one check: from this kernel's memory when it just recorded them, else from the store,
    which is opened on first need only (a check of two runs made here never waits for DuckDB)."""

    def __init__(self, store: Store, use_recent: bool = False) -> None:
        self.store = store
        self.use_recent = use_recent
        self._cm: Any = None
        self._con: Any = None

    @property
    def con(self) -> Any:
        if self._con is None:
            _run.syncer.flush()
            self._cm = self.store.connect()
            self._con = self._cm.__enter__()
        return self._con

    def run(self, ref: Run | str) -> Run:
        if isinstance(ref, Run):
            return ref
        cached = _recent.get(ref) if self.use_recent else None
        if cached is not None and cached.store is not None and cached.store.path == self.store.path:
            return cached
        con = self.con
        return _to_run(queries.run_detail(con, queries.resolve_run_id(con, ref, str(self.store.path))), self.store)

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = self._con = None


def _repeat_group(run: Run, reader: _Reader) -> list[Run]:
    group = run.info.get("repeat_group")
    if not group:
        return []
    members = [r for r in _recent.values() if r.info.get("repeat_group") == group] if reader.use_recent else []
    if members and len(members) == max(m.info.get("repeat_index") or 0 for m in members) + 1:
        return sorted(members, key=lambda r: r.info.get("repeat_index") or 0)
    return [reader.run(i) for i in queries.repeat_members(reader.con, group)]


def check(run_a: Run | str, run_b: Run | str, *, rtol: float = RTOL, atol: float = ATOL,
          tolerances: dict[str, float | tuple[float, float]] | None = None,
          store: str | os.PathLike[str] | Store | None = None) -> CheckReport:
    """Compare run ``b`` with run ``a`` (the reference): per output and overall, and why they differ.

    Metrics within ``rtol``/``atol`` (or ``tolerances={"loss": rtol}`` / ``{"loss": (rtol, atol)}``)
    are ``within_tolerance``; runs made with ``--repeat`` are compared by mean against the spread
    of their repeats.
    """
    return _check(_Reader(_store(store)), run_a, run_b, rtol, atol, tolerances)


def check_recent(run_a: str, run_b: str, store: Store, rtol: float = RTOL, atol: float = ATOL,
                 tolerances: dict[str, float | tuple[float, float]] | None = None) -> CheckReport:
    """``check`` for ``%%track --check``: runs this kernel just recorded are read from memory."""
    return _check(_Reader(store, use_recent=True), run_a, run_b, rtol, atol, tolerances)


def _check(reader: _Reader, run_a: Run | str, run_b: Run | str, rtol: float, atol: float,
           tolerances: dict[str, float | tuple[float, float]] | None) -> CheckReport:
    try:
        a, b = reader.run(run_a), reader.run(run_b)
        groups = {"a": _repeat_group(a, reader), "b": _repeat_group(b, reader)}
        outputs = _compare_outputs(a, b, rtol, atol, tolerances, groups)
        verdict = _verdict(outputs)
        return CheckReport(a, b, verdict, outputs, _causes(a, b, verdict, reader))
    finally:
        reader.close()


_recent: dict[str, Run] = {}   # this kernel's latest runs, as recorded: what --check compares first
RECENT = 64


def remember_run(run: Run) -> None:
    _recent[run.run_id] = run
    while len(_recent) > RECENT:
        _recent.pop(next(iter(_recent)))


def recent_reference(name: str, params: dict[str, Any], store: Store) -> str | None:
    """The latest run of this kernel with this name and these cell params, if it finished."""
    want = _normal(params)
    for run in reversed(list(_recent.values())):
        if run.name == name and run.store is not None and run.store.path == store.path:
            own = {k: v for k, v in run.params.items() if run.param_kinds.get(k) in CELL_PARAM_KINDS}
            if _normal(own) == want:
                return run.run_id if run.status == "finished" else None
    return None


CELL_PARAM_KINDS = ("literal", "override")


def find_reference(store: Store, name: str, params: dict[str, Any], exclude: str | None = None) -> str | None:
    """The latest finished run of this name with these params (what ``%%track --check`` compares with).

    ``params`` are the cell's own (literal and ``-p``) params: a changed input is what a check
    should explain, not a reason to compare with another run."""
    if not store.exists():
        return None
    want = _normal(params)
    with store.connect() as con:
        for run_id in queries.reference_candidates(con, name, exclude):
            if _normal(queries.params_of(con, run_id, CELL_PARAM_KINDS)) == want:
                return run_id
    return None


def _normal(params: dict[str, Any]) -> str:
    """Params as the store gives them back (tuples are lists, keys sorted)."""
    return json.dumps(params, sort_keys=True, default=repr)


_last: CheckReport | None = None


def last_check() -> CheckReport:
    """The report of this kernel's latest ``%%track --check``."""
    if _last is None:
        raise NbtrackError("no check report: run a cell with %%track --check (the latest one, if any, found "
                           "no earlier run of that cell with the same params to compare with)")
    return _last


def remember(report: CheckReport | None) -> None:
    global _last
    _last = report
