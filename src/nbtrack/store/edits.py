"""Edits of recorded runs: tags, labels, notes, stars and (soft) deletion.

An edit is a row of ``run_edits`` with who made it and when; it travels like a run (a spool file,
imported under the store's lock, copied by push and pull), so several kernels and the CLI can edit at
once and lose nothing. A run's current state is kept in its ``runs`` row, recomputed from all its
edits whenever one arrives (or the run's own record is imported again): per field, and per tag, the
edit with the latest time wins, ties broken by edit id, whatever order edits arrive in.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import duckdb

from .filters import compile_filter
from .results import arrow
from .validate import LATEST_TIME, BadRecord

FIELDS = ("tag", "label", "note", "starred", "deleted")
MAX_TEXT = 100_000   # a note longer than this is cut where it is made (curate.py), and refused here


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> Iterator[None]:
    """An Arrow table visible to SQL as ``name`` for the block."""
    con.register(name, table)
    try:
        yield
    finally:
        con.unregister(name)


def check_edits(record: Any) -> list[dict[str, Any]]:
    """The edits of one spool file, or BadRecord naming what is wrong."""
    if not isinstance(record, dict) or not isinstance(record.get("edits"), list):
        raise BadRecord("not an edits record (no 'edits' list)")
    for edit in record["edits"]:
        if not isinstance(edit, dict):
            raise BadRecord("an edit is not an object")
        for key in ("edit_id", "run_id", "field"):
            if not isinstance(edit.get(key), str) or not edit[key]:
                raise BadRecord(f"an edit has no {key}")
        if edit["field"] not in FIELDS:
            raise BadRecord(f"an edit of an unknown field {edit['field']!r:.40}")
        at = edit.get("at")
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not 0 <= at <= LATEST_TIME:
            raise BadRecord(f"an edit's time is not a time ({at!r:.40})")
        for key in ("user", "host", "tag"):
            if edit.get(key) is not None and not isinstance(edit[key], str):
                raise BadRecord(f"an edit's {key} is not text")
        if edit["field"] == "tag" and not edit.get("tag"):
            raise BadRecord("a tag edit names no tag")
        value = edit.get("value")
        if edit["field"] in ("tag", "starred", "deleted"):
            if not isinstance(value, bool):
                raise BadRecord(f"a {edit['field']} edit's value is not true or false")
        elif value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
            raise BadRecord(f"a {edit['field']} edit's value is not text (or is over {MAX_TEXT:,} characters)")
    return record["edits"]


def insert(con: duckdb.DuckDBPyConnection, edits: list[dict[str, Any]]) -> list[str]:
    """Add edits not already in the store (an edit id is stored once: a re-import or a second pull
    changes nothing); return the runs whose state they change."""
    import pyarrow as pa

    if not edits:
        return []
    table = pa.table({
        "edit_id": [e["edit_id"] for e in edits], "run_id": [e["run_id"] for e in edits],
        "edited_at": pa.array([e["at"] for e in edits], pa.float64()),
        "user": [e.get("user") for e in edits], "host": [e.get("host") for e in edits],
        "field": [e["field"] for e in edits], "tag": [e.get("tag") for e in edits],
        "value": [json.dumps(e.get("value")) for e in edits]})
    with _registered(con, "nbt_edits", table):
        con.execute('INSERT INTO run_edits BY NAME SELECT * REPLACE (to_timestamp(edited_at) AS edited_at) FROM '
                    "(SELECT DISTINCT ON (edit_id) * FROM nbt_edits) WHERE edit_id NOT IN (SELECT edit_id FROM run_edits)")
    return sorted({e["run_id"] for e in edits})


def copy(con: duckdb.DuckDBPyConnection, rows: Any) -> int:
    """Add edits read from another store (an Arrow table of ``run_edits``) that this one lacks, and bring
    the state of their runs up to date; return how many were new. Both stores' edits then merge by time."""
    if rows is None or not rows.num_rows:
        return 0
    with _registered(con, "nbt_edits", rows):
        added = con.execute("INSERT INTO run_edits BY NAME SELECT DISTINCT ON (edit_id) * FROM nbt_edits "
                            "WHERE edit_id NOT IN (SELECT edit_id FROM run_edits)").fetchone()[0]
    if added:
        apply(con, sorted(set(rows.column("run_id").to_pylist())))
    return int(added)


def with_edits(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[str]:
    """Those of ``run_ids`` that have edits (their state must be recomputed when their record is replaced)."""
    if not run_ids:
        return []
    return [r[0] for r in con.execute("SELECT DISTINCT run_id FROM run_edits WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                                      [run_ids]).fetchall()]


def apply(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> None:
    """Recompute the current state (tags, label, note, starred, deleted_at) of these runs from their edits."""
    import pyarrow as pa

    if not run_ids:
        return
    base = dict(con.execute("SELECT run_id, recorded_tags FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                            [run_ids]).fetchall())
    rows = con.execute("SELECT run_id, field, tag, value, epoch(edited_at) FROM run_edits "
                       "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY edited_at, edit_id", [run_ids]).fetchall()
    state: dict[str, dict[str, Any]] = {
        r: {"run_id": r, "tags": list(t or []), "label": None, "note": None, "starred": None, "deleted_at": None}
        for r, t in base.items()}
    for run_id, field, tag, value, at in rows:   # in time order: the last edit of each field (and tag) wins
        s = state.get(run_id)
        if s is None:   # an edit of a run not (yet) in this store: applied when the run arrives
            continue
        value = json.loads(value)
        if field == "tag":
            if value and tag not in s["tags"]:
                s["tags"].append(tag)
            elif not value and tag in s["tags"]:
                s["tags"].remove(tag)
        elif field == "deleted":
            s["deleted_at"] = at if value else None
        else:
            s[field] = value
    if not state:
        return
    table = pa.Table.from_pylist(list(state.values()), schema=pa.schema([
        ("run_id", pa.string()), ("tags", pa.list_(pa.string())), ("label", pa.string()), ("note", pa.string()),
        ("starred", pa.bool_()), ("deleted_at", pa.float64())]))
    with _registered(con, "nbt_state", table):
        con.execute("UPDATE runs SET tags = s.tags, label = s.label, note = s.note, starred = s.starred, "
                    "deleted_at = to_timestamp(s.deleted_at) FROM nbt_state s WHERE runs.run_id = s.run_id")


def events(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """A run's edits, oldest first: ``{at, user, host, field, tag, value}``."""
    rows = con.execute('SELECT edited_at, "user", host, field, tag, value FROM run_edits WHERE run_id = ? '
                       "ORDER BY edited_at, edit_id", [run_id]).fetchall()
    return [{"at": at, "user": user, "host": host, "field": field, "tag": tag, "value": json.loads(value)}
            for at, user, host, field, tag, value in rows]


def read(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> Any:
    """The edits of these runs as an Arrow table (push and pull carry them)."""
    return arrow(con, "SELECT * FROM run_edits WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids])


def states(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The current state of these runs: ``{tags, label, note, starred, deleted}``, what an edit changes."""
    rows = con.execute("SELECT run_id, tags, label, note, coalesce(starred, false), deleted_at IS NOT NULL FROM runs "
                       "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids]).fetchall()
    return {r: {"tags": list(t or []), "label": label, "note": note, "starred": starred, "deleted": deleted}
            for r, t, label, note, starred, deleted in rows}


def matching(con: duckdb.DuckDBPyConnection, where: str, deleted: bool = False) -> list[str]:
    """Run ids a filter selects, oldest first: among live runs, or among deleted ones (``deleted``)."""
    sql, params = compile_filter(where, con)
    alive = "r.deleted_at IS NOT NULL" if deleted else "r.deleted_at IS NULL"
    return [r[0] for r in con.execute(f"SELECT r.run_id FROM runs r WHERE {alive} AND ({sql}) "
                                      "ORDER BY r.started_at, r.run_id", params).fetchall()]


def now() -> float:
    return datetime.now(timezone.utc).timestamp()
