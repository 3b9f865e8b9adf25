"""Tidy runs after the fact: tag, untag, rename, note, star, delete and restore.

Each call writes its edits to the spool in one file (store/edits.py says how they are stored and
merged), so it is safe with other kernels and the CLI editing at once, and returns how many runs it
changed: an edit that would change nothing (a tag the run has) is not written.
"""
from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable
from typing import Any

from .api import Run, resolve_store
from .errors import NbtrackError, RunNotFoundError
from .recorder import environment
from .recorder.session import session
from .store import Store, edits, queries

RunsArg = Any   # a run id or prefix, a where filter, a Run, a DataFrame of runs, or a list of these
_FILTER = re.compile(r"[\s=<>!~()']")   # a run id or prefix has none of these; a filter has some


def tag(runs: RunsArg, *tags: str, where: str | None = None, store: str | os.PathLike[str] | Store | None = None,
        dry_run: bool = False) -> int:
    """Add ``tags`` to the runs; return how many runs changed."""
    names = _tags(tags, "tag")
    return _edit(runs, where, store, dry_run, lambda s: [("tag", t, True) for t in names if t not in s["tags"]])


def untag(runs: RunsArg, *tags: str, where: str | None = None, store: str | os.PathLike[str] | Store | None = None,
          dry_run: bool = False) -> int:
    """Remove ``tags`` from the runs (their recorded tags too); return how many runs changed."""
    names = _tags(tags, "untag")
    return _edit(runs, where, store, dry_run, lambda s: [("tag", t, False) for t in names if t in s["tags"]])


def rename(run: RunsArg, label: str | None, *, store: str | os.PathLike[str] | Store | None = None,
           dry_run: bool = False) -> int:
    """Give one run a label (shown instead of its name; the name, which groups a cell's runs, stays).
    ``None`` removes the label."""
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise NbtrackError(f"a label is non-empty text, not {label!r}; rename(run, None) removes it")
    label = label.strip() if label is not None else None
    _text_limit(label, "label")
    return _edit(run, None, store, dry_run, lambda s: [("label", None, label)] if s["label"] != label else [],
                 one="rename")


def note(run: RunsArg, markdown: str | None, *, store: str | os.PathLike[str] | Store | None = None,
         dry_run: bool = False) -> int:
    """Set one run's note (Markdown, shown as text); ``None`` or ``""`` removes it."""
    if markdown is not None and not isinstance(markdown, str):
        raise NbtrackError(f"a note is text (Markdown), not {type(markdown).__name__}")
    markdown = markdown or None
    _text_limit(markdown, "note")
    return _edit(run, None, store, dry_run, lambda s: [("note", None, markdown)] if s["note"] != markdown else [],
                 one="note")


def star(runs: RunsArg = None, on: bool = True, *, where: str | None = None,
         store: str | os.PathLike[str] | Store | None = None, dry_run: bool = False) -> int:
    """Star the runs (``on=False``: unstar them); return how many changed."""
    on = bool(on)
    return _edit(runs, where, store, dry_run, lambda s: [("starred", None, on)] if s["starred"] != on else [])


def delete(runs: RunsArg = None, *, where: str | None = None, store: str | os.PathLike[str] | Store | None = None,
           dry_run: bool = False) -> int:
    """Delete the runs, softly: they leave ``runs()``, the CLI, panels and checks, and come back with
    ``restore``; ``nbtrack gc`` removes them for good. Returns how many runs were deleted."""
    return _edit(runs, where, store, dry_run, lambda s: [("deleted", None, True)] if not s["deleted"] else [])


def restore(runs: RunsArg = None, *, where: str | None = None, store: str | os.PathLike[str] | Store | None = None,
            dry_run: bool = False) -> int:
    """Bring deleted runs back (a ``where`` filter here looks at deleted runs); return how many."""
    return _edit(runs, where, store, dry_run, lambda s: [("deleted", None, False)] if s["deleted"] else [],
                 deleted=True)


def _tags(tags: Iterable[Any], verb: str) -> list[str]:
    names = []
    for t in tags:
        if not isinstance(t, str) or not t.strip():
            raise NbtrackError(f"a tag is non-empty text, not {t!r}: {verb}(runs, 'baseline', 'v2')")
        names.append(t.strip())
    if not names:
        raise NbtrackError(f"name at least one tag: {verb}(runs, 'baseline')")
    return list(dict.fromkeys(names))


def _text_limit(text: str | None, what: str) -> None:
    if text is not None and len(text) > edits.MAX_TEXT:
        raise NbtrackError(f"a {what} is at most {edits.MAX_TEXT:,} characters (this one has {len(text):,}); "
                           "keep long text in a file and link to it")


def _refs(runs: RunsArg, where: str | None) -> tuple[list[str], list[str]]:
    """(run ids or prefixes, where filters) from anything compare() accepts."""
    ids: list[str] = []
    filters = [where] if where else []
    items = runs if isinstance(runs, (list, tuple, set)) else [] if runs is None else [runs]
    if hasattr(runs, "columns") and hasattr(runs, "__getitem__"):   # a DataFrame of runs
        if "run_id" not in runs.columns:
            raise NbtrackError("a DataFrame of runs needs a run_id column, as nbtrack.runs() returns")
        items = [str(r) for r in runs["run_id"]]
    for item in items:
        if isinstance(item, Run):
            ids.append(item.run_id)
        elif isinstance(item, str) and item.strip() and not _FILTER.search(item.strip()):
            ids.append(item.strip())
        elif isinstance(item, str) and item.strip() and len(items) == 1:
            filters.append(item)   # "metrics.acc > 0.9": a filter, as runs(where=...) takes
        else:
            raise NbtrackError(f"{item!r:.60} is not a run: give run ids or prefixes, a Run, a DataFrame of "
                               "runs, or a filter such as where=\"metrics.acc > 0.9\"")
    if not ids and not filters:
        raise NbtrackError("name the runs to edit: run ids, a DataFrame of runs, or where=\"...\" "
                           "(nbtrack never edits every run by default)")
    return ids, filters


def _edit(runs: RunsArg, where: str | None, store: Any, dry_run: bool, plan: Any, one: str | None = None,
          deleted: bool = False) -> int:
    ids, filters = _refs(runs, where)
    st = resolve_store(store)
    session.syncer.flush()
    if not st.exists():
        raise RunNotFoundError(f"there is no store at {st.path} yet: no run to edit")
    with st.connect() as con:
        full = [queries.resolve_run_id(con, ref, str(st.path)) for ref in ids]
        for text in filters:
            full += edits.matching(con, text, deleted)
        full = list(dict.fromkeys(full))
        if one and len(full) != 1:
            raise NbtrackError(f"{one} takes one run; {len(full)} match" + ("" if full else ": check the run id"))
        states = edits.states(con, full)
    at, user, host = edits.now(), environment.USER, environment.HOST
    call = uuid.uuid4().hex[:24]   # one call's edits share a time: their ids keep them in the order made
    changes = [(run_id, *change) for run_id in full for change in plan(states[run_id])]
    rows = [{"edit_id": f"{call}{i:08x}", "run_id": run_id, "at": at, "user": user, "host": host,
             "field": field, "tag": tag_name, "value": value}
            for i, (run_id, field, tag_name, value) in enumerate(changes)]
    if rows and not dry_run:
        st.spool.write_edits(rows, environment.environ_secrets())
        session.forget(r["run_id"] for r in rows if r["field"] == "deleted" and r["value"])
        st.sync(blocking=False)   # imported now if the store is free; else by the next reader, as runs are
    return len({r["run_id"] for r in rows})
