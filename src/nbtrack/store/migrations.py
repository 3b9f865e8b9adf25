"""Named, recorded forward migrations, applied in one transaction when a store opens (a team store's
in more than one where DuckLake needs a commit first: TEAM_BEFORE)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb

from ..version import __version__
from ..errors import NotAStoreError, StoreVersionError
from . import codec, curves, keyorder, locality, records, schema
from .records import BINARY_MIMES
from .transaction import transaction

def _typed_values(con: duckdb.DuckDBPyConnection, team: bool) -> None:
    """0006: values written before codec.py in its encoding. They were patched text (NaN and Infinity
    replaced as strings, which broke any text holding those words), ints past 64 bits were typed ``int``,
    and a dict whose keys start with ``$`` would now read as a tag. Readers tolerate the old text too
    (codec.loads); this makes the stored text what any JSON reader and SQL see from now on."""
    import pyarrow as pa

    for table in ("params", "values"):
        rows = con.execute(f'SELECT run_id, key, vtype, value_json, value_num FROM "{table}" '
                           "WHERE vtype IN ('json', 'float', 'int')").fetchall()
        fixed = []
        for run_id, key, vtype, text, num in rows:
            if vtype == "float":
                value = num if num is not None else codec.loads_legacy(text)
            elif vtype == "int":
                value = codec.loads_legacy(text)
                if isinstance(value, int) and -codec.INT64 <= value < codec.INT64:
                    continue
            else:
                value = codec.loads_legacy(text)
            new = records.encode_value(value)
            if new["value_json"] != text or new["vtype"] != vtype:
                fixed.append({"run_id": run_id, "key": key, **new})
        if fixed:
            con.register("nbt_fix", pa.Table.from_pylist(fixed))
            con.execute(f'UPDATE "{table}" SET vtype = f.vtype, value_json = f.value_json, value_num = f.value_num, '
                        f'value_text = f.value_text FROM nbt_fix f WHERE "{table}".run_id = f.run_id '
                        f'AND "{table}".key = f.key')
            con.unregister("nbt_fix")
    for table, key, columns in (("inputs", "name", ("summary", "shape")), ("outputs", "name", ("summary", "shape")),
                                ("runs", None, ("rng", "provenance"))):
        for column in columns:
            keys = "run_id" + (f", {key}" if key else "")
            rows = con.execute(f"SELECT {keys}, {column} FROM {table} WHERE {column} IS NOT NULL").fetchall()
            fixed = [(*r[:-1], new) for r in rows if (new := codec.dumps(codec.loads_legacy(r[-1]))) != r[-1]]
            if fixed:
                names = ["run_id", *([key] if key else []), "fixed"]
                con.register("nbt_fix", pa.table({n: [r[i] for r in fixed] for i, n in enumerate(names)}))
                match = " AND ".join(f"{table}.{n} = f.{n}" for n in names[:-1])
                con.execute(f"UPDATE {table} SET {column} = f.fixed FROM nbt_fix f WHERE {match}")
                con.unregister("nbt_fix")


def _binary_displays(con: duckdb.DuckDBPyConnection, team: bool) -> None:
    """0007: images shown in a kernel were stored as the base64 text of the kernel's display message;
    store the image itself, as images shown in a plain shell always were. Strict base64 never matches
    a real image (PNG, JPEG and PDF start with bytes outside its alphabet), so stored bytes stay. The
    old blobs are left for ``gc``: another run's saved output may share one."""
    import base64
    import binascii
    import hashlib

    binary = " OR ".join(f"starts_with(d.mime, '{m}')" for m in BINARY_MIMES)   # as seal matches them
    rows = con.execute("SELECT DISTINCT a.hash, a.data FROM displays d JOIN artifacts a ON a.hash = d.artifact "
                       f"WHERE {binary}").fetchall()
    for old, data in rows:
        try:
            image = base64.b64decode(b"".join(bytes(data).split()), validate=True)
        except binascii.Error:
            continue
        new = hashlib.sha256(image).hexdigest()
        con.execute("INSERT INTO artifacts SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE hash = ?)",
                    [new, len(image), image, new])
        con.execute(f"UPDATE displays d SET artifact = ?, size = ? WHERE d.artifact = ? AND ({binary})",
                    [new, len(image), old])


MIGRATIONS: list[tuple[str, Any]] = [
    ("0001_initial", schema.INITIAL),
    ("0002_metric_curves", schema.CURVES.format(
        backfill=curves.downsample_sql("SELECT run_id, key, step, value FROM metric_history"))),
    ("0003_repro", schema.REPRO),
    ("0004_sweeps", schema.SWEEPS),
    ("0005_saved_outputs", schema.SAVED),
    ("0006_typed_values", _typed_values),   # Python, not DDL: a callable gets the connection and `team`
    ("0007_binary_displays", _binary_displays),
    ("0008_run_edits", schema.EDITS),
    ("0009_run_locality", locality.MIGRATION),
    ("0010_short_curves", curves.SHORT_CURVES_MIGRATION),   # only long series keep a stored curve
    ("0011_metric_series", schema.SERIES_TABLE),   # points stored a series to a row: the table,
    ("0012_points_as_series", schema.SERIES_MOVE),  # then the points
    ("0013_shared_starts", locality.shared_migration),   # the starts runs share: joins by start are exact
    ("0014_by_key", keyorder.migration),   # metrics and params in key order, for filters and sorts
]
KNOWN = {name for name, _ in MIGRATIONS}
# what the readers need of a migration, stood in for a connection to a store opened read-only before
# it ran (no migration can run there), as temp objects
STAND_INS = {"0013_shared_starts": locality.SHARED_STAND_IN, "0014_by_key": keyorder.STAND_IN}
# SQL run in a team store before the migration named, committed on its own after the migrations
# before it (DuckLake refuses a table's options in the transaction that creates the table).
# A series row holds up to 1,024 points: under the lake's limit of 1,000 rows, a run of 200,000
# steps of two metrics was inlined in the catalog as text and took 3.2 s to record instead of 1.2 s.
# Up to 10 rows, a small run's series stay inlined as its other rows do.
SERIES_INLINE_ROWS = 10
TEAM_BEFORE = {
    "0012_points_as_series": "CALL {catalog}.set_option('data_inlining_row_limit', "
                             f"{SERIES_INLINE_ROWS}, table_name => 'metric_series')",
}


def check(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    """Raise when the file is not a store or is newer than this code; return pending migrations."""
    try:   # asked first, as on every open of a store: a catalog query costs ten times as much (1 ms)
        names = [r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()]
    except duckdb.CatalogException:
        tables = con.execute("SELECT count(*) FROM duckdb_tables() "
                             "WHERE database_name = current_database() AND schema_name = 'main'").fetchone()[0]
        if tables:
            msg = (f"{path} is a DuckDB file but not an nbtrack store (it has no schema_migrations "
                   "table); point NBTRACK_STORE or --store at another path")
            raise NotAStoreError(msg) from None
        return [name for name, _ in MIGRATIONS]
    unknown = sorted(n for n in names if n not in KNOWN)
    if unknown:
        msg = (f"{path} was written by a newer nbtrack (migration {unknown[-1]} is unknown to "
               f"nbtrack {__version__}); upgrade with: pip install -U nbtrack")
        raise StoreVersionError(msg)
    return [name for name, _ in MIGRATIONS if name not in names]


def stand_in(con: duckdb.DuckDBPyConnection, pending: list[str]) -> None:
    """Temp stand-ins, on a read-only connection, for what these pending migrations would make."""
    for name in pending:
        if name in STAND_INS:
            con.execute(STAND_INS[name])


def migrate(con: duckdb.DuckDBPyConnection, path: str, team: bool = False) -> None:
    """Apply pending migrations; a store that is already current costs one catalog query.

    ``team``: the DDL for DuckLake, which has no PRIMARY KEY or UNIQUE constraints (the importer
    replaces rows by run id and skips known hashes, so the constraints only guard the file store)."""
    pending = check(con, path)
    if not pending:
        return
    now = datetime.now(timezone.utc)
    batches: list[list[str]] = [[]]
    for name in pending:
        if team and name in TEAM_BEFORE and batches[-1]:
            batches.append([])
        batches[-1].append(name)
    steps = dict(MIGRATIONS)
    for batch in batches:
        if team and batch[0] in TEAM_BEFORE:
            catalog = con.execute("SELECT current_database()").fetchall()[0][0]
            con.execute(TEAM_BEFORE[batch[0]].format(catalog=_identifier(catalog)))
        with transaction(con):
            # asked again in the transaction: a team writer on another machine may have committed some
            # of these since `check` (our DROP TABLE metric_history then met its view); two writers that
            # both see a step pending conflict at commit, and the team store retries
            done = _applied(con)
            for name in (n for n in batch if n not in done):
                step = steps[name]
                if callable(step):
                    step(con, team)
                else:
                    con.execute(_without_keys(step) if team else step)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [name, now, __version__])


def _applied(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The migrations recorded, asked without an error (one would abort the open transaction)."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND schema_name = 'main' AND table_name = 'schema_migrations'").fetchone()[0]:
        return set()
    return {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}


def _without_keys(ddl: str) -> str:
    return ddl.replace(" PRIMARY KEY", "")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

