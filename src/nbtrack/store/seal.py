"""The boundary: a run record is redacted and encoded here, right before the spool writes it.

The recorder builds a record out of plain Python values (params and values as
they are, summaries as dicts, displays as MIME bundles, stdout as the kept
head and tail); ``seal`` turns it into what the importer reads, and it is the
only way a record reaches a file. So there is one redaction pass over every
text and every JSON or MIME payload, with one rule set (secrets.py),
and no field can bypass it: a field added later goes through ``_walk`` unless
it is given a rule of its own below. Redaction happens before anything is cut
to size, so no kept head or tail holds half a secret.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .. import secrets
from . import codec
from .records import BINARY_MIMES, encode_value

if TYPE_CHECKING:   # pyarrow is imported where a table is made: `import nbtrack` stays light
    import pyarrow as pa

DISPLAY_ITEM_CAP = 2 << 20     # one display item; text beyond it is cut, anything else recorded by size only
DISPLAY_RUN_CAP = 16 << 20     # all of a run's displays together
# displays kept as their bytes: scrubbing base64 or binary data for token shapes would corrupt images
# run fields that are ids, hashes or numbers: nothing to redact in them
_OPAQUE = {"run_id", "source_hash", "env_id", "session_id", "started_at", "ended_at", "duration_s", "cpu_s",
           "peak_rss_mb", "execution_count", "pid", "proc_start", "git_dirty", "repeat_index", "seq"}
_CODE_FIELDS = {"source", "definition"}


_SHORT = 256


@functools.lru_cache(maxsize=4096)
def _scrub_short(value: str, known: frozenset[str]) -> tuple[str, bool]:
    """Names, keys, statuses, hosts: the same short texts recur in every record of a process, and each
    is scrubbed once per set of known secrets (most of a short script run's sealing time before)."""
    out, changed = secrets.scrub_text(value, known)
    return codec.text_safe(out), changed


class Sealer:
    """Applies the rules and remembers which fields it changed (``runs.redacted``)."""

    def __init__(self, known: Iterable[str], redacted: Iterable[str] = ()) -> None:
        self.known = frozenset(k for k in known if k)
        self.redacted: set[str] = set(redacted)

    def text(self, value: str, field: str) -> str:
        if len(value) <= _SHORT:
            out, changed = _scrub_short(value, self.known)
        else:
            out, changed = secrets.scrub_text(value, self.known)
            out = codec.text_safe(out)
        if changed:
            self.redacted.add(field)
        return out

    def code(self, value: str, field: str) -> str:
        out, changed = secrets.scrub_code(value, self.known)
        if changed:
            self.redacted.add(field)
        return codec.text_safe(out)

    def value(self, value: Any, name: str, field: str) -> Any:
        out, changed = secrets.redact_value(value, self.known, name)
        if changed:
            self.redacted.add(field)
        return out

    def walk(self, value: Any, field: str, depth: int = 0) -> Any:
        """Any JSON-like tree: every string through the text rules (code rules for code), every value
        through the name rules of the key it sits under."""
        if isinstance(value, str):
            return self.text(value, field)
        if depth >= secrets.MAX_DEPTH:
            return self.value(value, "", field)   # kept as its repr, scrubbed as text
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = self.text(k, field) if isinstance(k, str) else k
                if isinstance(k, str) and secrets.is_secret_name(k) and v is not None and not isinstance(v, dict):
                    self.redacted.add(field)
                    out[key] = secrets.REDACTED
                elif k in _CODE_FIELDS and isinstance(v, str):
                    out[key] = self.code(v, field)
                else:
                    out[key] = self.walk(v, field, depth + 1)
            return out
        if isinstance(value, (list, tuple)):
            return [self.walk(v, field, depth + 1) for v in value]
        return self.value(value, "", field)


def _display(sealer: Sealer, kind: str, mime: str, data: Any) -> tuple[bytes, bool]:
    """(bytes to store, cut) for one MIME payload, redacted before it is cut."""
    field = f"displays.{kind}"
    if isinstance(data, (dict, list)):
        text = json.dumps(codec.for_display(sealer.walk(data, field)), ensure_ascii=False)
    elif mime.startswith(BINARY_MIMES):
        if isinstance(data, (bytes, bytearray)):
            return bytes(data), False
        # a kernel's display bundle carries images as base64 text (JSON has no bytes): store the image
        try:
            return base64.b64decode("".join(str(data).split()), validate=True), False
        except ValueError:
            return str(data).encode("utf-8", "replace"), False
    elif isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(data), False
        text = sealer.text(text, field)
    else:
        text = sealer.text(str(data), field)
    raw = text.encode("utf-8", "replace")
    if len(raw) > DISPLAY_ITEM_CAP and mime.startswith("text/"):
        return raw[:DISPLAY_ITEM_CAP], True
    return raw, False


def _stream(sealer: Sealer, kind: str, parts: dict[str, Any]) -> tuple[str, bool]:
    """The kept text of stdout/stderr: its first and last ``half`` characters, scrubbed with the margins
    around them before they are cut (streams.py)."""
    field = f"displays.{kind}"
    head, tail, total, half = parts["head"], parts["tail"], parts["total"], parts["half"]
    if total <= len(head) + len(tail):   # nothing was dropped: scrubbed as one text
        text = sealer.text(head + tail, field)
        if len(text) <= 2 * half:
            return text, False
        head, tail = text[:half], text[-half:]
    else:
        head, tail = sealer.text(head, field)[:half], sealer.text(tail, field)[-half:]
    return f"{head}\n... [{max(total - 2 * half, 0)} characters not recorded] ...\n{tail}", True


def _displays(sealer: Sealer, items: list[tuple[str, dict[str, Any]]], streams: dict[str, dict[str, Any]],
              blob: Callable[[str, bytes], None]) -> list[dict[str, Any]]:
    payloads: list[tuple[int, str, str, bytes, bool]] = []   # (item, kind, mime, bytes, cut), in display order
    for seq, (kind, bundle) in enumerate(items):
        payloads += [(seq, kind, mime, *_display(sealer, kind, mime, data)) for mime, data in bundle.items()]
    seq = len(items)
    for kind, parts in streams.items():
        if parts and parts.get("total"):
            text, cut = _stream(sealer, kind, parts)
            payloads.append((seq, kind, "text/plain", text.encode("utf-8", "replace"), cut))
            seq += 1
    rows, budget = [], DISPLAY_RUN_CAP
    for seq, kind, mime, raw, truncated in payloads:
        size, digest = len(raw), None
        if size <= min(DISPLAY_ITEM_CAP, budget):
            budget -= size
            digest = hashlib.sha256(raw).hexdigest()
            blob(digest, raw)
        else:
            truncated = True
        rows.append({"seq": seq, "kind": kind, "mime": sealer.text(mime, f"displays.{kind}"), "artifact": digest, "size": size,
                     "truncated": truncated})
    return rows


def _fingerprints(sealer: Sealer, rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    out = []
    for fp in rows:
        name = fp["name"]
        field = f"{prefix}.{sealer.text(str(name), prefix)}"
        row = {k: v for k, v in fp.items() if k not in ("summary", "shape")}
        if secrets.is_secret_name(name):
            sealer.redacted.add(field)
            row.update(hash=None, hash_method="redacted", length=None, dtype=None, artifact=None,
                       artifact_format=None)
            summary: Any = {}
            shape = None
        else:
            summary, shape = sealer.walk(fp.get("summary") or {}, field), fp.get("shape")
        for key in ("name", "type", "dtype", "change", "hash_method"):
            if isinstance(row.get(key), str):
                row[key] = sealer.text(row[key], field)
        row["summary"] = codec.dumps(summary)
        row["shape"] = None if shape is None else codec.dumps(list(shape))
        out.append(row)
    return out


def _key(sealer: Sealer, key: Any, prefix: str) -> str:
    return sealer.text(key if isinstance(key, str) else str(key), prefix)


def _texts(value: Any) -> list[str]:
    """Every string in a JSON-like tree, to ``secrets.MAX_DEPTH`` levels (a loop, not nested generators:
    this runs over every record)."""
    out: list[str] = []
    stack = [(value, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif depth >= secrets.MAX_DEPTH:
            continue
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str):
                    out.append(k)
                elif isinstance(k, tuple):
                    stack.append((k, depth + 1))
                if isinstance(v, str):
                    out.append(v)
                elif v is not None and not isinstance(v, (int, float)):
                    stack.append((v, depth + 1))
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend((v, depth + 1) for v in value if v is not None and not isinstance(v, (int, float)))
    return out


# The environment record (package versions: kilobytes of text) is the same for every run of a process
# until a package is imported, and its env_id says so: it is scanned and sealed once per env_id and set
# of known secrets, not once per record (most of a script run's sealing time before).
_ENV_PASSWORDS: dict[str, frozenset[str]] = {}
_ENV_SEALED: dict[tuple[str, frozenset[str]], tuple[dict[str, Any], bool]] = {}
_ENV_CACHE_SIZE = 32


def _cached(cache: dict[Any, Any], key: Any, make: Callable[[], Any]) -> Any:
    hit = cache.get(key)
    if hit is None:
        if len(cache) >= _ENV_CACHE_SIZE:
            cache.clear()
        hit = cache[key] = make()
    return hit


def _passwords(record: dict[str, Any]) -> set[str]:
    """Passwords of connection strings anywhere in the record: scrubbed everywhere else in it too."""
    found: set[str] = set()
    for key, value in record.items():
        env_id = value.get("env_id") if key == "env" and isinstance(value, dict) else None
        if isinstance(env_id, str):
            found |= _cached(_ENV_PASSWORDS, env_id,
                             lambda: frozenset(p for t in _texts(value) for p in secrets.passwords_in(t)))
            continue
        for text in _texts(value):
            found |= secrets.passwords_in(text)
    return found


def _seal_env(sealer: Sealer, env: dict[str, Any]) -> dict[str, Any]:
    env_id = env.get("env_id")
    if not isinstance(env_id, str):
        return sealer.walk(env, "env")

    def make() -> tuple[dict[str, Any], bool]:
        own = Sealer(sealer.known)
        return own.walk(env, "env"), bool(own.redacted)

    sealed, redacted = _cached(_ENV_SEALED, (env_id, sealer.known), make)
    if redacted:
        sealer.redacted.add("env")
    return dict(sealed)


def seal_edits(edits: list[dict[str, Any]], known: Iterable[str]) -> list[dict[str, Any]]:
    """Edits of runs (edits.py) as they are written: a tag, label or note is text like any other, and a
    token pasted into a note is scrubbed as it would be from a cell's output."""
    sealer = Sealer(known)
    out = []
    for edit in edits:
        edit = dict(edit)
        for key in ("tag", "user", "host"):
            if isinstance(edit.get(key), str):
                edit[key] = sealer.text(edit[key], key)
        if isinstance(edit.get("value"), str):
            edit["value"] = sealer.text(edit["value"], edit["field"])
        out.append(edit)
    return out


def seal(record: dict[str, Any], known: Iterable[str], blob: Callable[[str, bytes], None]) -> dict[str, Any]:
    """The record as it is written: every text redacted, every value encoded; display payloads are
    handed to ``blob(digest, data)``."""
    raw_run = record["run"]
    sealer = Sealer(set(known) | _passwords(record), raw_run.get("redacted") or ())
    run: dict[str, Any] = {}
    for key, value in raw_run.items():
        if key in ("redacted", "rng", "provenance"):
            continue
        if key in _OPAQUE or value is None:
            run[key] = value
        elif key == "tags":
            run[key] = [sealer.text(str(t), "tags") for t in value]
        elif isinstance(value, str):
            run[key] = sealer.text(value, key)
        else:
            run[key] = sealer.walk(value, key)
    for key in ("rng", "provenance"):
        value = raw_run.get(key)
        run[key] = codec.dumps(sealer.walk(value, key)) if value else None
    params = []
    for row in record.get("params", ()):
        key = _key(sealer, row["key"], "params")   # a field named in runs.redacted is itself redacted first
        params.append({"key": key, "kind": row["kind"],
                       **encode_value(sealer.value(row["value"], str(row["key"]), f"params.{key}"))})
    values = []
    for row in record.get("values", ()):
        key = _key(sealer, row["key"], "values")
        values.append({"key": key, **encode_value(sealer.value(row["value"], str(row["key"]), f"values.{key}"))})
    metrics = []
    for row in record.get("metrics", ()):
        key = _key(sealer, row["key"], "metrics")
        if secrets.is_secret_name(str(row["key"])):   # a number under a secret name (a PIN) is not kept
            sealer.redacted.add(f"metrics.{key}")
            continue
        metrics.append({**row, "key": key})
    source = record.get("source")
    if source is not None:
        text = sealer.code(source, "source")
        source = {"hash": hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest(), "text": text}
        run["source_hash"] = source["hash"]
    env = record.get("env")
    sealed = {
        "run": run, "params": params, "values": values, "metrics": metrics,
        "inputs": _fingerprints(sealer, record.get("inputs", ()), "inputs"),
        "outputs": _fingerprints(sealer, record.get("outputs", ()), "outputs"),
        "displays": _displays(sealer, record.get("displays", ()), record.get("streams") or {}, blob),
        "source": source, "env": _seal_env(sealer, env) if env else env,
    }
    if record.get("points"):
        sealed["points"] = _points(sealer, record["points"])
    run["redacted"] = sorted(codec.text_safe(f) for f in sealer.redacted)
    return sealed


def seal_keys(table: pa.Table, known: Iterable[str] = ()) -> pa.Table:
    """A chunk of logged points with its keys through the text rules; points under a secret name
    (``nbtrack.log(pin=...)``) are dropped, as metrics under one are."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column("key").combine_chunks()
    names = column.dictionary.to_pylist()
    sealer = Sealer(known)
    sealed = [sealer.text(k, "metrics") for k in names]
    secret = [i for i, k in enumerate(names) if secrets.is_secret_name(k)]
    if sealed == names and not secret:
        return table
    table = table.set_column(0, "key", pa.DictionaryArray.from_arrays(column.indices, pa.array(sealed, pa.string())))
    if secret:
        table = table.filter(pc.invert(pc.is_in(column.indices, value_set=pa.array(secret, column.indices.type))))
    return table


def _points(sealer: Sealer, points: dict[str, Any]) -> dict[str, Any]:
    """A run's last points carried in its final record (recorder/run.py): the same rules as ``seal_keys``,
    so points under a secret name are dropped, key and all."""
    names = points["keys"]
    secret = {i for i, k in enumerate(names) if secrets.is_secret_name(k)}
    if not secret:
        return {**points, "keys": [sealer.text(k, "metrics") for k in names]}
    sealer.redacted.update(f"metrics.{sealer.text(names[i], 'metrics')}" for i in secret)
    kept = [i for i in range(len(names)) if i not in secret]
    new_index = {old: new for new, old in enumerate(kept)}
    rows = [j for j, i in enumerate(points["key"]) if i not in secret]
    return {"chunk": points["chunk"], "keys": [sealer.text(names[i], "metrics") for i in kept],
            "key": [new_index[points["key"][j]] for j in rows], "step": [points["step"][j] for j in rows],
            "value": [points["value"][j] for j in rows]}
