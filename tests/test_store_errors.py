"""Every store failure a user can meet is one line naming the real cause and the fix, quickly, from the
API, a tracked cell and the CLI, never a traceback; stored runs that hold the words a text search would
have matched ("lock", "password", "data_path", "permission") change nothing."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import nbtrack
from nbtrack.errors import CorruptStoreError, FilterError, NotAStoreError, StoreBusyError, StoreVersionError
from nbtrack.store import Store

NBTRACK = str(Path(sys.executable).with_name("nbtrack"))
WORDS = "lock password data_path permission Could not set lock on file Corrupt database file"


def _store_with_tricky_text(path: Path) -> None:
    for i in range(20):
        with nbtrack.run(f"{WORDS} {i}", params={"note": WORDS * 10}, tags=["lock"], store=path) as r:
            r.log(loss=1.0)
    nbtrack.runs(store=path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NBTRACK, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    return lines[0][len("Error: "):]


def test_a_damaged_file_is_named_as_damaged_at_once_not_busy(tmp_path, ip, capsys):
    path = tmp_path / "s" / "runs.duckdb"
    _store_with_tricky_text(path)
    data = bytearray(path.read_bytes())
    data[16384:] = os.urandom(len(data) - 16384)     # every block after the headers fails its checksum
    path.write_bytes(bytes(data))
    expected = re.escape(f"{path} is damaged and cannot be read (") + "(?:IO Error: )?" + \
        re.escape("Corrupt database file: computed checksum ") + r"\d+ does not match stored checksum \d+ in block at location \d+" + \
        re.escape(f"); move it aside (mv {path} {path}.damaged) and nbtrack starts a new store; runs not yet "
                  f"imported wait in {path}.spool and go into the new one")
    started = time.monotonic()
    with pytest.raises(CorruptStoreError) as info:
        nbtrack.runs(store=path)
    assert re.fullmatch(expected, str(info.value)) and time.monotonic() - started < 5   # no 30 s "busy" wait
    assert re.fullmatch(expected, _one_error_line(_cli("runs", "--store", str(path), cwd=tmp_path)))
    nbtrack.connect(path)
    started = time.monotonic()
    result = ip.run_cell("%%track\nx = len('abcdef') * 7\nx")
    assert result.success and result.result == 42 and time.monotonic() - started < 5
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nbtrack warning:")]
    assert len(warnings) == 1 and "is damaged and cannot be read" in warnings[0]
    path.rename(path.with_name("runs.duckdb.damaged"))   # the fix the line names: the spooled run is kept
    assert nbtrack.runs(store=path)["metrics.x"].tolist() == [42.0]


def test_a_store_from_a_newer_nbtrack(tmp_path):
    path = tmp_path / "runs.duckdb"
    _store_with_tricky_text(path)
    with Store(path).connect() as con:
        con.execute("INSERT INTO schema_migrations VALUES ('9999_future', now(), '9.9')")
    line = (f"{path} was written by a newer nbtrack (migration 9999_future is unknown to nbtrack "
            f"{nbtrack.__version__}); upgrade with: pip install -U nbtrack")
    with pytest.raises(StoreVersionError, match=re.escape(line)):
        nbtrack.runs(store=path)
    assert _one_error_line(_cli("runs", "--store", str(path), cwd=tmp_path)) == line


@pytest.mark.parametrize("content, line", [
    (b"lock password data_path permission: not a database", "{path} is not an nbtrack store (not a DuckDB file); "
                                                             "point NBTRACK_STORE or --store at another path"),
    (None, "{path} is a DuckDB file but not an nbtrack store (it has no schema_migrations table); point "
           "NBTRACK_STORE or --store at another path"),
])
def test_a_file_that_is_not_a_store(tmp_path, content, line):
    path = tmp_path / "other.duckdb"
    if content is None:
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE lock_password (permission VARCHAR)")
        con.close()
    else:
        path.write_bytes(content)
    line = line.format(path=path)
    with pytest.raises(NotAStoreError, match=re.escape(line)):
        nbtrack.runs(store=path)
    assert _one_error_line(_cli("runs", "--store", str(path), cwd=tmp_path)) == line


def test_a_file_held_by_a_foreign_duckdb_client_is_busy_after_the_wait(tmp_path):
    path = tmp_path / "runs.duckdb"
    _store_with_tricky_text(path)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time\nc = duckdb.connect({str(path)!r})\n"
                               "print('held', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(StoreBusyError) as info:
            with Store(path).connect(timeout=1):
                pass
        assert str(info.value) == f"{path} is held open by another DuckDB client; close it and retry"
        assert 0.9 < time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.communicate()


@pytest.mark.parametrize("where, fragment", [
    ("started_at > 5", "started_at is a time: compare it with a date or time in quotes"),
    ("name = 5", "name is text: quote the value"),
    ("duration_s > 'long'", "duration_s is a number"),
    ("(" * 200 + "name = 'a'" + ")" * 200, "nesting deeper than 50 levels"),
    ("not " * 5000 + "name = 'a'", "nesting deeper than 50 levels"),
    ("name in (" + ", ".join(f"'{i}'" for i in range(20_000)) + ")", "more than 10,000 values in one in (...) list"),
    (" or ".join(["name = 'a'"] * 101), "more than 100 comparisons"),
    ("metrics.acc > 1" + "0" * 5000, "a number of 5,001 digits is too long"),
])
def test_filters_that_cannot_apply_are_filter_errors_with_a_position(tmp_path, where, fragment):
    path = tmp_path / "runs.duckdb"
    with nbtrack.run("a", params={"x": 1}, store=path):
        pass
    with pytest.raises(FilterError) as info:
        nbtrack.runs(where=where, store=path)
    assert fragment in str(info.value) and "at position" in str(info.value)
    from click.testing import CliRunner

    from nbtrack.cli import main

    result = CliRunner().invoke(main, ["runs", "--store", str(path), "--where", where])   # argv too long for exec
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit and fragment in result.output


def test_long_in_lists_and_many_terms_within_the_limits_run(tmp_path):
    path = tmp_path / "runs.duckdb"
    for i in range(3):
        with nbtrack.run(f"r{i}", params={"x": i, "t": f"v{i}"}, store=path):
            pass
    many = ", ".join(str(i) for i in range(10_000))
    assert len(nbtrack.runs(where=f"params.x in ({many})", store=path)) == 3
    assert len(nbtrack.runs(where="params.t in ('v1', 2, true, 'v2')", store=path)) == 2
    assert len(nbtrack.runs(where=" or ".join([f"params.x = {i}" for i in range(100)]), store=path)) == 3
    assert len(nbtrack.runs(where="(" * 50 + "params.x = 1" + ")" * 50, store=path)) == 1
    assert len(nbtrack.runs(where="started_at > '2000-01-01' and started_at < '2999-01-01T00:00Z'", store=path)) == 3
