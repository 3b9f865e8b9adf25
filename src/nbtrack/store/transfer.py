"""Copy runs between two stores (``nbtrack push`` / ``pull``): every row of a run, its curves, displays,
saved artifacts, source and environment.

Run ids are made by the writer and global, so a copy is keyed by them: a run
the target already holds at the same or a newer record sequence is skipped,
one it holds at an older sequence (pushed while still running) is replaced.
Runs go over in batches, each one transaction on the target (retried on
DuckLake conflicts), so a failure costs one batch, named with its reason.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import NbtrackError, RunNotFoundError
from ..secrets import redact_passwords
from . import edits, keyorder, locality, queries
from .base import Store
from .results import arrow

RUN_TABLES = ("runs", "params", "values", "metrics", "metric_series", "metric_curves", "inputs", "outputs",
              "displays")   # run_edits are copied by edit id, after the runs (copy_runs)
BATCH = 100


@dataclass
class TransferResult:
    """What a push or pull did: run ids copied, already there, replaced by a newer record, failed (with why)."""

    new: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    edits: int = 0   # tags, labels, notes, stars and deletions the target did not have

    def __str__(self) -> str:
        text = (f"{len(self.new)} new, {len(self.updated)} updated, {len(self.present)} already there, "
                f"{len(self.failed)} failed" + (f"; {self.edits} edits" if self.edits else ""))
        for run_id, why in list(self.failed.items())[:10]:
            text += f"\n  failed {run_id[:8]}: {why}"
        if len(self.failed) > 10:
            text += f"\n  ... and {len(self.failed) - 10} more"
        return text


def select_runs(con: duckdb.DuckDBPyConnection, since: str | datetime | None, experiment: str | None,
                where_path: str) -> list[tuple[str, int]]:
    """(run_id, seq) of the runs to copy, oldest first; ``since`` is a date/time or a run id (runs after it)."""
    conds, args = [], []
    if experiment is not None:
        conds.append("experiment = ?")
        args.append(experiment)
    if since is not None:
        conds.append("started_at >= ?")
        args.append(_since(con, since, where_path))
    query = "SELECT run_id, seq FROM runs" + (" WHERE " + " AND ".join(conds) if conds else "")
    return con.execute(query + " ORDER BY started_at, run_id", args).fetchall()


def _since(con: duckdb.DuckDBPyConnection, since: str | datetime, where_path: str) -> Any:
    if isinstance(since, datetime):
        return since
    try:
        return datetime.fromisoformat(since.strip())
    except ValueError:
        pass
    try:
        run_id = queries.resolve_run_id(con, since, where_path)
    except RunNotFoundError:
        raise NbtrackError(f"--since {since!r} is neither a date (2026-11-01 or 2026-11-01T12:00) nor a run id "
                           f"in {where_path}") from None
    return con.execute("SELECT started_at + INTERVAL 1 MICROSECOND FROM runs WHERE run_id = ?",
                       [run_id]).fetchall()[0][0]


def read_batch(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, pa.Table]:
    """Every row of these runs, and the artifacts, sources and environments they point at."""
    ids = {"ids": run_ids}
    sel = "(SELECT unnest($ids::VARCHAR[]))"
    out = {t: arrow(con, f'SELECT * FROM "{t}" t WHERE '
                    + (locality.some("t", "$ids") if t in locality.RUN_ROW_TABLES else f"run_id IN {sel}"), ids)
           for t in RUN_TABLES}
    out["artifacts"] = arrow(con, "SELECT * FROM artifacts WHERE hash IN (SELECT artifact FROM displays "
                             f"WHERE run_id IN {sel} UNION SELECT artifact FROM outputs WHERE run_id IN {sel})", ids)
    out["sources"] = arrow(con, "SELECT * FROM sources WHERE hash IN "
                           f"(SELECT source_hash FROM runs WHERE run_id IN {sel})", ids)
    out["environments"] = arrow(con, "SELECT * FROM environments WHERE env_id IN "
                                f"(SELECT env_id FROM runs WHERE run_id IN {sel})", ids)
    return out


def write_batch(con: duckdb.DuckDBPyConnection, batch: dict[str, pa.Table]) -> None:
    """Replace these runs' rows in the target and add what it lacks of their artifacts, sources, envs.

    Called inside one transaction; distinct() guards against duplicate hashes, which a catalog without
    primary keys (DuckLake) can hold when two writers add the same blob at once."""
    con.register("nbt_ids", batch["runs"].select(["run_id"]))
    ids = batch["runs"].column("run_id").to_pylist()
    us = list(locality.starts(con, ids).values())
    for table in reversed(RUN_TABLES):   # runs last: a child table's rows are found by their run's start (locality.py)
        where = locality.located("t", us, "nbt_ids") if table in locality.RUN_ROW_TABLES else "t.run_id IN (SELECT run_id FROM nbt_ids)"
        con.execute(f'DELETE FROM "{table}" t WHERE {where}')
    keyorder.deleted(con, us)
    for table in RUN_TABLES:
        if batch[table].num_rows:
            con.register("nbt_rows", batch[table])
            con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM nbt_rows')
            keyorder.added(con, table, "SELECT * FROM nbt_rows")
            con.unregister("nbt_rows")
    con.unregister("nbt_ids")
    locality.note_shared(con, locality.starts(con, ids))
    # the rows carry the source's state of each run: the target's own edits may say otherwise
    edits.apply(con, edits.with_edits(con, ids))
    for table, key in (("artifacts", "hash"), ("sources", "hash"), ("environments", "env_id")):
        if batch[table].num_rows:
            con.register("nbt_rows", batch[table])
            con.execute(f'INSERT INTO "{table}" BY NAME SELECT DISTINCT ON ({key}) * FROM nbt_rows '
                        f'WHERE {key} NOT IN (SELECT {key} FROM "{table}")')
            con.unregister("nbt_rows")


def copy_runs(source: Store, target: Store, *, since: str | datetime | None = None, experiment: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> TransferResult:
    """Copy the runs of ``source`` (all, or those since a date/run, of an experiment) into ``target``."""
    result = TransferResult()
    with source.connect() as con:
        wanted = select_runs(con, since, experiment, str(source.path))
    with target.connect() as con:
        have = dict(con.execute("SELECT run_id, max(seq) FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
                                "GROUP BY run_id", [[r for r, _ in wanted]]).fetchall())
    todo = []
    for run_id, seq in wanted:
        if run_id in have and have[run_id] >= seq:
            result.present.append(run_id)
        else:
            todo.append(run_id)
    done = len(result.present)
    if progress:
        progress(done, len(wanted))
    for start in range(0, len(todo), BATCH):
        ids = todo[start:start + BATCH]
        try:
            with source.connect(read_only=True) as con:
                batch = read_batch(con, ids)
            target.write(lambda con: write_batch(con, batch))
        except (duckdb.Error, NbtrackError, OSError) as e:
            why = _reason(e)
            result.failed.update({run_id: why for run_id in ids})
        else:
            for run_id in ids:
                (result.updated if run_id in have else result.new).append(run_id)
        done += len(ids)
        if progress:
            progress(done, len(wanted))
    # edits travel on their own: a run already there may have new ones, and the two stores' edits merge
    copied = [r for r, _ in wanted if r not in result.failed]
    if copied:
        with source.connect(read_only=True) as con:
            rows = edits.read(con, copied)
        if rows.num_rows:
            result.edits = target.write(lambda con: edits.copy(con, rows))
    return result


def _reason(error: BaseException) -> str:
    return redact_passwords(" ".join(str(error).split()))[:300]
