"""Import spool files into the DuckDB file, in one transaction, idempotently.

Run ids are made by the writer, every record carries a sequence number and
every points file a chunk number, so an import that is retried after a
``kill -9`` between COMMIT and deleting the files replaces rows with the same
rows and never duplicates a run. Runs left ``running`` by a process that no
longer exists on this host are marked ``crashed`` here.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import warn
from . import queries
from .migrations import rollback
from .records import RUN_FIELDS, SCHEMAS
from .spool import BLOB_PREFIX, POINTS_PREFIX, RECORD_PREFIX, Spool, parse_name, read_points, read_record

CHILD_TABLES = ("params", "values", "metrics", "inputs", "outputs", "displays")


def process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int | None, started: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is not None:
        now = process_start(pid)
        if now is not None and now != started:
            return False
    return True


def _register(con: duckdb.DuckDBPyConnection, name: str, table: str, rows: list[dict[str, Any]]) -> None:
    con.register(name, pa.Table.from_pylist(rows, schema=SCHEMAS[table]))


def import_spool(con: duckdb.DuckDBPyConnection, spool: Spool) -> int:
    """Import every complete spool file; return the number of run records imported."""
    files = spool.pending()
    blobs: list[Path] = []
    points: list[tuple[str, int, Path]] = []
    latest: dict[str, tuple[int, Path]] = {}
    for path in files:
        try:
            prefix, key, seq = parse_name(path)
        except (ValueError, IndexError):
            continue
        if prefix == BLOB_PREFIX:
            blobs.append(path)
        elif prefix == POINTS_PREFIX:
            points.append((key, seq, path))
        elif prefix == RECORD_PREFIX and seq >= latest.get(key, (-1, path))[0]:
            latest[key] = (seq, path)

    if not files:  # nothing to import: only look for runs whose process died
        _mark_crashed(con)
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        n = _import(con, blobs, points, latest)
        _mark_crashed(con)
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise
    for path in files:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return n


def _import(con, blobs, points, latest) -> int:
    if blobs:
        con.register("nbt_blobs", pa.table({
            "hash": [parse_name(p)[1] for p in blobs],
            "size": [p.stat().st_size for p in blobs],
            "data": pa.array([p.read_bytes() for p in blobs], pa.binary()),
        }))
        con.execute("INSERT INTO artifacts SELECT * FROM nbt_blobs "
                    "WHERE hash NOT IN (SELECT hash FROM artifacts)")
        con.unregister("nbt_blobs")

    tables, done = [], []
    for run_id, chunk, path in points:
        try:
            table = read_points(path)
        except FileNotFoundError:   # imported and removed meanwhile by another process
            continue
        n = table.num_rows
        zeros = pa.array(np.zeros(n, dtype=np.int32))   # dictionary columns: no copy of a string per point
        tables.append(pa.table({"run_id": pa.DictionaryArray.from_arrays(zeros, pa.array([run_id])),
                                "key": table["key"], "step": table["step"], "value": table["value"],
                                "chunk": pa.DictionaryArray.from_arrays(zeros, pa.array([chunk], pa.int32()))}))
        done.append((run_id, chunk))
    if tables:  # one DELETE and one INSERT for every file: each statement is a round trip to a team catalog
        con.register("nbt_points", pa.concat_tables(tables))
        con.register("nbt_chunks", pa.table({"run_id": [r for r, _ in done], "chunk": [c for _, c in done]}))
        con.execute("DELETE FROM metric_history WHERE (run_id, chunk) IN (SELECT (run_id, chunk) FROM nbt_chunks)")
        con.execute("INSERT INTO metric_history (run_id, key, step, value, chunk) "
                    "SELECT run_id, key, step, value, chunk FROM nbt_points")
        con.unregister("nbt_points")
        con.unregister("nbt_chunks")
    touched = sorted({run_id for run_id, _ in done})
    if touched:  # a run's stored curves are recomputed from all its points, whichever chunk arrived
        con.execute("DELETE FROM metric_curves WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [touched])
        con.execute("INSERT INTO metric_curves " + queries.downsample_sql(
            "SELECT run_id, key, step, value FROM metric_history "
            "WHERE run_id IN (SELECT unnest($runs::VARCHAR[]))"), {"runs": touched})

    if not latest:
        return 0
    known = dict(con.execute(
        "SELECT run_id, seq FROM runs WHERE run_id IN (SELECT unnest(?))", [list(latest)]).fetchall())
    records = []
    for run_id, (seq, path) in latest.items():
        if seq > known.get(run_id, -1):
            try:
                record = read_record(path)
                if record["run"]["run_id"] != run_id:
                    raise ValueError("run id does not match the file name")
            except FileNotFoundError:   # imported and removed meanwhile by another process
                continue
            except (OSError, ValueError, KeyError, TypeError) as e:
                _quarantine(path, e)
                continue
            records.append((seq, record))
    if not records:
        return 0

    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("runs", *CHILD_TABLES)}
    sources: dict[str, str] = {}
    envs: dict[str, dict[str, Any]] = {}
    for seq, rec in records:
        run = rec["run"]
        run_id = run["run_id"]
        rows["runs"].append({**{f: run.get(f) for f in RUN_FIELDS}, "seq": seq})
        for table in CHILD_TABLES:
            rows[table].extend({**row, "run_id": run_id} for row in rec.get(table, ()))
        if rec.get("source"):
            sources[rec["source"]["hash"]] = rec["source"]["text"]
        if rec.get("env"):
            envs[rec["env"]["env_id"]] = rec["env"]

    _register(con, "nbt_runs", "runs", rows["runs"])
    replaced = [run_id for _, rec in records if (run_id := rec["run"]["run_id"]) in known]
    if replaced:   # a run's rows are written in one transaction: a run not in `runs` has no rows anywhere
        for table in ("runs", *CHILD_TABLES):
            con.execute(f'DELETE FROM "{table}" WHERE run_id IN (SELECT unnest(?::VARCHAR[]))', [replaced])
    con.execute("INSERT INTO runs BY NAME SELECT * REPLACE ("
                "to_timestamp(started_at) AS started_at, to_timestamp(ended_at) AS ended_at) FROM nbt_runs")
    con.unregister("nbt_runs")
    for table in CHILD_TABLES:
        if rows[table]:
            _register(con, "nbt_child", table, rows[table])
            con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM nbt_child')
            con.unregister("nbt_child")
    if sources:
        con.register("nbt_src", pa.table({"hash": list(sources), "text": list(sources.values())}))
        con.execute("INSERT INTO sources SELECT * FROM nbt_src WHERE hash NOT IN (SELECT hash FROM sources)")
        con.unregister("nbt_src")
    if envs:
        con.register("nbt_env", pa.Table.from_pylist([
            {k: e.get(k) for k in ("env_id", "python", "implementation", "platform", "machine", "packages",
                                   "created_at")} for e in envs.values()]))
        con.execute("INSERT INTO environments BY NAME SELECT * REPLACE (to_timestamp(created_at) AS created_at) "
                    "FROM nbt_env WHERE env_id NOT IN (SELECT env_id FROM environments)")
        con.unregister("nbt_env")
    return len(records)


def _quarantine(path: Path, error: BaseException) -> None:
    """Set an unreadable spool file aside, say so, and go on importing the others."""
    kept = path.with_name(f".unreadable.{path.name}")
    try:
        path.rename(kept)
    except OSError:
        kept = path
    warn(f"skipped an unreadable spool file ({type(error).__name__}: {error}); it is kept as {kept}")


def _mark_crashed(con: duckdb.DuckDBPyConnection) -> None:
    host = socket.gethostname()
    rows = con.execute("SELECT DISTINCT pid, proc_start FROM runs WHERE status = 'running' AND host = ?",
                       [host]).fetchall()
    for pid, started in rows:
        if not process_alive(pid, started):
            con.execute(
                "UPDATE runs SET status = 'crashed', error_type = 'Crashed', error_message = ? "
                "WHERE status = 'running' AND host = ? AND pid = ? AND proc_start IS NOT DISTINCT FROM ?",
                [f"the process that ran it (pid {pid} on {host}) ended before the run finished", host, pid,
                 started])
