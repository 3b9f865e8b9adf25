"""The nbtrack command on a real store, through click's runner and as a real console script."""
from __future__ import annotations

import json
import shutil
import subprocess

import pandas as pd
import pytest
from click.testing import CliRunner

import nbtrack
from nbtrack.cli import main


@pytest.fixture
def store(ip, store_path):
    ip.run_cell("%%track fit -t rf\nmodel = 'rf'\ndepth = 4\nacc = depth / 10\nimport nbtrack\n"
                "for s in range(3):\n    nbtrack.log(loss=1 / (s + 1))")
    ip.run_cell("%%track fit -t rf -p depth=8\nmodel = 'rf'\ndepth = 4\nacc = depth / 10\nextra = 1 + 1")
    nbtrack.runs()
    return store_path


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_runs_table_json_where_limit(store):
    code, out = _cli("runs", "--store", str(store))
    assert code == 0 and "params.depth" in out and "metrics.acc" in out and out.count("fit") == 2
    code, out = _cli("runs", "--store", str(store), "--json", "--where", "metrics.acc > 0.5")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1 and rows[0]["params.depth"] == 8 and rows[0]["metrics.acc"] == 0.8
    code, out = _cli("runs", "--store", str(store), "--json", "--limit", "1")
    assert json.loads(out)[0]["params.depth"] == 8
    code, out = _cli("runs", "--store", str(store), "--where", "metrics.acc >>")
    assert code == 1 and "could not parse filter" in out


def test_show_and_diff_by_prefix(store):
    ids = nbtrack.runs(store=store)["run_id"].tolist()
    code, out = _cli("show", ids[0][:8], "--store", str(store))
    assert code == 0 and ids[0] in out and "depth = 4" in out and "loss = 0.3333" in out
    assert "model = 'rf'" in out and "source:" in out
    code, out = _cli("diff", ids[0][:6], ids[1][:6], "--store", str(store))
    assert code == 0
    assert "depth: 4 -> 8" in out and "acc: 0.4 -> 0.8" in out and "+extra = 1 + 1" in out
    code, out = _cli("show", "nope", "--store", str(store))
    assert code == 1 and "no run matches 'nope'" in out


def test_sql_is_read_only(store):
    code, out = _cli("sql", "SELECT count(*) AS n FROM runs", "--store", str(store), "--json")
    assert code == 0 and json.loads(out) == [{"n": 2}]
    code, out = _cli("sql", "DELETE FROM runs", "--store", str(store))
    assert code == 1 and "read-only" in out.lower()
    assert len(nbtrack.runs(store=store)) == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export(store, tmp_path, fmt):
    out_file = tmp_path / f"runs.{fmt}"
    code, out = _cli("export", "--format", fmt, "-o", str(out_file), "--store", str(store))
    assert code == 0 and "wrote 2 runs" in out
    frame = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": pd.read_json}[fmt](out_file)
    assert frame["params.depth"].tolist() == [4, 8] and len(frame) == 2


def test_missing_store_and_console_script(tmp_path, store):
    code, out = _cli("runs", "--store", str(tmp_path / "nope.duckdb"))
    assert code == 1 and "no nbtrack store at" in out
    import sys
    from pathlib import Path
    exe = shutil.which("nbtrack", path=str(Path(sys.executable).parent))
    assert exe, "the console script is installed"
    proc = subprocess.run([exe, "runs", "--json"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "NBTRACK_STORE": str(store)})
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 2


def test_python_dash_m_nbtrack(store):
    import sys
    proc = subprocess.run([sys.executable, "-m", "nbtrack", "runs", "--json", "--store", str(store)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 2
