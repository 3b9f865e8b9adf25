"""Read queries: the long tables in, pandas frames and plain dicts out."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import FilterError, RunNotFoundError, SqlError
from .filters import compile_filter
from . import codec
from . import locality, wide
from .records import FINISHED, decode_value
from .results import fetch_df

if TYPE_CHECKING:   # imported where a frame is made: `import nbtrack` does not pay for pandas
    import pandas as pd


BASE_COLUMNS = ["run_id", "experiment", "name", "status", "started_at", "ended_at", "duration_s", "tags",
                "sweep_id", "user", "host", "label", "starred", "note"]
_BASE_SQL = ["r.run_id", "r.experiment", "r.name", "r.status", "r.started_at", "r.ended_at", "r.duration_s", "r.tags",
             "r.sweep_id", 'r."user"', "r.host", "r.label", "coalesce(r.starred, false)", "r.note"]   # BASE_COLUMNS


# up to this many ids (a window of the panel's table: 200) are bound one parameter each, which DuckDB
# looks up in the primary key's index: 5 ms at 10^6 runs, against 19 ms joining a list of them
_BOUND_IDS = 1_000


def _selection(experiment: str | None, where: str | None, limit: int | None,
               include_deleted: bool = False, ids: list[str] | None = None,
               columns: list[str] = (), con: duckdb.DuckDBPyConnection | None = None) -> tuple[str, list[Any]]:
    conds, args = ([] if include_deleted else ["r.deleted_at IS NULL"]), []
    if ids is not None and len(ids) <= _BOUND_IDS:   # constants: looked up in the key's index
        conds.append(f"r.run_id IN ({', '.join('?' * len(ids))})" if ids else "FALSE")
        args.extend(str(i) for i in ids)
    elif ids is not None:
        conds.append("r.run_id IN (SELECT unnest(?::VARCHAR[]))")
        args.append(list(ids))
    if experiment is not None:
        conds.append("r.experiment = ?")
        args.append(experiment)
    if where:
        sql, params = compile_filter(where, con)
        conds.append(sql)
        args.extend(params)
    query = f"SELECT r.run_id, r.started_at, {locality.run_key('r')}{''.join(', ' + c for c in columns)} FROM runs r"
    if conds:
        query += " WHERE " + " AND ".join(conds)
    if limit is not None:
        query += f" ORDER BY r.started_at DESC, r.run_id DESC LIMIT {int(limit)}"
    return query, args


def runs_frame(con: duckdb.DuckDBPyConnection, experiment: str | None = None, where: str | None = None,
               limit: int | None = None, max_columns: int | None = wide.MAX_COLUMNS,
               include_deleted: bool = False, ids: list[str] | None = None) -> pd.DataFrame:
    """One row per run, oldest first: base columns, then params.*, metrics.*, values.* (at most
    ``max_columns`` of them: the keys set in the most runs). Deleted runs only with ``include_deleted``,
    which adds their ``deleted_at``; only the runs of ``ids`` when it is given."""
    import pandas as pd

    base = _BASE_SQL + (["r.deleted_at"] if include_deleted else [])
    names = [f"b{i}" for i in range(len(base))]
    # the runs' own columns are kept in nbt_sel as they are selected: a second read joining the selected
    # runs read every run's id again (a filter's 1,000 of 10^6 runs: 50-70 ms of 280-450)
    query, args = _selection(experiment, where, limit, include_deleted, ids, [f"{e} AS {n}" for e, n in zip(base, names)], con)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE nbt_sel AS SELECT row_number() OVER (ORDER BY started_at, run_id) - 1 "
                    f"AS row, run_id, nbt_us, nbt_rid, {', '.join(names)} FROM ({query})", args)
    except (duckdb.ConversionException, duckdb.BinderException, duckdb.OutOfRangeException,
            duckdb.InvalidInputException) as e:   # the filter's checks should make this unreachable
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        shown = where if len(where) <= 200 else where[:200] + "..."
        raise FilterError(f"cannot apply filter {shown!r}: {first}") from None
    try:
        span = None
        if ids is not None:   # a few runs by id: read only the row groups of their time
            lo, hi = con.execute("SELECT min(nbt_us), max(nbt_us) FROM nbt_sel").fetchall()[0]   # all: DuckDB 2
            # keeps a result fetched with fetchone() open, and the relations of wide.read then refuse to run
            span = None if lo is None else (lo, hi)
        frame = fetch_df(con.execute(f"SELECT {', '.join(names)} FROM nbt_sel ORDER BY row"))
        blocks, order = wide.read(con, max_columns, len(frame), span if len(frame) else None)
    finally:
        con.execute("DROP TABLE IF EXISTS nbt_sel")
    frame.columns = BASE_COLUMNS + (["deleted_at"] if include_deleted else [])
    frame["tags"] = [list(t) if t is not None and t is not pd.NA else [] for t in frame["tags"]]
    if blocks:
        columns = pd.concat(blocks, axis=1)
        columns.index = frame.index
        frame = pd.concat([frame, columns[order]], axis=1)
    return frame


def resolve_run_id(con: duckdb.DuckDBPyConnection, ref: str, store_path: str) -> str:
    """A full run id from an id or a unique prefix of one, like git."""
    ref = ref.strip()
    if not ref:
        raise RunNotFoundError("empty run id; list runs with: nbtrack runs")
    # a whole id is looked up in the primary key's index; only a prefix reads every id
    rows = (con.execute("SELECT run_id FROM runs WHERE run_id = ?", [ref]).fetchall() if len(ref) == 32 else [])
    rows = rows or con.execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY started_at LIMIT 5",
                               [ref]).fetchall()
    if not rows:
        raise RunNotFoundError(f"no run matches {ref!r} in {store_path}; list runs with: nbtrack runs")
    if len(rows) > 1:
        ids = ", ".join(r[0][:12] for r in rows)
        raise RunNotFoundError(f"run id prefix {ref!r} is ambiguous ({ids}{', ...' if len(rows) == 5 else ''}); "
                               "give more characters")
    return rows[0][0]


def _kv(con: duckdb.DuckDBPyConnection, table: str, run: dict[str, Any],
        kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """A run's params or values, decoded; ``run``: its ``run`` id and ``us`` (locality.bound). ``kinds``: filled
    with each param's kind, from the same read."""
    where = locality.known("t")
    kind = "kind" if table == "params" else "NULL"
    rows = con.execute(f'SELECT key, vtype, value_json, value_num, value_text, {kind} FROM "{table}" t '
                       f"WHERE {where} ORDER BY key", run).fetchall()
    if kinds is not None:
        kinds.update((r[0], r[5]) for r in rows)
    return {k: decode_value(t, j, n, s) for k, t, j, n, s, _ in rows}


def _fingerprints(con: duckdb.DuckDBPyConnection, table: str, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM {table} t WHERE {locality.known('t')} ORDER BY name", run)
    names = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        item = {k: v for k, v in zip(names, row) if k not in ("run_id", "name", "started_us")}
        item["summary"] = codec.loads(item["summary"]) if item.get("summary") else {}
        item["shape"] = shape_of(item.get("shape"))
        out[row[names.index("name")]] = item
    return out


def shape_of(text: str | None) -> tuple[Any, ...] | None:
    """A fingerprint's shape column as a tuple; ``None`` when absent or unreadable."""
    value = codec.loads(text) if text else None
    return tuple(value) if isinstance(value, (list, tuple)) else None


def run_detail(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """Everything recorded about one run, as plain Python values."""
    cur = con.execute(f"SELECT *, {locality.STARTED_US} AS nbt_us FROM runs WHERE run_id = ?", [run_id])
    names = [d[0] for d in cur.description]
    row = dict(zip(names, cur.fetchall()[0]))
    run = {"run": run_id, "us": row.pop("nbt_us")}   # one lookup of where its rows are, for every read below
    row["tags"] = list(row["tags"] or [])
    row["redacted"] = list(row["redacted"] or [])
    detail: dict[str, Any] = {"run": row, "param_kinds": {}}
    detail["params"] = _kv(con, "params", run, detail["param_kinds"])
    detail["values"] = _kv(con, "values", run)
    detail["metrics"] = dict(con.execute(
        f"SELECT key, value FROM metrics t WHERE {locality.known('t')} ORDER BY key", run).fetchall())
    detail["inputs"] = _fingerprints(con, "inputs", run)
    detail["outputs"] = _fingerprints(con, "outputs", run)
    src = con.execute("SELECT text FROM sources WHERE hash = ?", [row["source_hash"]]).fetchall()
    detail["source"] = src[0][0] if src else None
    env = con.execute("SELECT * FROM environments WHERE env_id = ?", [row["env_id"]])
    env_names = [d[0] for d in env.description]
    env_rows = env.fetchall()
    detail["env"] = dict(zip(env_names, env_rows[0])) if env_rows else {}
    if detail["env"].get("packages"):
        detail["env"]["packages"] = codec.loads(detail["env"]["packages"])
    detail["displays"] = [
        {"kind": k, "mime": m, "size": s, "truncated": t, "data": d}
        for k, m, s, t, d in con.execute(
            "SELECT d.kind, d.mime, d.size, d.truncated, a.data FROM displays d "
            f"LEFT JOIN artifacts a ON a.hash = d.artifact WHERE {locality.known('d')} ORDER BY d.seq, d.mime",
            run).fetchall()]
    return detail


READING_STATEMENTS = {"SELECT", "EXPLAIN"}   # SELECT covers FROM, WITH, VALUES, DESCRIBE, SHOW, SUMMARIZE
# PRAGMAs that only describe (DuckDB 1.5 plans them as SELECTs, 2.0 as PRAGMA statements); any other
# PRAGMA, or one with "=", sets something and is refused
READING_PRAGMAS = {"table_info", "show", "show_tables", "show_tables_expanded", "database_list", "database_size",
                   "storage_info", "version", "platform", "functions", "collations", "metadata_info", "user_agent"}
_PRAGMA = re.compile(r"\s*pragma\s+(\w+)\s*(\([^=;]*\))?\s*;?\s*", re.I)


def user_sql(con: duckdb.DuckDBPyConnection, query: str) -> pd.DataFrame:
    """A user's own query (``nbtrack sql``): one reading statement, on the read-only connection it is given.

    The connection already refuses writes and files (FileStore.connect); refusing every other kind of
    statement here as well means a store whose connection cannot be locked down (a team store) is safe."""
    statements = con.extract_statements(query)
    if len(statements) != 1:
        raise SqlError(f"nbtrack sql runs one query at a time; this text holds {len(statements)}")
    kind = statements[0].type.name
    pragma = _PRAGMA.fullmatch(query) if kind == "PRAGMA" else None
    if kind not in READING_STATEMENTS and not (pragma and pragma.group(1).lower() in READING_PRAGMAS):
        raise SqlError(f"nbtrack sql is read-only: a {kind} statement is refused (use SELECT, DESCRIBE, SHOW, "
                       "SUMMARIZE or EXPLAIN; copy data out with nbtrack export)")
    return fetch_df(con.execute(query))


def metric_key_counts(con: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Per metric key: in how many runs it has a final value, and in how many it has logged points."""
    sel = "" if run_ids is None else f" WHERE {locality.some('t')}"
    rows = con.execute(f"SELECT key, count(*), count(*) FILTER (WHERE source = 'log') FROM metrics t{sel} "
                       "GROUP BY key", {} if run_ids is None else {"runs": run_ids}).fetchall()
    return {k: {"runs": n, "logged": logged} for k, n, logged in rows}


def run_labels(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, str]:
    """``name · id8`` per run (its label, when it has one), as the charts label runs."""
    rows = con.execute("SELECT run_id, coalesce(label, name) FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                       [run_ids]).fetchall()
    return {i: f"{n} · {i[:8]}" for i, n in rows}


def logged_runs(con: duckdb.DuckDBPyConnection, run_ids: list[str] | None = None) -> list[str]:
    """Those of these runs (default: all) that logged points, newest first."""
    sel = "r.deleted_at IS NULL AND " if run_ids is None else "r.run_id IN (SELECT unnest(?::VARCHAR[])) AND "
    return [r[0] for r in con.execute(
        f"SELECT r.run_id FROM runs r WHERE {sel}"
        "EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.run_id AND m.source = 'log') "
        "ORDER BY r.started_at DESC, r.run_id DESC", [] if run_ids is None else [run_ids]).fetchall()]


def producers(con: duckdb.DuckDBPyConnection, hashes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per fingerprint: the runs that output it (``run_id, name, started_at``), oldest first."""
    rows = con.execute(
        "SELECT o.hash, o.run_id, o.name, r.started_at FROM outputs o JOIN runs r USING (run_id) "
        "WHERE o.hash IN (SELECT unnest(?::VARCHAR[])) ORDER BY r.started_at, o.run_id", [hashes]).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for h, run_id, name, started in rows:
        out.setdefault(h, []).append({"run_id": run_id, "name": name, "started_at": started})
    return out


def repeat_members(con: duckdb.DuckDBPyConnection, group: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT run_id FROM runs WHERE repeat_group = ? ORDER BY repeat_index, started_at", [group]).fetchall()]


def reference_candidates(con: duckdb.DuckDBPyConnection, name: str, exclude: str | None,
                         limit: int = 50) -> list[str]:
    """Finished runs with this name, newest first, deleted ones left out: what ``%%track --check`` may
    compare against."""
    return [r[0] for r in con.execute(
        "SELECT run_id FROM runs WHERE name = ? AND status = ? AND run_id IS DISTINCT FROM ? AND deleted_at IS NULL "
        "ORDER BY started_at DESC, run_id DESC LIMIT ?", [name, FINISHED, exclude, limit]).fetchall()]


def params_of(con: duckdb.DuckDBPyConnection, run_id: str, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A run's params, optionally only those of some kinds (``literal``, ``override``, ``input``, ...)."""
    found: dict[str, str] = {}
    values = _kv(con, "params", locality.bound(con, run_id), found)
    return values if kinds is None else {k: v for k, v in values.items() if found[k] in kinds}


def upstream_edges(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[tuple[str, str, str]]:
    """``(producer, consumer, name)`` for inputs of these runs whose fingerprint an earlier run output;
    of several such runs, the latest one before the consumer started."""
    rows = con.execute("""
        SELECT producer, consumer, name FROM (
            SELECT o.run_id AS producer, i.run_id AS consumer, i.name,
                   row_number() OVER (PARTITION BY i.run_id, i.name ORDER BY rp.started_at DESC, o.run_id DESC) AS k
            FROM inputs i
            JOIN outputs o ON o.hash = i.hash AND o.run_id <> i.run_id
            JOIN runs rp ON rp.run_id = o.run_id
            JOIN runs rc ON rc.run_id = i.run_id
            WHERE i.run_id IN (SELECT unnest(?::VARCHAR[])) AND i.hash IS NOT NULL
              AND rp.started_at <= rc.started_at)
        WHERE k = 1 ORDER BY consumer, name""", [run_ids]).fetchall()
    return [tuple(r) for r in rows]


def consumers_of(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[str]:
    """Runs that read a fingerprint one of these runs output, after it."""
    return [r[0] for r in con.execute("""
        SELECT DISTINCT i.run_id FROM outputs o
        JOIN inputs i ON i.hash = o.hash AND i.run_id <> o.run_id
        JOIN runs rp ON rp.run_id = o.run_id JOIN runs rc ON rc.run_id = i.run_id
        WHERE o.run_id IN (SELECT unnest(?::VARCHAR[])) AND o.hash IS NOT NULL
          AND rc.started_at >= rp.started_at""", [run_ids]).fetchall()]


def run_rows(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> list[dict[str, Any]]:
    cur = con.execute("SELECT run_id, name, experiment, status, started_at, source_hash FROM runs "
                      "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY started_at, run_id", [run_ids])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def artifact(con: duckdb.DuckDBPyConnection, digest: str) -> bytes:
    rows = con.execute("SELECT data FROM artifacts WHERE hash = ?", [digest]).fetchall()
    if not rows:
        raise RunNotFoundError(f"artifact {digest[:12]} is not in this store")
    return bytes(rows[0][0])


def saved_outputs(con: duckdb.DuckDBPyConnection, hashes: list[str]) -> dict[str, dict[str, Any]]:
    """Per fingerprint: the latest run that saved an output with it (``run_id, name``)."""
    rows = con.execute(
        "SELECT o.hash, o.run_id, o.name FROM outputs o JOIN runs r USING (run_id) "
        "WHERE o.artifact IS NOT NULL AND o.hash IN (SELECT unnest(?::VARCHAR[])) ORDER BY r.started_at",
        [hashes]).fetchall()
    return {h: {"run_id": run_id, "name": name} for h, run_id, name in rows}
