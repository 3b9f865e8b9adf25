"""The store file: broken, newer, read-only, full; crash recovery and idempotent imports."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.cli import main
from nbtrack.errors import NotAStoreError, StoreVersionError
from nbtrack.recorder.session import session
from nbtrack.store import Store

from helpers import assert_kept_apart, run_py, same_start_runs


def _warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("nbtrack warning:")]


def test_a_file_that_is_not_a_store_warns_once_and_the_cell_still_runs(ip, tmp_path, capsys):
    bad = tmp_path / "notes.duckdb"
    bad.write_text("these are my notes, not a database")
    nbtrack.connect(bad)
    result = ip.run_cell("%%track\nx = 41 + 1\nx")
    out = capsys.readouterr()
    assert result.success and result.result == 42 and ip.user_ns["x"] == 42
    lines = _warning_lines(out.err)
    assert len(lines) == 1 and str(bad) in lines[0] and "not an nbtrack store" in lines[0]
    cli = CliRunner().invoke(main, ["runs", "--store", str(bad)])
    assert cli.exit_code == 1 and "not an nbtrack store" in cli.output and str(bad) in cli.output
    assert bad.read_text() == "these are my notes, not a database"


def test_a_duckdb_file_of_another_application(ip, tmp_path, capsys):
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE sales (x INT)")
    con.close()
    nbtrack.connect(other)
    assert ip.run_cell("%%track\ny = 2").success
    lines = _warning_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "no schema_migrations table" in lines[0]
    with pytest.raises(NotAStoreError):
        nbtrack.runs(store=other)


def test_a_store_from_a_newer_nbtrack(ip, store_path, capsys):
    from nbtrack.recorder.sync import syncer
    ip.run_cell("%%track\nx = 1")
    syncer.flush()  # the kernel's own import of that run is done: the file is free
    con = duckdb.connect(str(store_path))
    con.execute("INSERT INTO schema_migrations VALUES ('0099_from_the_future', now(), '9.0')")
    con.close()
    session.tracker.reset()   # the next cell checks the store again
    assert ip.run_cell("%%track\nx = 2").success
    lines = _warning_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "newer nbtrack" in lines[0] and "pip install -U nbtrack" in lines[0]
    with pytest.raises(StoreVersionError, match="0099_from_the_future"):
        nbtrack.runs(store=store_path)
    cli = CliRunner().invoke(main, ["runs", "--store", str(store_path)])
    assert cli.exit_code == 1 and "newer nbtrack" in cli.output


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_a_read_only_folder(ip, capsys):
    src, ro = Path(tempfile.mkdtemp(prefix="nbtrack-src-")), Path(tempfile.mkdtemp(prefix="nbtrack-ro-"))
    if not _mount("--bind", "-o", "ro", str(src), str(ro)):
        pytest.skip("cannot make a read-only bind mount here")
    try:
        nbtrack.connect(ro / "store" / "runs.duckdb")
        result = ip.run_cell("%%track\nz = 6 * 7\nz")
        assert result.success and result.result == 42
        lines = _warning_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "read-only file system" in lines[0] and str(ro) in lines[0]
        cli = CliRunner().invoke(main, ["runs", "--store", str(ro / "store" / "runs.duckdb")])
        assert cli.exit_code == 1
    finally:
        subprocess.run(["umount", str(ro)])
        ro.rmdir()
        shutil.rmtree(src)


def test_a_full_disk(ip, capsys):
    mnt = Path(tempfile.mkdtemp(prefix="nbtrack-full-"))
    if not _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        with open(mnt / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
            except OSError:
                pass
        nbtrack.connect(mnt / "runs.duckdb")
        result = ip.run_cell("%%track\nw = sum(range(10))\nw")
        assert result.success and result.result == 45
        lines = _warning_lines(capsys.readouterr().err)
        assert len(lines) == 1 and "disk is full" in lines[0] and str(mnt) in lines[0]
    finally:
        subprocess.run(["umount", str(mnt)])
        mnt.rmdir()


def test_killed_process_leaves_a_running_run_that_is_later_marked_crashed(tmp_path, store_path):
    code = textwrap.dedent(f"""
        import os, signal, nbtrack
        with nbtrack.run("done", store={str(store_path)!r}) as r:
            r.log(loss=1.0)
        with nbtrack.run("doomed", store={str(store_path)!r}) as r:
            r.log(loss=0.5)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = run_py(code, tmp_path)
    assert proc.returncode == -signal.SIGKILL
    frame = nbtrack.runs(store=store_path)
    statuses = dict(zip(frame["name"], frame["status"]))
    assert statuses == {"done": "finished", "doomed": "crashed"}
    doomed = nbtrack.get(frame.run_id[frame["name"] == "doomed"].iloc[0], store=store_path)
    assert "ended before the run finished" in doomed.error["message"]


def _spool_only(code: str, cwd: Path, store: Store) -> None:
    """Run a writer script while holding the store's lock, so that it cannot import its own spool."""
    from nbtrack.store.lock import FileLock

    lock = FileLock(store.lock_path)
    lock.acquire()
    try:
        assert run_py(code, cwd).returncode == 0
    finally:
        lock.release()


def test_import_is_idempotent_after_a_kill_between_commit_and_cleanup(tmp_path, store_path):
    code = textwrap.dedent(f"""
        import nbtrack
        for i in range(3):
            with nbtrack.run(f"r{{i}}", params={{"i": i}}, store={str(store_path)!r}) as r:
                r.log(loss=float(i))
    """)
    store = Store(store_path)
    # the spool as the writer left it, kept as if the importer had died after COMMIT and before
    # deleting the files
    _spool_only(code, tmp_path, store)
    saved = tmp_path / "saved"
    shutil.copytree(store.spool.dir, saved)
    assert len(nbtrack.runs(store=store_path)) == 3
    shutil.rmtree(store.spool.dir)
    shutil.copytree(saved, store.spool.dir)
    frame = nbtrack.runs(store=store_path)
    assert len(frame) == 3 and frame["params.i"].tolist() == [0, 1, 2]
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM metric_history").fetchall() == [(3,)]
        assert con.execute("SELECT count(*) FROM params").fetchall() == [(3,)]


def test_points_imported_before_their_run_are_found_once_the_run_arrives(tmp_path, store_path):
    """A run's points files imported while its record is missing (set aside, or not there yet) carry no
    started_us (store/locality.py); the record's import gives it to them, and the run reads whole."""
    code = textwrap.dedent(f"""
        import nbtrack
        with nbtrack.run("long", store={str(store_path)!r}) as r:
            for step in range(30_000):
                r.log(loss=1.0 / (step + 1), step=step)
    """)
    store = Store(store_path)
    store.sync()
    _spool_only(code, tmp_path, store)
    held = tmp_path / "records"
    held.mkdir()
    records = sorted(store.spool.dir.glob("run.*"))
    assert records and list(store.spool.dir.glob("pts.*")), "the run wrote points files and records"
    for path in records:
        shutil.move(path, held / path.name)
    with store.connect() as con:   # points only: nothing says where their run is yet
        assert con.execute("SELECT count(*) FROM metric_history WHERE started_us IS NULL").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    for path in held.iterdir():
        shutil.move(path, store.spool.dir / path.name)
    run = nbtrack.get(nbtrack.runs(store=store_path).run_id[0], store=store_path)
    history = run.history()
    assert len(history) == 30_000 and history["step"].tolist() == list(range(30_000))
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM metric_history WHERE started_us IS NULL").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM metric_curves WHERE started_us IS NULL").fetchone()[0] == 0


def test_a_foreign_duckdb_client_holding_the_file_is_waited_for(tmp_path, store_path):
    nbtrack.run("one", store=store_path).__enter__().__exit__(None, None, None)
    assert len(nbtrack.runs(store=store_path)) == 1
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, time, sys
        con = duckdb.connect({str(store_path)!r})
        print("held", flush=True)
        time.sleep(1.5)
        con.close()
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    frame = nbtrack.runs(store=store_path)
    assert len(frame) == 1
    holder.wait()


def test_kill_9_during_an_import_loses_nothing(tmp_path, store_path):
    from nbtrack.store.lock import FileLock
    code = textwrap.dedent(f"""
        import nbtrack
        for i in range(1500):
            with nbtrack.run("r", params={{"i": i}}, store={str(store_path)!r}) as r:
                r.log(loss=float(i))
    """)
    lock = FileLock(Store(store_path).lock_path)
    lock.acquire()  # keep the writer from importing: the whole spool waits for the importer below
    try:
        assert run_py(code, tmp_path, timeout=300).returncode == 0
    finally:
        lock.release()
    importer = subprocess.Popen([sys.executable, "-c", f"from nbtrack.store import Store; "
                                 f"Store({str(store_path)!r}).sync()"])
    time.sleep(0.8)
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    frame = nbtrack.runs(store=store_path)
    assert len(frame) == 1500 and sorted(frame["params.i"]) == list(range(1500))
    with Store(store_path).connect() as con:
        assert con.execute("SELECT count(*) FROM metric_history").fetchall() == [(1500,)]


def test_a_cell_never_waits_for_a_store_another_process_holds(ip, store_path):
    from nbtrack.store.lock import FileLock
    lock = FileLock(Store(store_path).lock_path)
    lock.acquire()
    try:
        assert ip.run_cell("%%track held\nv = sum(range(5))").success
        run_id = session.last_run_id
        assert list(Store(store_path).spool.dir.glob(f"run.{run_id}.*"))  # recorded in the spool
    finally:
        lock.release()
    assert nbtrack.last().name == "held" and nbtrack.last().metrics == {"v": 10.0}


def test_an_unreadable_spool_file_is_set_aside_and_the_others_are_imported(tmp_path, store_path, capsys):
    for name in ("good", "other"):
        nbtrack.run(name, store=store_path).__enter__().__exit__(None, None, None)
    nbtrack.runs(store=store_path)
    spool = Store(store_path).spool
    bad = spool.dir / ("run." + "f" * 32 + ".000001.json")
    bad.write_text('{"run": {"run_id": "truncated by a dying disk"')
    nbtrack.run("after", store=store_path).__enter__().__exit__(None, None, None)
    frame = nbtrack.runs(store=store_path)
    assert frame["name"].tolist() == ["good", "other", "after"]
    lines = _warning_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "unreadable spool file" in lines[0] and ".unreadable." in lines[0]
    assert not bad.exists() and (spool.dir / f".unreadable.{bad.name}").exists()


def test_a_new_store_file_keeps_the_storage_format_duckdb_1_5_reads(store_path):
    """The team extra pins DuckDB 1.5.5: a store made on a newer DuckDB must still open there."""
    import struct

    nbtrack.runs(store=store_path)   # creates the file
    Store(store_path).sync()
    header = store_path.read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    assert struct.unpack("<Q", header[12:20])[0] <= 68   # 64-68: the versions DuckDB 1.5.5 reads; 2.x: 999


def test_a_tight_loop_of_script_runs_is_imported_in_a_few_batches_not_one_per_run(tmp_path, monkeypatch):
    from nbtrack.recorder import sync
    from nbtrack.store import FileStore

    sync.syncer.flush()
    imports = []
    real = FileStore.sync
    monkeypatch.setattr(FileStore, "sync", lambda self, blocking=True: imports.append(1) or real(self, blocking))
    path = tmp_path / "runs.duckdb"
    t0 = time.monotonic()
    for i in range(300):
        with nbtrack.run("loop", params={"i": i}, store=path) as run:
            run.log(loss=1.0 / (i + 1))
    elapsed = time.monotonic() - t0
    sync.syncer.flush()
    during = len(imports)
    # at most one import per interval while runs keep coming (before: one after every run)
    assert during <= elapsed / sync.INTERVAL + 2, (during, elapsed)
    frame = nbtrack.runs(store=path)
    assert sorted(frame["params.i"]) == list(range(300)) and set(frame["status"]) == {"finished"}


def test_a_write_ahead_log_older_than_the_files_last_checkpoint_is_set_aside_and_no_run_is_lost(tmp_path, capfd):
    # DuckDB can leave its log behind when a process is killed right after a checkpoint (seen under
    # tests/test_kill.py's random SIGKILLs on 1.5.5); made here as it happens: a process commits and is
    # killed before checkpointing, the next open checkpoints that log into the file, and the old log is back
    path = tmp_path / "runs.duckdb"
    with nbtrack.run("before", store=path):
        pass
    nbtrack.runs(store=path)
    code = textwrap.dedent(f"""
        import os, signal, duckdb
        con = duckdb.connect({str(path)!r}, config={{"checkpoint_threshold": "1GB"}})
        con.execute("UPDATE runs SET tags = ['killed'] WHERE name = 'before'")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert run_py(code, tmp_path).returncode == -signal.SIGKILL
    wal = path.with_name("runs.duckdb.wal")
    stale = wal.read_bytes()
    assert nbtrack.runs(store=path)["tags"].tolist() == [["killed"]]   # replayed and checkpointed
    wal.write_bytes(stale)
    capfd.readouterr()
    with nbtrack.run("after", store=path):
        pass
    frame = nbtrack.runs(store=path)
    assert sorted(frame["name"]) == ["after", "before"] and frame["tags"].tolist()[0] == ["killed"]
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("nbtrack warning:")]
    assert len(lines) == 1 and "older than the last checkpoint" in lines[0]
    kept = list(tmp_path.glob("runs.duckdb.wal.stale-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == stale and kept[0].name in lines[0]


def test_a_read_only_file_store_reads_and_never_writes_its_file(ip, tmp_path, capsys):
    path = tmp_path / "shared" / "runs.duckdb"
    with nbtrack.run("before", params={"lr": 0.1}, store=path):
        pass
    nbtrack.runs(store=path)
    before = path.read_bytes()
    store = nbtrack.connect(path, read_only=True)
    assert store.read_only and nbtrack.runs()["name"].tolist() == ["before"]
    assert ip.run_cell("%%track tracked\nx = 1").success
    assert nbtrack.runs()["name"].tolist() == ["before"]          # the cell's run waits in the spool
    assert [p.name.split(".")[0] for p in store.spool.pending()] == ["run", "run"]
    with pytest.raises(duckdb.InvalidInputException, match="attached in read-only mode"):
        with store.connect() as con:
            con.execute("DELETE FROM runs")
    assert path.read_bytes() == before
    nbtrack.connect(path)                                       # writable again: the spooled run lands
    assert sorted(nbtrack.runs()["name"]) == ["before", "tracked"]


def test_s3_credentials_come_from_the_aws_variables_else_the_profile(tmp_path):
    from nbtrack.store import objectstore

    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = d'ef\n"
                                     "[team]\naws_access_key_id = AKTEAM\naws_secret_access_key = t\n")
    (aws / "config").write_text("[profile team]\nregion = eu-west-3\nendpoint_url = https://minio.example:9000\n")
    home = {"HOME": str(tmp_path)}
    assert objectstore.secret_options({"HOME": str(tmp_path / "nobody")}) is None
    assert objectstore.secret_options(home) == {"KEY_ID": "AKDEFAULT", "SECRET": "d'ef", "REGION": "us-east-1"}
    assert objectstore.secret_options({**home, "AWS_PROFILE": "team"}) == {
        "KEY_ID": "AKTEAM", "SECRET": "t", "REGION": "eu-west-3", "ENDPOINT": "minio.example:9000",
        "USE_SSL": "true", "URL_STYLE": "path"}
    env = {**home, "AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "tok",
           "AWS_DEFAULT_REGION": "ap-south-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
    assert objectstore.secret_options(env) == {
        "KEY_ID": "AKENV", "SECRET": "s", "REGION": "ap-south-1", "SESSION_TOKEN": "tok",
        "ENDPOINT": "127.0.0.1:9000", "USE_SSL": "false", "URL_STYLE": "path"}
    # a quote in a secret stays inside its literal: DuckDB takes the statement and keeps the value
    options = objectstore.secret_options(home)
    con = duckdb.connect()
    try:
        con.execute(objectstore.create_secret_sql(options))
    except duckdb.Error as e:   # no httpfs here (DuckDB without the team extra): the parser still ran
        assert "s3" in str(e).lower() or "httpfs" in str(e).lower(), e
    else:
        shown = con.execute("SELECT secret_string FROM duckdb_secrets()").fetchone()[0]
        assert "AKDEFAULT" in shown and "d'ef" not in shown   # listed redacted


def test_object_store_errors_are_told_apart():
    from nbtrack.store import objectstore

    refused = ("HTTP Error: HTTP GET error reading 'http://h/b/k.parquet' in region 'us-east-1' (HTTP 403 Forbidden)\n\n"
               "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records.\n")
    assert objectstore.refused(refused) == "InvalidAccessKeyId"
    assert not objectstore.unreachable(refused)
    down = "IO Error: Could not connect to server error for HTTP PUT to 'http://127.0.0.1:1/lake/x.parquet'"
    assert objectstore.unreachable(down) and objectstore.refused(down) is None
    assert objectstore.refused("Unable to connect to URL s3://b/k: Forbidden (HTTP code 403)") == "HTTP 403"
    assert not objectstore.unreachable('could not connect to server: Connection refused\n\tIs the server running on '
                                       'host "127.0.0.1" and accepting TCP/IP connections on port 5432?')   # PostgreSQL's
    assert objectstore.is_remote("S3://bucket/p") and not objectstore.is_remote("/data/s3://x")


def test_points_stored_a_row_each_come_back_the_same_as_series(tmp_path):
    """Migrations 0011 and 0012 turn a store's rows of points into series: every point is still there, with its
    chunk and its run's start; odd steps and values included; the history reads the same."""
    import math

    from nbtrack.store import migrations

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    for name, step in migrations.MIGRATIONS:
        if name == "0011_metric_series":
            break
        step(con, False) if callable(step) else con.execute(step)
        con.execute("INSERT INTO schema_migrations VALUES (?, now(), 'old')", [name])
    con.execute("INSERT INTO runs (run_id, seq, experiment, name, status, kind, started_at) "
                "VALUES ('r1', 1, 'e', 'n', 'finished', 'script', TIMESTAMPTZ '2026-01-01 00:00:00+00')")
    us = 1_767_225_600_000_000
    rows = [("loss", s, 1.0 / (s + 1), 0, us) for s in range(300)]                       # doubles, evenly spaced
    rows += [("loss", 300 + s, float(s) / 4, 1, us) for s in range(50)]                 # float32s, a second chunk
    rows += [("odd", s, v, 0, us) for s, v in [(5, math.nan), (5, math.inf), (-2**63, -0.5), (2**63 - 1, 1e-320),
                                                (7, 1e300), (3, 0.1)]]
    rows += [("early", 0, 2.5, 0, None)]   # points that came before their run (no start yet)
    con.executemany("INSERT INTO metric_history (run_id, key, step, value, chunk, started_us) VALUES ('r1', ?, ?, ?, ?, ?)",
                    rows)
    con.close()
    # opened read-only (no migration), it reads the old table
    old = nbtrack.get("r1", store=Store(path, read_only=True))
    assert list(old.history("loss")["step"]) == list(range(350))
    with Store(path, read_only=True).connect() as con:
        from nbtrack.store import curves
        assert set(curves.curves(con, ["r1"])["key"]) == {"loss", "odd"}   # ("early" awaits its adoption)
    Store(path).sync()   # migrates

    def norm(rs):
        return sorted((k, s, math.isnan(v), 0.0 if math.isnan(v) else v, c, u) for k, s, v, c, u in rs)

    with Store(path).connect(read_only=True) as con:
        after = con.execute("SELECT key, step, value, chunk, started_us FROM metric_history").fetchall()
        series = con.execute("SELECT key, chunk, stride, values32 IS NOT NULL FROM metric_series ORDER BY ALL").fetchall()
    assert norm(after) == norm(rows)
    assert series == [("early", 0, 1, True), ("loss", 0, 1, False), ("loss", 1, 1, True), ("odd", 0, None, False)]
    history = nbtrack.get("r1", store=path).history("loss")
    assert list(history["step"]) == list(range(350)) and history["value"].iloc[0] == 1.0


def test_a_long_series_is_stored_in_rows_of_a_bounded_number_of_points(tmp_path):
    """DuckDB reads a whole vector of rows' lists to return one row: a series is cut into rows of at
    most SERIES_ROW_POINTS points, each with its own first step and stride, and reads back whole."""
    from nbtrack.store.schema import SERIES_ROW_POINTS

    path = tmp_path / "runs.duckdb"
    steps = [*range(0, 2 * SERIES_ROW_POINTS), *range(10**9, 10**9 + 500, 5)]   # a jump, then a stride of 5
    with nbtrack.run("long", store=path) as run:
        for s in steps:
            run.log(step=s, loss=s / 7)
    history = nbtrack.get(run.run_id, store=path).history("loss")   # (get imports the run first)
    assert list(history["step"]) == steps and list(history["value"]) == [s / 7 for s in steps]
    with Store(path).connect(read_only=True) as con:
        rows = con.execute("SELECT n, first_step, stride FROM metric_series WHERE key = 'loss' ORDER BY first_step").fetchall()
    assert [n for n, _, _ in rows] == [SERIES_ROW_POINTS, SERIES_ROW_POINTS, 100]
    assert [(f, s) for _, f, s in rows] == [(0, 1), (SERIES_ROW_POINTS, 1), (10**9, 5)]



# a filter over the runs of same_start_runs (a, b and d share a start), as text and as what it means
_HELD = {"a": {"params.lr": 0.1, "params.only_a": 1, "metrics.acc": 0.9}, "b": {"params.lr": 0.2, "metrics.acc": 0.5},
         "c": {"params.lr": 0.3, "metrics.acc": 0.7}, "d": {"params.lr": 0.4, "metrics.acc": 0.1}}
for _name, _held in _HELD.items():
    _held["name"] = _name
_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
        "=": lambda a, b: a == b, "!=": lambda a, b: a != b}
_TERMS = st.one_of(
    st.tuples(st.sampled_from(["params.lr", "metrics.acc", "params.only_a", "metrics.none"]),
              st.sampled_from(sorted(_OPS)), st.sampled_from([0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1])).map(
        lambda t: (f"{t[0]} {t[1]} {t[2]}", lambda held, t=t: t[0] in held and _OPS[t[1]](held[t[0]], t[2]))),
    st.sampled_from(["params.only_a", "metrics.acc", "params.none"]).flatmap(lambda k: st.sampled_from([
        (f"{k} is null", lambda held: k not in held), (f"{k} is not null", lambda held: k in held)])),
    st.tuples(st.sampled_from(["=", "!="]), st.sampled_from(sorted(_HELD))).map(   # a run column between keys
        lambda t: (f"name {t[0]} '{t[1]}'", lambda held, t=t: _OPS[t[0]](held["name"], t[1]))))
_FILTERS = st.recursive(_TERMS, lambda inner: st.one_of(
    st.lists(inner, min_size=2, max_size=5).map(lambda parts: (
        " and ".join(f"({t})" if " or " in t else t for t, _ in parts),
        lambda held, parts=parts: all(f(held) for _, f in parts))),
    st.tuples(inner, inner).map(lambda p: (f"({p[0][0]}) or ({p[1][0]})",
                                           lambda held, p=p: p[0][1](held) or p[1][1](held))),
    inner.map(lambda p: (f"not ({p[0]})", lambda held, p=p: not p[1](held)))), max_leaves=8)


def test_filters_of_any_shape_pick_the_same_runs_when_runs_share_a_start(tmp_path, monkeypatch):
    """Terms joined by and are compiled to one intersection of starts (locality.has_rows), not one join per
    term, run columns after them: any mix of and, or, not, is null and run columns, over runs that share
    a start and one that does not, picks the runs that the filter means."""
    store = Store(tmp_path / "s.duckdb")
    same_start_runs(store, monkeypatch)

    @settings(max_examples=150, deadline=None)
    @given(_FILTERS)
    @example(("params.lr > 0 and name != 'a' and metrics.acc > 0.2 and name = 'c'",   # two of each, apart
              lambda held: held["name"] == "c"))
    def picks(made):
        text, means = made
        got = sorted(nbtrack.runs(where=text, store=store).get("name", []))
        assert got == sorted(n for n, held in _HELD.items() if means(held)), text

    picks()


def test_runs_that_start_in_the_same_microsecond_keep_their_own_values(tmp_path, monkeypatch):
    """Reads of many runs join a run's rows by its start (store/locality.py). Runs that share a start
    keep their own params and metrics in every read: in one import, one after another, after a copy
    to another store, and in a store opened read-only from before shared starts were listed."""
    from nbtrack.store import transfer

    path = tmp_path / "s.duckdb"
    store = Store(path)
    at = same_start_runs(store, monkeypatch)
    assert_kept_apart(store)
    us = int(round(at * 1e6))
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT us FROM shared_starts").fetchall() == [(us,)]
    copy = Store(tmp_path / "copy.duckdb")
    transfer.copy_runs(store, copy)
    with copy.connect(read_only=True) as con:
        assert con.execute("SELECT us FROM shared_starts").fetchall() == [(us,)]
    assert_kept_apart(copy)
    old = tmp_path / "old.duckdb"   # as a store from before the list was kept, opened read-only
    shutil.copy(path, old)
    con = duckdb.connect(str(old))
    con.execute("DROP TABLE shared_starts")
    con.execute("DELETE FROM schema_migrations WHERE name = '0013_shared_starts'")
    con.close()
    assert_kept_apart(Store(old, read_only=True))


_NUMBERS = st.one_of(st.integers(-(2 ** 70), 2 ** 70), st.floats(allow_nan=False, allow_infinity=False, width=64),
                     st.sampled_from([2 ** 53, 2 ** 53 + 1, 2.0 ** 53, 2 ** 63, 2 ** 64 + 1, -(2 ** 70) - 1]))


@settings(max_examples=25, deadline=None)
@given(values=st.lists(_NUMBERS, min_size=1, max_size=6))
@example(values=[2 ** 53, 2 ** 53 + 1, 2.0 ** 53, 2 ** 64, 2 ** 64 + 1, -(2 ** 70) - 1])   # a DOUBLE ties each pair
@example(values=[0.5, 0, -0.0, 2 ** 63 - 1, 2 ** 63, 1e20])
@example(values=[1e300])   # no literal to compare with: the test itself once wrote `in ()`
def test_a_filter_compares_a_params_numbers_as_python_does(tmp_path_factory, values):
    """Numbers of one param (ints past 2^53 and past 64 bits, which a DOUBLE rounds together; floats; both
    zeros) recorded run by run, then filtered with each comparison and `in`, against each value and its
    neighbours: the runs picked are those Python's own comparison picks (ints exactly, beside floats too)."""
    path = tmp_path_factory.mktemp("numbers") / "runs.duckdb"
    for i, value in enumerate(values):
        with nbtrack.run(f"r{i}", params={"x": value}, store=path):
            pass
    literals = {v for v in values if abs(v) < 1e300} | {v + d for v in values if isinstance(v, int) for d in (-1, 1)}
    for literal in sorted(literals, key=repr)[:8]:
        text = repr(literal)
        for op, holds in _OPS.items():
            got = sorted(nbtrack.runs(where=f"params.x {op} {text}", store=path).get("name", []))
            assert got == sorted(f"r{i}" for i, v in enumerate(values) if holds(v, literal)), (op, text, values)
    members = sorted(literals, key=repr)[:3]
    if not members:   # every value a float past 1e300, which no filter literal reaches
        return
    got = sorted(nbtrack.runs(where=f"params.x in ({', '.join(map(repr, members))})", store=path).get("name", []))
    assert got == sorted(f"r{i}" for i, v in enumerate(values) if any(v == m for m in members)), (members, values)
