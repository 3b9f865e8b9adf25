"""Import spool files into the DuckDB file, in one transaction, idempotently.

Run ids are made by the writer, every record carries a sequence number and
every points file a chunk number, so an import that is retried after a
``kill -9`` between COMMIT and deleting the files replaces rows with the same
rows and never duplicates a run. One bad item never blocks the rest: it is set
aside with a line saying why. Runs left ``running`` by a process that no
longer exists on this host are marked ``crashed`` here.
"""
from __future__ import annotations

import hashlib
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import warn
from . import edits, keyorder, locality
from .points import adopt, insert_points, locate
from .edits import check_edits
from .transaction import transaction
from .lock import process_alive, session_alive
from . import records
from .records import RUN_FIELDS
from .validate import BadRecord, check_record
from .spool import BLOB_PREFIX, EDITS_PREFIX, POINTS_PREFIX, Spool, parse_name, read_points, read_record

if TYPE_CHECKING:   # pyarrow is imported where a table is made: `import nbtrack` stays light
    import pyarrow as pa

CHILD_TABLES = ("params", "values", "metrics", "inputs", "outputs", "displays")


# errors of a record's content, as DuckDB reports them; anything else (I/O, permissions, a conflict on a
# team store) is the store's and is raised
_DATA_ERRORS = (duckdb.ConstraintException, duckdb.ConversionException, duckdb.InvalidInputException,
                duckdb.OutOfRangeException, duckdb.TypeMismatchException, duckdb.BinderException)


def _build_errors() -> tuple[type[BaseException], ...]:
    """Errors of building a table from a record's values. A function so that pyarrow is imported by the
    first import of a run, not by `import nbtrack` (an except clause evaluates it only when needed)."""
    import pyarrow as pa

    return (pa.ArrowException, TypeError, ValueError, OverflowError, KeyError, AttributeError, UnicodeError)

@dataclass
class _Item:
    path: Path
    run_id: str
    seq: int
    record: dict[str, Any] | None = None
    replaces: bool = False   # the store holds an older record of this run
    older: list["_Item"] | None = None   # the run's older records not yet read, newest first


def import_spool(con: duckdb.DuckDBPyConnection, spool: Spool) -> int:
    """Import every complete spool file; return the number of run records imported.

    A spool item that cannot be read or imported (an odd name, a truncated file, a record with wrong
    types) is set aside with one line naming it and why, and everything else is imported."""
    files = spool.pending()
    blobs: list[Path] = []
    points: list[tuple[str, int, Path]] = []
    records: dict[str, list[_Item]] = {}   # run id -> its record files, newest first
    done: list[Path] = []
    changes: list[dict[str, Any]] = []   # edits of runs: tags, labels, notes, stars, deletions
    for path in files:
        name = parse_name(path) if path.is_file() else None
        if name is None:
            quarantine(path, "not a spool file (its name or kind is not one nbtrack writes)")
            continue
        prefix, key, seq = name
        if prefix == BLOB_PREFIX:
            blobs.append(path)
        elif prefix == POINTS_PREFIX:
            points.append((key, seq, path))
        elif prefix == EDITS_PREFIX:
            changes += _read_edits(path)
            done.append(path)
        else:
            done.append(path)   # superseded records are removed with the rest
            records.setdefault(key, []).append(_Item(path, key, seq))
    if not blobs and not points and not records and not changes:
        _mark_crashed(con, spool)
        for path in done:
            _remove(path)
        return 0
    blob_table = _read_blobs(blobs)
    point_table, chunks = _read_points(points)
    for candidates in records.values():
        candidates.sort(key=lambda item: item.seq, reverse=True)
    items = _read_records(con, records)
    try:
        batch = _Batch(items, changes)
    except _build_errors():   # some record holds a value of the wrong type: find it, set it aside
        items = [good for item in items if (good := _builds(item))]
        batch = _Batch(items, changes)
    try:
        n = _transaction(con, lambda: _import(con, blob_table, point_table, chunks, batch) + _mark_crashed(con, spool))
    except _DATA_ERRORS:
        # a record that passed every check was still refused: find it by importing one record at a time
        n = _transaction(con, lambda: _import(con, blob_table, point_table, chunks, _Batch([], changes)))
        for item in items:
            try:
                n += _transaction(con, lambda: _import(con, None, None, [], _Batch([item])))
            except _DATA_ERRORS as e:
                quarantine(item.path, f"DuckDB refused it: {_first_line(e)}")
        _transaction(con, lambda: _mark_crashed(con, spool))
    for path in (*blobs, *(p for _, _, p in points), *done):
        _remove(path)
    return n


def _transaction(con: duckdb.DuckDBPyConnection, fn: Callable[[], int]) -> int:
    with transaction(con):
        return fn()


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def quarantine(path: Path, why: str) -> None:
    """Set a spool item aside (renamed ``.unreadable.<name>``, never deleted) and say so in one line."""
    kept = path.with_name(f".unreadable.{path.name}")
    if kept.exists():
        kept = path.with_name(f".unreadable.{uuid.uuid4().hex[:8]}.{path.name}")
    try:
        path.rename(kept)
    except FileNotFoundError:   # imported and removed meanwhile by another process
        return
    except OSError:
        kept = path
    warn(f"set aside an unreadable spool file {path.name!r} ({why}); it is kept as {kept} and the other runs "
         "are imported")


def _read_blobs(paths: list[Path]) -> pa.Table | None:
    import pyarrow as pa

    hashes, sizes, datas = [], [], []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as e:
            quarantine(path, f"cannot be read ({e.strerror or e})")
            continue
        digest = parse_name(path)[1]
        if hashlib.sha256(data).hexdigest() != digest:
            quarantine(path, "its content does not match its hash (a damaged file)")
            continue
        hashes.append(digest)
        sizes.append(len(data))
        datas.append(data)
    if not hashes:
        return None
    return pa.table({"hash": hashes, "size": pa.array(sizes, pa.int64()), "data": pa.array(datas, pa.binary())})


def _read_points(points: list[tuple[str, int, Path]]) -> tuple[pa.Table | None, list[tuple[str, int]]]:
    import pyarrow as pa

    tables, done = [], []
    for run_id, chunk, path in points:
        try:
            table = read_points(path)
            table.validate(full=True)   # a flipped byte can leave buffers that DuckDB would trip over later
            keys = table.column("key")
            if not pa.types.is_dictionary(keys.type):
                keys = keys.cast(pa.string()).dictionary_encode()
            keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
            steps = table.column("step").cast(pa.int64())
            values = table.column("value").cast(pa.float64())
            if keys.null_count or steps.null_count:
                raise ValueError("a point without a key or a step")
        except FileNotFoundError:   # imported and removed meanwhile by another process
            continue
        except (OSError, KeyError, *_build_errors()) as e:
            quarantine(path, f"not a readable points file ({type(e).__name__}: {_first_line(e)})")
            continue
        tables.append(_chunk_table(run_id, chunk, keys, steps, values))
        done.append((run_id, chunk))
    return (pa.concat_tables(tables) if tables else None), done


def _chunk_table(run_id: str, chunk: int, keys: pa.Array, steps: pa.Array, values: pa.Array) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    zeros = pa.array(np.zeros(len(steps), dtype=np.int32))   # dictionary columns: no copy of a string per point
    return pa.table({"run_id": pa.DictionaryArray.from_arrays(zeros, pa.array([run_id])),
                     "key": keys.cast(pa.dictionary(pa.int32(), pa.string())), "step": steps, "value": values,
                     "chunk": pa.DictionaryArray.from_arrays(zeros, pa.array([chunk], pa.int32()))})


def _embedded_table(run_id: str, points: dict[str, Any]) -> pa.Table:
    import pyarrow as pa

    keys = pa.DictionaryArray.from_arrays(pa.array(points["key"], pa.int32()), pa.array(points["keys"], pa.string()))
    return _chunk_table(run_id, points["chunk"], keys, pa.array(points["step"], pa.int64()),
                        pa.array(points["value"], pa.float64()))


def _read_records(con: duckdb.DuckDBPyConnection, records: dict[str, list[_Item]]) -> list[_Item]:
    """Per run, its newest record that reads and checks, if newer than what the store holds. A bad record is
    set aside and the next older one of the run is taken: a damaged final record leaves the run as it
    started, not lost."""
    if not records:
        return []
    known = dict(con.execute("SELECT run_id, seq FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                             [list(records)]).fetchall())
    items = []
    for run_id, candidates in records.items():
        fresh = [c for c in candidates if c.seq > known.get(run_id, -1)]
        item = _first_good(fresh)
        if item is not None:
            item.replaces = run_id in known
            items.append(item)
    return items


def _first_good(candidates: list[_Item]) -> _Item | None:
    while candidates:
        item = candidates.pop(0)
        try:
            item.record = read_record(item.path)
            check_record(item.record, item.run_id)
            item.older = candidates
            return item
        except FileNotFoundError:   # imported and removed meanwhile by another process
            return None
        except BadRecord as e:
            quarantine(item.path, str(e))
        except (OSError, RecursionError, *_build_errors()) as e:
            quarantine(item.path, f"not a readable run record ({type(e).__name__}: {_first_line(e)})")
    return None


def _read_edits(path: Path) -> list[dict[str, Any]]:
    try:
        return check_edits(read_record(path))
    except FileNotFoundError:   # imported and removed meanwhile by another process
        return []
    except BadRecord as e:
        quarantine(path, str(e))
    except (OSError, RecursionError, ValueError) as e:
        quarantine(path, f"not a readable edits record ({type(e).__name__}: {_first_line(e)})")
    return []


def _rows(item: _Item) -> dict[str, list[dict[str, Any]]]:
    rec, run_id = item.record, item.run_id
    run = rec["run"]
    rows = {"runs": [{**{f: run.get(f) for f in RUN_FIELDS}, "seq": item.seq}]}
    for table in CHILD_TABLES:
        rows[table] = [{**row, "run_id": run_id} for row in rec.get(table) or ()]
    return rows


def _import(con: duckdb.DuckDBPyConnection, blobs: pa.Table | None, points: pa.Table | None,
            chunks: list[tuple[str, int]], batch: "_Batch") -> int:
    import pyarrow as pa

    if batch.points is not None:   # the points carried in final records go with the points files'
        points = batch.points if points is None else pa.concat_tables([points, batch.points])
        chunks = [*chunks, *batch.chunks]
    if blobs is not None:
        con.register("nbt_blobs", blobs)
        con.execute("INSERT INTO artifacts SELECT * FROM nbt_blobs "
                    "WHERE hash NOT IN (SELECT hash FROM artifacts)")
        con.unregister("nbt_blobs")
    if batch.items:
        _import_runs(con, batch)
    else:
        edits.apply(con, edits.insert(con, batch.edits))
    if points is not None:
        insert_points(con, points, chunks)
    return len(batch.items)


def _import_runs(con: duckdb.DuckDBPyConnection, batch: "_Batch") -> None:
    con.register("nbt_runs", batch.tables["runs"])
    replaced = [item.run_id for item in batch.items if item.replaces]
    if replaced:   # a run's rows are written in one transaction: a run not in `runs` has no rows anywhere
        us = list(locate(con, replaced).values())
        for table in CHILD_TABLES:   # before the runs rows, which say where their rows are
            con.execute(f'DELETE FROM "{table}" t WHERE {locality.located("t", us)}')
        keyorder.deleted(con, us)
        con.execute("DELETE FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [replaced])
    con.execute("INSERT INTO runs BY NAME SELECT * REPLACE ("
                "to_timestamp(started_at) AS started_at, to_timestamp(ended_at) AS ended_at), "
                "tags AS recorded_tags FROM nbt_runs")
    con.unregister("nbt_runs")
    # a run's edits outlive a new record of it (a run tagged while it was running), and edits may arrive
    # before their run: either way its state is recomputed from all its edits
    imported = [item.run_id for item in batch.items]
    edits.apply(con, sorted({*edits.insert(con, batch.edits), *edits.with_edits(con, imported)}))
    locality.note_shared(con, locate(con, imported))
    for table in CHILD_TABLES:
        if batch.tables[table].num_rows:
            con.register("nbt_child", batch.tables[table])
            rows = "SELECT c.*, u.us AS started_us FROM nbt_child c JOIN nbt_us u USING (run_id)"
            con.execute(f'INSERT INTO "{table}" BY NAME {rows}')
            keyorder.added(con, table, rows)
            con.unregister("nbt_child")
    adopt(con)
    if batch.sources.num_rows:
        con.register("nbt_src", batch.sources)
        con.execute("INSERT INTO sources SELECT * FROM nbt_src WHERE hash NOT IN (SELECT hash FROM sources)")
        con.unregister("nbt_src")
    if batch.envs.num_rows:
        con.register("nbt_env", batch.envs)
        con.execute("INSERT INTO environments BY NAME SELECT * REPLACE (to_timestamp(created_at) AS created_at) "
                    "FROM nbt_env WHERE env_id NOT IN (SELECT env_id FROM environments)")
        con.unregister("nbt_env")


class _Batch:
    """The Arrow tables of some records, built before any SQL runs: a value of the wrong type fails
    here (and its record is found and set aside), not halfway through a transaction."""

    def __init__(self, items: list[_Item], changes: list[dict[str, Any]] | None = None) -> None:
        import pyarrow as pa

        self.items = items
        self.edits = changes or []
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("runs", *CHILD_TABLES)}
        sources: dict[str, str] = {}
        envs: dict[str, dict[str, Any]] = {}
        for item in items:
            for table, table_rows in _rows(item).items():
                rows[table].extend(table_rows)
            rec = item.record
            if rec.get("source"):
                sources[rec["source"]["hash"]] = rec["source"]["text"]
            if rec.get("env"):
                envs[rec["env"]["env_id"]] = {k: rec["env"].get(k) for k in records.ENV_SCHEMA.names}
        self.tables = {t: pa.Table.from_pylist(r, schema=records.SCHEMAS[t]) for t, r in rows.items()}
        self.sources = pa.table({"hash": pa.array(list(sources), pa.string()),
                                 "text": pa.array(list(sources.values()), pa.string())})
        self.envs = pa.Table.from_pylist(list(envs.values()), schema=records.ENV_SCHEMA)
        embedded = [(item.run_id, item.record["points"]) for item in items if item.record.get("points")]
        self.points = pa.concat_tables([_embedded_table(r, p) for r, p in embedded]) if embedded else None
        self.chunks = [(r, p["chunk"]) for r, p in embedded]


def _builds(item: _Item | None) -> _Item | None:
    """``item`` if its values have the right types, else the run's next older record that does."""
    while item is not None:
        try:
            _Batch([item])
            return item
        except _build_errors() as e:
            quarantine(item.path, f"a value of the wrong type ({type(e).__name__}: {_first_line(e)})")
        replaces = item.replaces
        item = _first_good(item.older or [])
        if item is not None:
            item.replaces = replaces
    return None


def _mark_crashed(con: duckdb.DuckDBPyConnection, spool: Spool) -> int:
    """Runs left ``running`` on this host by a process that has ended become ``crashed``: asked of the
    process's liveness lock (lock.py), else of its pid."""
    host = socket.gethostname()
    rows = con.execute("SELECT DISTINCT session_id, pid, proc_start FROM runs WHERE status = ? AND host = ?",
                       [records.RUNNING, host]).fetchall()
    for session, pid, started in rows:
        alive = session_alive(spool.dir, session)
        if alive is None:
            alive = process_alive(pid, started)
        if not alive:
            con.execute(
                "UPDATE runs SET status = ?, error_type = 'Crashed', error_message = ? "
                "WHERE status = ? AND host = ? AND session_id IS NOT DISTINCT FROM ? AND pid = ? "
                "AND proc_start IS NOT DISTINCT FROM ?",
                [records.CRASHED, f"the process that ran it (pid {pid} on {host}) ended before the run finished",
                 records.RUNNING, host, session, pid, started])
    return 0
