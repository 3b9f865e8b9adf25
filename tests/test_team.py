"""The team store on DuckLake with a real PostgreSQL catalog (a throwaway cluster on 127.0.0.1)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import nbtrack
from nbtrack.errors import StoreError
from nbtrack.store import Store
from nbtrack.recorder.secrets import redact_passwords
from nbtrack.store import ducklake

from pgcluster import PASSWORD, Cluster, server_bin

REQUIRED = os.environ.get("NBTRACK_REQUIRE_TEAM") == "1"


def _missing() -> str | None:
    if server_bin() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    try:
        ducklake._Extensions().files(["postgres", "ducklake"])
    except StoreError as e:
        return str(e)
    return None


_why = _missing()
if _why and REQUIRED:
    raise RuntimeError(f"NBTRACK_REQUIRE_TEAM=1 but the team store cannot be tested: {_why}")
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

NBTRACK = str(Path(sys.executable).with_name("nbtrack"))


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.destroy()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Team spools live in the user's cache folder: each test (and its subprocesses) gets its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def team(cluster, tmp_path):
    """A fresh catalog database and data folder: (url, data_path)."""
    return cluster.url(cluster.new_database()), str(tmp_path / "lake")


def _cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([NBTRACK, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _local_runs(ip, store_path):
    """Three tracked cells with a curve, printed output, a saved DataFrame and a failure."""
    ip.run_cell("import nbtrack, numpy as np, pandas as pd")
    for lr in (0.1, 0.01):
        r = ip.run_cell(textwrap.dedent(f"""\
            %%track fit --save table
            lr = {lr}
            for step in range(50):
                nbtrack.log(loss=1 / (step + 1) + lr)
            table = pd.DataFrame({{"a": np.arange(5) * lr}})
            print("trained with", lr)
            acc = 0.9 - lr
            """))
        assert r.success
    ip.run_cell("%%track boom\nx = 1\nraise ValueError('bad')")
    return nbtrack.runs(store=store_path)


def test_push_is_idempotent_and_pull_brings_everything_back(ip, store_path, team, tmp_path):
    url, data = team
    local = _local_runs(ip, store_path)
    assert len(local) == 3
    env = {"NBTRACK_DATA_PATH": data}
    first = _cli("push", "--to", url, "--store", str(store_path), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "3 new, 0 updated, 0 already there, 0 failed" in first.stdout
    again = _cli("push", "--to", url, "--store", str(store_path), cwd=tmp_path, env=env)
    assert "0 new, 0 updated, 3 already there, 0 failed" in again.stdout, again.stdout + again.stderr

    shared = Store(url)
    remote = nbtrack.runs(store=shared)
    assert sorted(remote["run_id"]) == sorted(local["run_id"])
    assert remote.set_index("run_id")["metrics.acc"].dropna().to_dict() == \
        local.set_index("run_id")["metrics.acc"].dropna().to_dict()
    assert set(remote["status"]) == {"finished", "failed"}
    fit = local[local["name"] == "fit"].run_id.iloc[0]
    a, b = nbtrack.get(fit, store=store_path), nbtrack.get(fit, store=shared)
    pd.testing.assert_frame_equal(a.history().reset_index(drop=True), b.history().reset_index(drop=True))
    assert len(b.history()) == 50
    assert [d["data"] for d in b.displays] == [d["data"] for d in a.displays]
    assert any(b"trained with" in (d["data"] or b"") for d in b.displays)
    pd.testing.assert_frame_equal(b.load("table"), a.load("table"))
    assert b.source == a.source and b.env["packages"] == a.env["packages"]

    pulled = tmp_path / "pulled" / "runs.duckdb"
    out = _cli("pull", "--from", url, "--store", str(pulled), cwd=tmp_path)
    assert "3 new" in out.stdout, out.stdout + out.stderr
    c = nbtrack.get(fit, store=pulled)
    pd.testing.assert_frame_equal(c.load("table"), a.load("table"))
    assert len(c.history()) == 50
    assert "0 new, 0 updated, 3 already there" in _cli("pull", "--from", url, "--store", str(pulled),
                                                       cwd=tmp_path).stdout


def test_push_since_and_experiment_select_runs(ip, store_path, team, tmp_path):
    url, data = team
    local = _local_runs(ip, store_path)
    second = local.run_id.iloc[1]
    out = _cli("push", "--to", url, "--store", str(store_path), "--since", second[:8], cwd=tmp_path,
               env={"NBTRACK_DATA_PATH": data})
    assert "1 new" in out.stdout, out.stdout + out.stderr
    assert list(nbtrack.runs(store=Store(url))["run_id"]) == [local.run_id.iloc[2]]
    assert "runs" not in out.stderr   # one batch: no progress lines, just the summary
    bad = _cli("push", "--to", url, "--store", str(store_path), "--since", "last tuesday", cwd=tmp_path)
    assert bad.returncode == 1 and "neither a date" in bad.stderr


def test_a_cell_records_into_the_team_store_and_the_panel_shows_it(ip, team, tmp_path):
    url, data = team
    ip.run_cell(f"%nbtrack store '{url}' --data-path {data}")
    for lr in (0.1, 0.2):
        assert ip.run_cell(f"%%track fit\nlr = {lr}\nacc = 1 - lr * 2").success
    frame = nbtrack.runs()
    assert list(frame["params.lr"]) == [0.1, 0.2]
    assert set(frame["user"]) == {nbtrack.recorder.environment.USER}
    assert frame["host"].notna().all()
    panel = nbtrack.compare(color="user")
    try:
        assert panel.table["n"] == 2
        assert panel.table["store"] == Store(url).path and PASSWORD not in panel.table["store"]
        spec = panel.specs["scatter"]
        assert spec["encoding"]["color"]["field"] == "user"
        only_me = nbtrack.runs(where=f"user = '{nbtrack.recorder.environment.USER}'")
        assert len(only_me) == 2
        # a run committed from another machine (its own spool) appears in the open panel by itself
        other = subprocess.run(
            [sys.executable, "-c", f"import nbtrack\nwith nbtrack.run('remote', params={{'lr': 0.3}}, "
                                   f"store=nbtrack.connect({url!r})):\n    pass\n"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "other-machine")})
        assert other.returncode == 0, other.stderr
        deadline = time.monotonic() + 20
        while panel.table["n"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert panel.table["n"] == 3
    finally:
        panel.close()
    assert Path(data).exists()   # data files (or at least the folder) live in the shared path


def test_eight_writer_processes_lose_nothing(team, tmp_path):
    url, data = team
    writer = textwrap.dedent(f"""
        import sys, nbtrack
        w = int(sys.argv[1])
        nbtrack.connect({url!r}, data_path={data!r})
        for i in range(100):
            with nbtrack.run("w", params={{"writer": w, "i": i}}) as r:
                r.log(loss=1.0 / (i + 1), step=0)
        """)
    # writers 0-3 share a machine's spool; 4-7 each play another machine (own spool), so DuckLake
    # itself sees concurrent commits and retries its conflicts
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(w)], cwd=tmp_path, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "NBTRACK_SYSTEM_METRICS": "0",
                                              "XDG_CACHE_HOME": str(tmp_path / f"machine{max(w - 3, 0)}")})
             for w in range(8)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    assert not any("warning" in e for e in errors), errors
    frame = nbtrack.runs(store=Store(url))
    assert len(frame) == 800
    assert frame["run_id"].is_unique
    assert (frame["status"] == "finished").all()
    pairs = set(zip(frame["params.writer"], frame["params.i"]))
    assert pairs == {(w, i) for w in range(8) for i in range(100)}
    # everyone's runs, pulled for offline work in batches, with a progress line per batch
    pulled = _cli("pull", "--from", url, "--store", str(tmp_path / "mine" / "runs.duckdb"), cwd=tmp_path)
    assert "800 new, 0 updated, 0 already there, 0 failed" in pulled.stdout, pulled.stdout + pulled.stderr
    assert "100/800 runs" in pulled.stderr and "800/800 runs" in pulled.stderr
    assert len(nbtrack.runs(store=tmp_path / "mine" / "runs.duckdb")) == 800


def test_cells_keep_working_while_postgres_is_down_and_push_sends_the_runs_later(ip, cluster, tmp_path, capsys):
    dbname = cluster.new_database()
    url, data = cluster.url(dbname), str(tmp_path / "lake")
    ip.run_cell(f"%nbtrack store '{url}' --data-path {data}")
    assert ip.run_cell("%%track before\nacc = 1 - 0.5").success
    assert len(nbtrack.runs()) == 1
    capsys.readouterr()
    cluster.stop()
    try:
        cluster.wait_down()
        results = [ip.run_cell(f"%%track offline\nlr = {lr}\nacc = 1 - lr\nacc") for lr in (0.1, 0.2)]
        assert all(r.success for r in results)
        assert [r.result for r in results] == [0.9, 0.8]
        from nbtrack.recorder.run import syncer

        syncer.flush()
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "nbtrack warning" in line]
        assert len(lines) == 1, err
        assert "cannot reach the team store" in lines[0] and "nbtrack push" in lines[0]
        assert PASSWORD not in err
        local = nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb")
        assert list(local["name"]) == ["offline", "offline"]
        assert set(local["status"]) == {"finished"}
    finally:
        cluster.start()
    out = _cli("push", "--to", url, cwd=tmp_path)
    assert "2 new" in out.stdout, out.stdout + out.stderr
    remote = nbtrack.runs(store=Store(url))
    assert sorted(remote["name"]) == ["before", "offline", "offline"]


def test_a_select_only_role_reads_everything_and_cannot_write(cluster, team, tmp_path):
    url, data = team
    store = Store(url, data_path=data)
    with nbtrack.run("seed", params={"lr": 0.1}, store=store) as r:
        r.log(loss=0.5)
    from nbtrack.recorder.run import syncer

    syncer.flush()
    dbname = url.split("dbname=")[1].split()[0]
    cluster.sql("CREATE ROLE reader LOGIN PASSWORD 'read-only-pw'" if "reader" not in cluster.sql(
        "SELECT rolname FROM pg_roles") else "SELECT 1")
    cluster.sql(f"GRANT CONNECT ON DATABASE {dbname} TO reader; GRANT USAGE ON SCHEMA public TO reader; "
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader", dbname=dbname)
    reader_url = cluster.url(dbname, user="reader", password="read-only-pw")

    ro = Store(reader_url, read_only=True)
    frame = nbtrack.runs(store=ro)
    assert list(frame["name"]) == ["seed"]
    assert len(nbtrack.get(frame.run_id[0], store=ro).history()) == 1

    # even code that ignores read_only cannot write with this role: PostgreSQL refuses
    rw = Store(reader_url, data_path=data)
    with pytest.raises(StoreError) as info:
        with rw.connect() as con:
            con.execute("INSERT INTO runs (run_id, seq, experiment, name, status, kind, started_at) "
                        "VALUES ('x', 0, 'e', 'n', 'finished', 'script', now())")
    assert "read-only-pw" not in str(info.value)
    assert list(nbtrack.runs(store=Store(url))["name"]) == ["seed"]


def test_a_password_never_reaches_the_store_records_logs_or_errors(ip, cluster, team, tmp_path, capsys):
    url, data = team
    assert PASSWORD in url
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import sys, nbtrack
        nbtrack.connect(sys.argv[1], data_path=sys.argv[2])
        with nbtrack.run("job", params={"lr": 0.1}) as r:
            r.log(loss=0.5)
        """))
    proc = subprocess.run([sys.executable, str(script), url, data], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    ip.run_cell(f"%nbtrack store '{url}' --data-path {data}")
    assert ip.run_cell(f"%%track cell\nurl = {url!r}\nprint(url)\nacc = 0.5 * 2").success
    capsys.readouterr()
    frame = nbtrack.runs()
    assert sorted(frame["name"]) == ["cell", "job"]
    with Store(url).connect(read_only=True) as con:
        (command,), = con.execute("SELECT command FROM runs WHERE name = 'job'").fetchall()
    assert PASSWORD not in command and "password=***" in command

    # errors and everything nbtrack prints
    bad = url.replace(f"port={cluster.port}", "port=1")
    with pytest.raises(StoreError) as info:
        nbtrack.runs(store=Store(bad))
    assert PASSWORD not in str(info.value) and "password=***" in str(info.value)
    out = _cli("runs", "--store", bad, cwd=tmp_path)
    assert out.returncode == 1 and PASSWORD not in out.stdout + out.stderr
    shown = _cli("runs", "--store", url, cwd=tmp_path)
    assert shown.returncode == 0 and PASSWORD not in shown.stdout + shown.stderr
    ip.run_cell("%nbtrack")
    assert PASSWORD not in capsys.readouterr().out

    # the catalog (every table in PostgreSQL), the data files, the local store and spool
    dbname = url.split("dbname=")[1].split()[0]
    dump = subprocess.run([str(cluster.bin / "pg_dump"), "-h", str(cluster.dir), "-p", str(cluster.port), "-U",
                           "nbt", dbname], capture_output=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert b"job" in dump.stdout and PASSWORD.encode() not in dump.stdout
    for folder in (Path(data), tmp_path / ".nbtrack"):
        for file in folder.rglob("*"):
            if file.is_file():
                assert PASSWORD.encode() not in file.read_bytes(), file


def test_missing_extensions_name_the_install_command(monkeypatch):
    import duckdb

    monkeypatch.setattr(duckdb, "__version__", "9.9.9")
    with pytest.raises(StoreError, match=r"built for DuckDB 1\.5\.5.*pip install 'nbtrack\[team\]'"):
        ducklake._Extensions().files(["ducklake"])
    monkeypatch.setitem(sys.modules, "duckdb_extension_postgres", None)
    with pytest.raises(StoreError, match=r"postgres extension, which is not installed.*nbtrack\[team\]"):
        ducklake._Extensions().files(["postgres"])


def test_a_team_url_is_never_taken_for_a_file():
    with pytest.raises(StoreError, match="team store URL"):
        from nbtrack.store import resolve_path

        resolve_path("ducklake:postgres:dbname=x password=p")
    assert redact_passwords("dbname=x password='a b' user=u") == "dbname=x password=*** user=u"
    assert redact_passwords("ducklake:postgres:postgresql://me:pw@db/runs") == "ducklake:postgres:postgresql://me:***@db/runs"
    assert ducklake.split_password("dbname=x password=pw user=u") == ("dbname=x user=u", "pw")


def test_sql_is_read_only_and_maintain_keeps_every_run(team, tmp_path):
    url, data = team
    store = Store(url, data_path=data)
    for i in range(3):
        with nbtrack.run("fit", params={"i": i}, store=store) as r:
            for step in range(10):
                r.log(loss=1 / (step + 1), step=step)
    from nbtrack.recorder.run import syncer

    syncer.flush()
    out = _cli("sql", "--store", url, "SELECT count(*) AS n FROM runs", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.split()[-1] == "3", out.stdout + out.stderr
    denied = _cli("sql", "--store", url, "DELETE FROM runs", cwd=tmp_path)
    assert denied.returncode == 1 and "read" in denied.stderr.lower(), denied.stderr
    kept = _cli("maintain", "--store", url, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "inlined rows written to Parquet" in kept.stdout and "orphaned files" in kept.stdout
    assert list(Path(data).rglob("*.parquet")), "maintain wrote the inlined rows to Parquet files"
    frame = nbtrack.runs(store=Store(url))
    assert sorted(frame["params.i"]) == [0, 1, 2]
    assert len(nbtrack.get(frame.run_id[0], store=Store(url)).history()) == 10
    local = _cli("maintain", "--store", str(tmp_path / "x.duckdb"), cwd=tmp_path)
    assert local.returncode == 1 and "team stores" in local.stderr


def test_reproduce_and_export_script_on_a_team_store(ip, team, tmp_path):
    url, data = team
    ip.run_cell(f"%nbtrack store '{url}' --data-path {data}")
    assert ip.run_cell("%%track total\nn = 12\ntotal = float(sum(range(n)))").success
    run_id = nbtrack.runs().run_id.iloc[-1]
    report = nbtrack.reproduce(run_id)   # a fresh process that records into the team store
    assert report.verdict == "identical", str(report)
    assert report.b.info["kind"] == "reproduce"
    assert len(nbtrack.runs()) == 2
    script = nbtrack.export_script(run_id)
    assert PASSWORD not in script


def test_inlined_rows_are_flushed_to_parquet_by_the_writers_themselves(team, tmp_path):
    url, data = team
    writer = textwrap.dedent(f"""
        import sys, time, nbtrack
        nbtrack.connect({url!r}, data_path={data!r})
        for i in range(40):
            with nbtrack.run("w", params={{"writer": int(sys.argv[1]), "i": i}}) as r:
                r.log(loss=1.0 / (i + 1))
            time.sleep(0.03)   # a commit per run or so, as from a notebook
        """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(w)], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "NBTRACK_SYSTEM_METRICS": "0", "NBTRACK_TEAM_FLUSH_COMMITS": "5",
                                   "XDG_CACHE_HOME": str(tmp_path / f"machine{w}")}) for w in range(3)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs) and not any(errors), errors
    with Store(url).connect(read_only=True) as con:
        flushes = con.execute("SELECT count(*) FROM ducklake_snapshots('team') "
                              "WHERE map_contains(changes, 'flushed_inlined')").fetchall()[0][0]
    assert flushes >= 1
    assert list(Path(data).rglob("*.parquet"))
    frame = nbtrack.runs(store=Store(url))
    assert len(frame) == 120 and frame["run_id"].is_unique
    assert set(zip(frame["params.writer"], frame["params.i"])) == {(w, i) for w in range(3) for i in range(40)}


def test_a_killed_writer_is_recorded_as_crashed_on_the_team_store(team, tmp_path):
    url, data = team
    code = textwrap.dedent(f"""
        import os, signal, nbtrack
        from nbtrack.recorder.run import syncer
        nbtrack.connect({url!r}, data_path={data!r})
        with nbtrack.run("finished-first") as r:
            r.log(loss=0.5)
        syncer.flush()
        with nbtrack.run("doomed") as r:
            r.log(loss=1.0)
            syncer.flush()                      # its "running" record is in the spool
            os.kill(os.getpid(), signal.SIGKILL)
        """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9
    frame = nbtrack.runs(store=Store(url)).set_index("name")
    assert frame.loc["finished-first", "status"] == "finished"
    assert frame.loc["doomed", "status"] == "crashed"


def test_a_read_only_session_keeps_its_runs_locally_and_says_so(ip, team, tmp_path, capsys):
    url, data = team
    with nbtrack.run("seed", store=Store(url, data_path=data)):
        pass
    from nbtrack.recorder.run import syncer

    syncer.flush()
    capsys.readouterr()
    ip.run_cell(f"%nbtrack store '{url}' --read-only")
    assert ip.run_cell("%%track mine\nacc = 0.5 * 2").success
    syncer.flush()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "nbtrack warning" in line]
    assert len(lines) == 1 and "read-only" in lines[0] and "nbtrack push" in lines[0], err
    assert list(nbtrack.runs()["name"]) == ["seed"]          # the team store: unchanged
    assert list(nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb")["name"]) == ["mine"]


def test_a_wrong_password_is_named_without_the_password(cluster, team):
    url, _ = team
    wrong = url.replace(PASSWORD, "not-the-Pa55word")
    with pytest.raises(StoreError, match="refused the login") as info:
        nbtrack.runs(store=Store(wrong))
    assert "not-the-Pa55word" not in str(info.value) and PASSWORD not in str(info.value)
