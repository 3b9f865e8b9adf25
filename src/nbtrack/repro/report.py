"""Reproducibility reports: one output compared across two runs, a likely cause, the whole report
(text, Markdown, widget); and the comparison of two runs' outputs."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..api import Run
from ..inline import widget_bundle
from ..store.records import FINISHED

VERDICTS = ("identical", "within_tolerance", "differs")
CAUSE_KINDS = ("source", "params", "input_data", "environment", "randomness", "hidden_state")


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
            if run.status != FINISHED:
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
        bundle.update(widget_bundle(self.widget))   # the widget in a notebook; text and Markdown elsewhere
        return bundle

    def widget(self) -> Any:
        """The report as a widget (a table of differences, causes with their evidence)."""
        from ..widgets import ReportView

        return ReportView(self)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.run_id, "b": self.b.run_id, "verdict": self.verdict,
                "outputs": [o.__dict__ for o in self.outputs],
                "causes": [{"kind": c.kind, "detail": c.detail, "evidence": c.evidence} for c in self.causes]}


def _md(text: Any) -> str:
    """Markdown table cells take no pipes or newlines; angle brackets are shown, not parsed."""
    return (str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;"))


# -- comparing outputs -------------------------------------------------------------------------------
def number_text(v: Any) -> str:
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
        detail = f"{number_text(a)} → {number_text(b)} ({diff:+.3g}{rel})"
        ok = math.isfinite(a) and math.isfinite(b) and abs(diff) <= max(atol, rtol * max(abs(a), abs(b)))
        check = OutputCheck(name, "metric", "within_tolerance" if ok else "differs", a, b, detail)
    if len(spread_a) > 1 or len(spread_b) > 1:
        sa, sb = _stats(spread_a or [a]), _stats(spread_b or [b])
        check.spread = {"a": sa, "b": sb}
        noise = 2 * max(sa["std"], sb["std"])
        gap = abs(sb["mean"] - sa["mean"])
        check.detail = (f"mean {number_text(sa['mean'])} ± {sa['std']:.3g} (n={sa['n']}) → {number_text(sb['mean'])} ± "
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


def compare_outputs(a: Run, b: Run, rtol: float, atol: float, tolerances: dict[str, Any] | None,
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
        va, vb = a.values.get(name, MISSING), b.values.get(name, MISSING)
        if vb is MISSING:
            out.append(OutputCheck(name, "value", "missing", va, None, "not produced by the new run"))
        elif va is MISSING:
            out.append(OutputCheck(name, "value", "new", None, vb, "not in the reference run"))
        else:
            status = "identical" if va == vb else "differs"
            out.append(OutputCheck(name, "value", status, va, vb, "" if va == vb else f"{va!r:.60} → {vb!r:.60}"))
    for name in sorted(set(a.outputs) | set(b.outputs)):
        fa, fb = a.outputs.get(name), b.outputs.get(name)
        if fb is None:
            out.append(OutputCheck(name, "output", "missing", describe_fingerprint(fa), None, "not produced by the new run"))
        elif fa is None:
            out.append(OutputCheck(name, "output", "new", None, describe_fingerprint(fb), "not in the reference run"))
        elif fa.get("hash") and fa.get("hash") == fb.get("hash"):
            out.append(OutputCheck(name, "output", "identical", describe_fingerprint(fa), describe_fingerprint(fb)))
        else:
            detail = f"{describe_fingerprint(fa)} → {describe_fingerprint(fb)}"
            out.append(OutputCheck(name, "output", "differs", describe_fingerprint(fa), describe_fingerprint(fb), detail))
    return out


MISSING = object()


def describe_fingerprint(item: dict[str, Any] | None) -> str:
    if not item:
        return "—"
    shape = f" {tuple(item['shape'])}" if item.get("shape") else ""
    return f"{item.get('type') or '?'}{shape} #{(item.get('hash') or item.get('hash_method') or '')[:12]}"


def verdict_of(outputs: list[OutputCheck]) -> str:
    statuses = {o.status for o in outputs}
    if statuses & {"differs", "missing", "new"}:
        return "differs"
    if "within_tolerance" in statuses:
        return "within_tolerance"
    return "identical"


