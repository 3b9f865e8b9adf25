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
