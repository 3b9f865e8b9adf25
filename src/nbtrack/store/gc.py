"""Removing deleted runs for good (``nbtrack gc``): their rows, curves and edits, and the artifacts,
sources and environments no remaining run points at. Runs are deleted softly first (edits.py); only
this removes anything."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from . import keyorder, locality

RUN_TABLES = ("params", "values", "metrics", "metric_series", "metric_curves", "inputs", "outputs", "displays",
              "run_edits", "runs")


@dataclass
class Garbage:
    """What a collection removes (or, in a dry run, would remove)."""

    run_ids: list[str] = field(default_factory=list)
    points: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0


def deleted_before(con: duckdb.DuckDBPyConnection, before: datetime | None) -> list[str]:
    """Runs deleted before ``before`` (``None``: every deleted run), oldest deletion first."""
    return [r[0] for r in con.execute(
        "SELECT run_id FROM runs WHERE deleted_at IS NOT NULL AND (?::TIMESTAMPTZ IS NULL OR deleted_at < ?) "
        "ORDER BY deleted_at, run_id", [before, before]).fetchall()]


_ORPHANS = """
    SELECT hash, size FROM artifacts WHERE hash NOT IN (
        SELECT artifact FROM displays WHERE artifact IS NOT NULL AND run_id NOT IN (SELECT unnest($ids::VARCHAR[]))
        UNION ALL
        SELECT artifact FROM outputs WHERE artifact IS NOT NULL AND run_id NOT IN (SELECT unnest($ids::VARCHAR[])))
"""


def measure(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> Garbage:
    """What removing these runs would take away."""
    where = locality.some("t")
    points = con.execute(f"SELECT coalesce(sum(n), 0) FROM metric_series t WHERE {where}", {"runs": run_ids}).fetchone()[0]
    n, size = con.execute(f"SELECT count(*), coalesce(sum(size), 0) FROM ({_ORPHANS})", {"ids": run_ids}).fetchone()
    return Garbage(list(run_ids), int(points), int(n), int(size))


def remove(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> Garbage:
    """Remove these runs and what only they used; call inside one transaction."""
    found = measure(con, run_ids)
    args: dict[str, Any] = {"ids": run_ids}
    con.execute(f"DELETE FROM artifacts WHERE hash IN (SELECT hash FROM ({_ORPHANS}))", args)
    keyorder.deleted(con, list(locality.starts(con, run_ids).values()))   # while their runs say where
    for table in RUN_TABLES:   # runs last: a child table's rows are found by their run's start (locality.py)
        where = locality.some("t", "$ids") if table in locality.RUN_ROW_TABLES else "t.run_id IN (SELECT unnest($ids::VARCHAR[]))"
        con.execute(f'DELETE FROM "{table}" t WHERE {where}', args)
    con.execute("DELETE FROM sources WHERE hash NOT IN (SELECT source_hash FROM runs WHERE source_hash IS NOT NULL)")
    con.execute("DELETE FROM environments WHERE env_id NOT IN (SELECT env_id FROM runs WHERE env_id IS NOT NULL)")
    return found


def report(found: Garbage, where: str, dry_run: bool, before: int | None, after: int | None) -> list[str]:
    """What a collection did, or would do, in lines that say how much and where."""
    n = len(found.run_ids)
    if not n:
        return [f"no deleted runs to remove in {where}"]
    verb = "would remove" if dry_run else "removed"
    lines = [f"{verb} {n} deleted run{'s' if n != 1 else ''} from {where}: {found.points:,} curve "
             f"point{'s' if found.points != 1 else ''}, "
             f"{found.artifacts} artifact{'s' if found.artifacts != 1 else ''} no other run uses "
             f"({_bytes(found.artifact_bytes)})"]
    if before is not None and after is not None:
        lines.append(f"{where}: {_bytes(before)} -> {_bytes(after)}, {_bytes(max(before - after, 0))} freed")
    return lines


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n:,} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:,.1f} {unit}"
