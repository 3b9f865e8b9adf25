"""Nothing nbtrack runs or writes can be turned against the user: nbtrack sql only reads, and no recorded
string becomes code in an exported script."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.cli import main
from nbtrack.recorder import environment
from nbtrack.recorder.run import ActiveRun
from nbtrack.store import Store

from strategies import ODD_TEXT, VALUES, same

PAYLOADS = ["x\nopen('PWNED','w').write('1')\n#", '"""\nopen("PWNED","w")\n"""', "'''\nopen('PWNED','w')\n'''",
            "x\ropen('PWNED','w')", "x\u2028open('PWNED','w')", "x\x0cimport os; os.system('touch PWNED')",
            "a) or open('PWNED','w') or (b", "{open('PWNED','w')}", "\\\nopen('PWNED','w')", "# -*- coding: rot13 -*-"]
HOSTILE = st.one_of(st.sampled_from(PAYLOADS), st.tuples(ODD_TEXT, st.sampled_from(PAYLOADS)).map("".join))


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "runs.duckdb"
    with nbtrack.run("a", params={"x": 1}, store=path) as run:
        run.log(loss=0.5)
    return path


@pytest.mark.parametrize("query", [
    "DELETE FROM runs", "INSERT INTO runs (run_id) VALUES ('x')", "UPDATE runs SET name = 'x'", "DROP TABLE runs",
    "CREATE TABLE t AS SELECT 1", "COPY runs TO '{out}'", "COPY (SELECT * FROM runs) TO '{out}' (FORMAT csv)",
    "EXPORT DATABASE '{dir}'", "INSTALL httpfs", "LOAD httpfs", "ATTACH '{other}' AS o", "SET threads = 1",
    "CALL pragma_version()", "CHECKPOINT", "SELECT 1; DELETE FROM runs", "PRAGMA threads=1",
    "PRAGMA enable_profiling", "PRAGMA enable_checkpoint_on_shutdown", "PRAGMA table_info('runs'); DELETE FROM runs",
])
def test_sql_refuses_every_statement_that_is_not_a_read(store, tmp_path, query):
    query = query.format(out=tmp_path / "out.csv", dir=tmp_path / "export", other=tmp_path / "other.duckdb")
    result = CliRunner().invoke(main, ["sql", query, "--store", str(store)])
    assert result.exit_code == 1 and "nbtrack sql" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "export").exists()
    assert not (tmp_path / "other.duckdb").exists()
    assert len(nbtrack.runs(store=store)) == 1


@pytest.mark.parametrize("query", ["SELECT * FROM read_csv('{csv}')", "SELECT * FROM read_text('{csv}')",
                                   "SELECT * FROM '{csv}'", "SELECT * FROM glob('{dir}/*')"])
def test_sql_reads_other_files_only_when_allowed(store, tmp_path, query):
    csv = tmp_path / "secret.csv"
    csv.write_text("a,b\n1,2\n")
    query = query.format(csv=csv, dir=tmp_path)
    refused = CliRunner().invoke(main, ["sql", query, "--store", str(store)])
    assert refused.exit_code == 1 and "file system operations are disabled" in refused.output
    allowed = CliRunner().invoke(main, ["sql", query, "--store", str(store), "--allow-files", "--json"])
    assert allowed.exit_code == 0, allowed.output
    still = CliRunner().invoke(main, ["sql", f"COPY runs TO '{tmp_path / 'x.csv'}'", "--store", str(store),
                                      "--allow-files"])
    assert still.exit_code == 1 and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("query", ["SELECT count(*) FROM runs", "DESCRIBE runs", "SHOW TABLES", "SUMMARIZE params",
                                   "EXPLAIN SELECT * FROM runs", "WITH a AS (SELECT 1 AS n) SELECT * FROM a",
                                   "FROM runs SELECT name", "PRAGMA table_info('runs')", "pragma database_size",
                                   "PRAGMA show_tables;"])
def test_sql_runs_reading_statements(store, query):
    result = CliRunner().invoke(main, ["sql", query, "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=HOSTILE, experiment=HOSTILE, tag=HOSTILE, key=HOSTILE, metric=HOSTILE, package=HOSTILE,
       value=VALUES, provenance=HOSTILE)
def test_an_exported_script_does_only_what_the_run_did(tmp_path_factory, monkeypatch, name, experiment, tag, key,
                                                       metric, package, value, provenance):
    work = tmp_path_factory.mktemp("export")
    store = Store(work / "runs.duckdb")
    env = dict(environment.environment(), packages='{"%s": "%s"}' % (package.replace('"', "'"), package[:8].replace('"', "'")))
    monkeypatch.setattr(environment, "environment", lambda: env)
    run = ActiveRun(store, name=name, experiment=experiment, kind="cell", tags=[tag], source="done = 1\n")
    run.params.update({"lr": (value, "literal"), key: (value, "literal")})
    run.metrics.update({metric: (1.0, None, "cell"), "done": (1.0, None, "cell")})
    run.provenance = {"helper": {"import": provenance}, provenance[:20] or "p": {"import": "import os"},
                      "fn": {"definition": "def fn():\n    return 1\n"}}
    run.start()
    run.finish()
    monkeypatch.undo()
    path = work / "exported.py"
    text = nbtrack.export_script(run.run_id, path, store=store)
    ast.parse(text)                                            # it is Python
    proc = subprocess.run([sys.executable, str(path)], cwd=work, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (work / "PWNED").exists()
    assert proc.stdout.count("(recorded: 1.0)") == 2            # both metrics printed, nothing else ran
    namespace: dict = {"__name__": "exported"}
    exec(compile(text, str(path), "exec"), namespace)         # the params come back as they were recorded
    # as recorded: the value itself, unless a part of it was redacted (generated: {'CREDENTIAL': []})
    got = nbtrack.get(run.run_id, store=store)
    recorded, redacted = got.params, set(got.info["redacted"])
    if "params.lr" not in redacted:
        assert same(recorded["lr"], value)
    assert same(namespace["lr"], recorded["lr"])
    if key.isidentifier() and key not in ("done", "lr", "fn", "helper"):
        assert same(namespace[key], recorded[key])
