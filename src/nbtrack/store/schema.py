"""DDL of the store, as data: migrations.py applies it in order."""
from __future__ import annotations

INITIAL = """
CREATE TABLE schema_migrations (
    name VARCHAR PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL,
    nbtrack_version VARCHAR NOT NULL
);

CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    seq INTEGER NOT NULL,              -- spool sequence: an import never replaces a newer record
    experiment VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    status VARCHAR NOT NULL,           -- running | finished | failed | interrupted | crashed
    kind VARCHAR NOT NULL,             -- cell | script
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    duration_s DOUBLE,
    cpu_s DOUBLE,
    peak_rss_mb DOUBLE,
    tags VARCHAR[],
    command VARCHAR,
    cell_id VARCHAR,
    execution_count INTEGER,
    source_hash VARCHAR,
    source_path VARCHAR,
    notebook VARCHAR,
    env_id VARCHAR,
    git_commit VARCHAR,
    git_branch VARCHAR,
    git_dirty BOOLEAN,
    session_id VARCHAR,
    kernel_id VARCHAR,
    host VARCHAR,
    "user" VARCHAR,
    pid INTEGER,
    proc_start BIGINT,
    error_type VARCHAR,
    error_message VARCHAR,
    traceback VARCHAR,
    redacted VARCHAR[]
);

CREATE TABLE params (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,             -- literal | override | input | capturer
    vtype VARCHAR NOT NULL,            -- int | float | bool | str | none | json
    value_json VARCHAR,
    value_num DOUBLE,
    value_text VARCHAR
);

CREATE TABLE "values" (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    vtype VARCHAR NOT NULL,
    value_json VARCHAR,
    value_num DOUBLE,
    value_text VARCHAR
);

-- final value per run and key: a number the cell bound, else the last logged point
CREATE TABLE metrics (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value DOUBLE,
    step BIGINT,
    source VARCHAR NOT NULL            -- cell | log
);

-- every nbtrack.log point; chunk makes a re-imported spool file replace itself only
CREATE TABLE metric_history (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    step BIGINT NOT NULL,
    value DOUBLE,
    chunk INTEGER NOT NULL
);

CREATE TABLE inputs (
    run_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    type VARCHAR,
    hash VARCHAR,
    hash_method VARCHAR,
    shape VARCHAR,
    length BIGINT,
    dtype VARCHAR,
    summary VARCHAR                    -- JSON
);

CREATE TABLE outputs (
    run_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    change VARCHAR NOT NULL,           -- new | rebound | removed
    type VARCHAR,
    hash VARCHAR,
    hash_method VARCHAR,
    shape VARCHAR,
    length BIGINT,
    dtype VARCHAR,
    summary VARCHAR
);

CREATE TABLE displays (
    run_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    kind VARCHAR NOT NULL,             -- result | display | stdout | stderr
    mime VARCHAR NOT NULL,
    artifact VARCHAR,                  -- artifacts.hash, NULL when over the size cap
    size BIGINT NOT NULL,
    truncated BOOLEAN NOT NULL
);

CREATE TABLE artifacts (
    hash VARCHAR PRIMARY KEY,
    size BIGINT NOT NULL,
    data BLOB NOT NULL
);

CREATE TABLE sources (
    hash VARCHAR PRIMARY KEY,
    text VARCHAR NOT NULL
);

CREATE TABLE environments (
    env_id VARCHAR PRIMARY KEY,
    python VARCHAR,
    implementation VARCHAR,
    platform VARCHAR,
    machine VARCHAR,
    packages VARCHAR,                  -- JSON object: distribution -> version
    created_at TIMESTAMPTZ
);

-- the newest applied migration, for tools that want one version string
CREATE VIEW schema_version AS
SELECT max(name) AS version, count(*) AS migrations FROM schema_migrations;

CREATE VIEW runs_wide AS
SELECT
    r.*,
    (SELECT map_from_entries(list({'k': p.key, 'v': p.value_json}))
       FROM params p WHERE p.run_id = r.run_id) AS params,
    (SELECT map_from_entries(list({'k': m.key, 'v': m.value}))
       FROM metrics m WHERE m.run_id = r.run_id) AS metrics,
    (SELECT map_from_entries(list({'k': v.key, 'v': v.value_json}))
       FROM "values" v WHERE v.run_id = r.run_id) AS "values"
FROM runs r;
"""


# Every run's logged curves, downsampled once at import (curves.DOWNSAMPLE), for the panels.
CURVES = """
CREATE TABLE metric_curves (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    step BIGINT NOT NULL,
    value DOUBLE
);
INSERT INTO metric_curves {backfill};
"""


# What reproducibility checks need: the run a check compared against, repeats of one cell,
# RNG states around the run and where each name the run read came from.
REPRO = """
ALTER TABLE runs ADD COLUMN checked_against VARCHAR;
ALTER TABLE runs ADD COLUMN repeat_group VARCHAR;
ALTER TABLE runs ADD COLUMN repeat_index INTEGER;
ALTER TABLE runs ADD COLUMN rng VARCHAR;          -- JSON: generator -> [state hash before, after]
ALTER TABLE runs ADD COLUMN provenance VARCHAR;   -- JSON: name read -> the cell (and run) that bound it
"""

# Runs of one %%track --grid / --repeat sweep share a sweep id.
SWEEPS = """
ALTER TABLE runs ADD COLUMN sweep_id VARCHAR;
"""

# Outputs saved with --save: the artifact (content hash) and its safe format (parquet | npy).
SAVED = """
ALTER TABLE outputs ADD COLUMN artifact VARCHAR;
ALTER TABLE outputs ADD COLUMN artifact_format VARCHAR;
"""

# Curation: every tag, label, note, star and deletion is an edit with who and when (run_edits, the
# history); the runs table holds each run's current state, recomputed from its edits (edits.py), so
# filters, SQL and every reader see it without a join. recorded_tags are the tags the run was recorded
# with, the base the tag edits apply to.
EDITS = """
CREATE TABLE run_edits (
    edit_id VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    edited_at TIMESTAMPTZ NOT NULL,
    "user" VARCHAR,
    host VARCHAR,
    field VARCHAR NOT NULL,            -- tag | label | note | starred | deleted
    tag VARCHAR,                       -- the tag, for field = tag
    value VARCHAR                      -- JSON: true/false for tag, starred, deleted; text or null for label, note
);
ALTER TABLE runs ADD COLUMN label VARCHAR;
ALTER TABLE runs ADD COLUMN note VARCHAR;
ALTER TABLE runs ADD COLUMN starred BOOLEAN;
ALTER TABLE runs ADD COLUMN deleted_at TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN recorded_tags VARCHAR[];
UPDATE runs SET recorded_tags = tags;
"""


# Logged points a block of a series to a row (run, key, points file): 10^9 points, one a row, took 9.5
# bytes a point on disk, and a lookup of one run loaded the statistics of 8,300 row groups (45 ms); as
# series, 3.3 bytes and a few hundred row groups. Steps first_step, first_step + stride, ... are not
# stored one by one (stride NULL: they are, in steps); values are float32 when each one of the row is
# exactly a float32 (NaN and the infinities included: what a float32 model logs), else float64:
# nothing is rounded. metric_history stays, as a view with one row a point.
# At most SERIES_ROW_POINTS points a row: DuckDB reads the lists of a whole vector of 2,048 rows to
# return one of them, so a run whose rows shared a vector with a 5 * 10^6-point series took 0.3-0.6 s
# to read instead of 3 ms; capped, a vector holds at most about 2 * 10^6 points.
SERIES_ROW_POINTS = 1024
SERIES_POINTS = ("unnest(coalesce(steps, generate_series(first_step, first_step + (n - 1) * stride, stride))) AS step, "
                 "unnest(coalesce(values64, values32::DOUBLE[])) AS value")


def series_sql(points: str) -> str:
    """``points`` (a table or subquery of run_id, key, step, value, chunk, started_us) as metric_series rows."""
    return f"""
    WITH b AS (
        SELECT *, (row_number() OVER (PARTITION BY run_id, key, chunk, started_us ORDER BY step) - 1)
                  // {SERIES_ROW_POINTS} AS block
        FROM {points}),
    g AS (
        SELECT run_id, key, chunk, started_us, list(step ORDER BY step) AS steps, list(value ORDER BY step) AS vals,
               bool_and(value IS NULL OR isnan(value) OR coalesce(TRY_CAST(value AS FLOAT)::DOUBLE = value, false))
                   AS exact
        FROM b GROUP BY run_id, key, chunk, started_us, block),
    d AS (SELECT *, len(steps) AS n, steps[2]::HUGEINT - steps[1] AS d, steps[-1]::HUGEINT - steps[1] AS span
          FROM g),
    -- evenly spaced, and every step computable in BIGINT from first_step and stride (CASE: each test
    -- only where the one before held, so that no cast overflows)
    r AS (SELECT *, CASE WHEN n = 1 THEN true
                         WHEN d > 0 AND span <= 9223372036854775807 AND (n - 1) * d = span
                         THEN steps = generate_series(steps[1], steps[-1], d::BIGINT)
                         ELSE false END AS regular
          FROM d)
    SELECT run_id, key, chunk, started_us, n, steps[1] AS first_step,
           CASE WHEN n = 1 THEN 1 WHEN regular THEN d::BIGINT END AS stride,
           CASE WHEN NOT regular THEN steps END AS steps, CASE WHEN exact THEN vals::FLOAT[] END AS values32,
           CASE WHEN NOT exact THEN vals END AS values64
    FROM r ORDER BY started_us, run_id, key, chunk, first_step"""   # in the order runs started: store/locality.py


# Two migrations: a team store sets metric_series's own inlining limit before any point goes in
# (migrations.TEAM_BEFORE), and DuckLake takes a table's options only once the table is committed.
SERIES_TABLE = """
CREATE TABLE metric_series (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    chunk INTEGER NOT NULL,
    started_us BIGINT,
    n INTEGER NOT NULL,                -- points
    first_step BIGINT NOT NULL,
    stride BIGINT,                     -- steps are first_step + i * stride; NULL: steps holds them
    steps BIGINT[],
    values32 FLOAT[],                  -- every value exactly a float32
    values64 DOUBLE[]                  -- else
);
"""
SERIES_MOVE = f"""
INSERT INTO metric_series BY NAME {series_sql("metric_history")};
DROP TABLE metric_history;
CREATE VIEW metric_history AS SELECT run_id, key, {SERIES_POINTS}, chunk, started_us FROM metric_series;
"""
