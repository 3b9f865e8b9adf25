"""Hand-off: a recorded run as a standalone script, and re-running it to see whether it reproduces.

The script is the run's upstream chain of tracked cells (lineage), in order, with their literal
params hoisted to constants at the top, a comment naming each source run, the recorded package
versions, and an assertion before each step that its inputs have the fingerprints the run read.
"""
from __future__ import annotations

import ast
import datetime as dt
import json
import keyword
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from decimal import Decimal
from typing import Any

from ..api import Run, resolve_store, get
from ..errors import NbtrackError
from .graph import lineage
from ..recorder.session import session
from ..store import Store, codec

# the first line fixes the encoding: a recorded name with "coding: ..." in line 1 or 2 would set it
_HEADER = """# -*- coding: utf-8 -*-
# Reproduces nbtrack run {run_id} ({name}, experiment {experiment}, {started}).
#
# Exported by nbtrack {version} from {store}.
# Steps: {steps}.
# Run it with the packages below; each step first checks that its inputs are the data the
# recorded run read (this needs nbtrack installed; without it the checks are skipped).
"""
_IMPORT = re.compile(r"^(?:import [A-Za-z_][\w.]*(?: as [A-Za-z_]\w*)?"
                     r"|from [A-Za-z_][\w.]* import [A-Za-z_]\w*(?: as [A-Za-z_]\w*)?)$")


# Everything recorded that reaches the script goes through one of these three: a string from the store is
# never pasted into code, so no run name, param or package can make the script do more than the run did.
def comment(text: Any) -> str:
    """Text safe inside a ``#`` comment: one line, escapes for anything unprintable (newlines too)."""
    text = str(text)
    return text if text.isprintable() else repr(text)[1:-1]


def is_name(text: Any) -> bool:
    """A name the script may bind or read: an identifier, not a keyword."""
    return isinstance(text, str) and text.isidentifier() and not keyword.iskeyword(text)


def py_literal(value: Any) -> str:
    """A Python expression that evaluates to ``value``, for every type the store gives back (codec.py)."""
    if value is None or isinstance(value, (bool, str, bytes)):
        return repr(value)
    if isinstance(value, int):
        try:
            return repr(value)
        except ValueError:   # beyond str()'s digit limit
            return f"int({hex(value)!r}, 16)"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, complex):
        return f"complex({py_literal(value.real)}, {py_literal(value.imag)})"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(py_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (set, frozenset)):
        inner = "{" + ", ".join(sorted(py_literal(v) for v in value)) + "}" if value else "()"
        return f"{type(value).__name__}({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Decimal):
        return f"__import__('decimal').Decimal({str(value)!r})"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return f"__import__('datetime').{type(value).__name__}.fromisoformat({value.isoformat()!r})"
    if isinstance(value, dt.timedelta):
        return f"__import__('datetime').timedelta({value.days}, {value.seconds}, {value.microseconds})"
    return repr(str(value))


def _params_hoistable(chain: list[Run]) -> dict[str, Any]:
    """Literal params with one value across the chain (a name set differently by two steps stays put)."""
    seen: dict[str, Any] = {}
    clash: set[str] = set()
    for run in chain:
        for key, value in run.params.items():
            if run.param_kinds.get(key) not in ("literal", "override"):
                continue
            if key in seen and seen[key] != value:
                clash.add(key)
            seen.setdefault(key, value)
    return {k: v for k, v in seen.items() if k not in clash}


def _strip_assignments(source: str, names: set[str]) -> str:
    """Replace the top-level literal assignments of hoisted params with a pointer to the top."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in names and node.lineno == node.end_lineno:
            lines[node.lineno - 1] = f"# {node.targets[0].id}: set in PARAMETERS above"
    return "\n".join(lines)


def _plain_python(source: str) -> tuple[str, bool]:
    """IPython-only lines (``%magic``, ``!shell``) commented out; plain Python is kept as it is."""
    out, changed = [], False
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) and line == stripped:
            out.append(f"# (IPython only) {line}")
            changed = True
        else:
            out.append(line)
    return "\n".join(out), changed


def _provenance(run: Run) -> dict[str, dict[str, Any]]:
    raw = run.info.get("provenance")
    value = codec.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _saved(store: Store, inputs: dict[str, str | None]) -> dict[str, dict[str, Any]]:
    """Inputs some run saved (``--save``) with the same fingerprint: those a script can load back."""
    hashes = [h for h in inputs.values() if h]
    if not hashes:
        return {}
    from ..store import queries

    with store.connect() as con:
        found = queries.saved_outputs(con, hashes)
    return {name: found[h] for name, h in inputs.items() if h in found}


def _chain(run: Run, store: Store) -> list[Run]:
    """The runs to execute, in order: upstream producers of the run's inputs, except where an input
    was saved (``--save``) and can be loaded instead of recomputed."""
    graph = lineage(run, store)
    runs = {run.run_id: run}
    needed: set[str] = set()
    todo = [run.run_id]
    while todo:
        consumer = runs[todo.pop()]
        saved = _saved(store, {n: i.get("hash") for n, i in consumer.inputs.items()})
        for producer, c, name in graph.edges:
            if c != consumer.run_id or name in saved or producer in needed:
                continue
            needed.add(producer)
            runs[producer] = get(producer, store)
            todo.append(producer)
    order = [r for r in graph.upstream() if r in needed]
    return [runs[r] for r in order] + [run]


def export_script(run: Run | str, path: str | os.PathLike[str] | None = None,
                  store: str | os.PathLike[str] | Store | None = None) -> str:
    """A standalone Python script that reproduces ``run``; written to ``path`` when given, returned always."""
    from ..version import __version__

    st = resolve_store(store)
    run = run if isinstance(run, Run) else get(run, st)
    chain = _chain(run, st)
    hoisted = _params_hoistable(chain)
    produced = {name for r in chain[:-1] for name in r.outputs} | {n for r in chain[:-1] for n in r.metrics} \
        | {n for r in chain[:-1] for n in r.values}
    started = run.started_at.isoformat(timespec="seconds") if run.started_at else "?"
    parts = [_HEADER.format(run_id=comment(run.run_id), name=comment(repr(run.name)),
                            experiment=comment(repr(run.experiment)), started=started, version=__version__,
                            store=comment(st.path),
                            steps=comment(", ".join(f"{r.name} ({r.run_id[:8]})" for r in chain)))]
    packages = run.env.get("packages") or {}
    if not isinstance(packages, dict):
        packages = {}
    parts.append(f"# Requirements recorded with the run (Python {comment(run.env.get('python') or '?')}):")
    parts += [f"#   {comment(name)}=={comment(version)}" for name, version in sorted(packages.items(), key=str)] \
        or ["#   (none recorded)"]
    parts.append("")
    parts.append("try:\n    from nbtrack import fingerprint as _fingerprint\nexcept ImportError:\n"
                 "    _fingerprint = None\n\n\n"
                 "def _check_input(name, value, expected, step):\n"
                 "    if _fingerprint is None or expected is None:\n        return\n"
                 "    got = _fingerprint(value)\n"
                 "    if got != expected:\n"
                 "        raise AssertionError(f\"{step}: input {name!r} is not the data the recorded run read \"\n"
                 "                             f\"(fingerprint {got}, expected {expected})\")\n")
    external = {n: item.get("hash") for r in chain for n, item in r.inputs.items() if n not in produced}
    restorable = _saved(st, external)
    if restorable:
        parts.append(f"STORE = {st.location!r}\n\n\n"
                     "def _restore(run_id, name):\n"
                     "    \"\"\"An input saved with %%track --save, loaded from the store (Parquet or .npy).\"\"\"\n"
                     "    import nbtrack\n    return nbtrack.get(run_id, store=STORE).load(name)\n")
    inputs_given: dict[str, Any] = {}
    for r in chain:
        for key, value in r.params.items():
            if r.param_kinds.get(key) == "input" and key not in produced and key not in hoisted:
                inputs_given.setdefault(key, value)
    imports, definitions = [], {}
    for r in chain:
        for name, origin in _provenance(r).items():
            if name in produced or not isinstance(origin, dict) or not is_name(name):
                continue
            line = origin.get("import")
            if isinstance(line, str) and line not in imports:
                imports.append(line if _IMPORT.match(line) else f"# (not an import line, left out) {comment(line)}")
            elif isinstance(origin.get("definition"), str) and name not in definitions:
                definitions[name] = origin["definition"]
    if imports:
        parts.append("# imports the cells used (recorded with the runs)")
        parts += sorted(imports)
        parts.append("")
    parts.append("# PARAMETERS")
    for key, value in {**hoisted, **inputs_given}.items():
        parts.append(f"{key} = {py_literal(value)}" if is_name(key) else
                     f"# (a parameter whose name is not a Python name: {comment(repr(key))} = "
                     f"{comment(py_literal(value))})")
    parts.append("")
    for name, source in definitions.items():
        parts.append(f"\n# `{name}`, defined in an untracked cell of the notebook")
        parts.append(source.rstrip())
    redacted = False
    for i, r in enumerate(chain, 1):
        parts.append(f"\n# --- step {i}/{len(chain)}: run {comment(r.run_id)} ({comment(r.name)}), "
                     f"{r.started_at.isoformat(timespec='seconds') if r.started_at else '?'} ---")
        inputs = {n: item for n, item in r.inputs.items() if is_name(n)}
        for name in sorted(n for n in inputs if n not in produced):
            item = inputs[name]
            saved = restorable.get(name)
            if saved and name not in produced:
                parts.append(f"{name} = _restore({saved['run_id']!r}, {saved['name']!r})   "
                             f"# saved by run {comment(saved['run_id'][:8])}")
                produced.add(name)
            else:
                parts.append(f"# needs `{name}` ({comment(item.get('type'))}), which no tracked run produced or "
                             "saved: define it here")
        for name, item in sorted(inputs.items()):
            parts.append(f"_check_input({name!r}, {name}, {item.get('hash')!r}, {('step ' + str(i))!r})")
        source, magic = _plain_python(_strip_assignments(r.source or "", set(hoisted)))
        redacted = redacted or "***" in source
        parts.append(source.rstrip())
        if magic:
            parts.append("# (lines only IPython understands were commented out above)")
    parts.append("\n# --- the recorded run's metrics, for comparison ---")
    parts.append("if __name__ == \"__main__\":")
    for name, value in sorted(run.metrics.items()):
        parts.append(f"    print({name!r}, globals().get({name!r}), {'(recorded: ' + repr(value) + ')'!r})")
    if not run.metrics:
        parts.append("    pass")
    if redacted:
        parts.insert(1, "# Secrets were redacted as \"***\" when the runs were recorded: set them before running.\n")
    text = "\n".join(parts) + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def reproduce(run: Run | str, store: str | os.PathLike[str] | Store | None = None,
              timeout: float = 3600) -> Any:
    """Re-run ``run`` from scratch in a fresh process and compare: a CheckReport.

    The run's upstream chain of tracked cells runs first, restoring its inputs; an input no
    tracked run produced cannot be restored and is named in the report. The new run is recorded,
    linked to the original (``checked_against``).
    """
    from .check import Cause, check

    st = resolve_store(store)
    session.syncer.flush()
    original = run if isinstance(run, Run) else get(run, st)
    chain = _chain(original, st)
    produced = {name for r in chain[:-1] for name in (*r.outputs, *r.metrics, *r.values)}
    external = {n: i.get("hash") for n, i in original.inputs.items() if n not in produced}
    missing = sorted(n for n in external if n not in _saved(st, external))
    with tempfile.TemporaryDirectory(prefix="nbtrack-reproduce-") as tmp:
        script = Path(tmp) / "reproduce.py"
        export_script(original, script, st)
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "nbtrack.repro.driver", str(script), original.run_id, str(result_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=os.getcwd(),
                              env={**os.environ, **st.child_env()})   # a password stays off the command line
        if proc.returncode != 0 or not result_file.exists():
            raise NbtrackError(f"reproducing run {original.run_id[:8]} failed to start: "
                               f"{(proc.stderr or proc.stdout).strip()[-800:]}")
        new_id = json.loads(result_file.read_text())["run_id"]
    st.sync()
    report = check(original, new_id, store=st)
    for name in missing:
        producers = [r.run_id[:8] for r in chain[:-1] if name in r.outputs]
        detail = (f"could not restore input `{name}`: no tracked run produced it (it came from an untracked "
                  f"cell or from outside the notebook); track the cell that makes it")
        report.causes.insert(0, Cause("input_data", detail, {"name": name, "input": original.inputs[name],
                                                              "produced_by": producers or None}, 0.95))
    return report
