"""The team store on DuckLake with a real PostgreSQL catalog (a throwaway cluster on 127.0.0.1)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

import nbtrack
from nbtrack.errors import StoreError
from nbtrack.store import Store
from nbtrack.secrets import redact_passwords
from nbtrack.store import ducklake, migrations

from helpers import assert_kept_apart, eight_writers, same_start_runs
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
    eight_writers(writer, tmp_path)   # DuckLake retries the conflicts of writers on separate machines
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
        from nbtrack.recorder.sync import syncer

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
    from nbtrack.recorder.sync import syncer

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
    from nbtrack.recorder.sync import syncer

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
    assert local.returncode == 0 and "copied again in key order: 0 rows" in local.stdout, local.stderr


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
        from nbtrack.recorder.sync import syncer
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
    from nbtrack.recorder.sync import syncer

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


# -- issue 11: odd values through push and pull, one exact line per failure, read-only SQL, secrets ----------
WORDS = "lock password data_path permission conflict could not serialize connection refused"


def _tricky_local_runs(path: Path, n: int = 3) -> list[str]:
    ids = []
    for i in range(n):
        with nbtrack.run(f"{WORDS} {i}", params={"note": WORDS, "i": i}, tags=["lock", "permission"],
                         store=path) as r:
            r.log(loss=1.0 / (i + 1))
        ids.append(r.run_id)
    nbtrack.runs(store=path)
    return ids


def test_odd_values_survive_push_and_pull(cluster, tmp_path):
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from nbtrack.store import codec
    from nbtrack.store.transfer import copy_runs
    from strategies import same
    from test_trust import SPECS

    # no shrinking: each example starts a catalog database; the failing example is printed as generated
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow],
              phases=[Phase.explicit, Phase.generate])
    @given(st.lists(SPECS, min_size=1, max_size=3))
    def round_trip(specs):
        folder = tmp_path / uuid.uuid4().hex
        local, back = folder / "local.duckdb", folder / "back.duckdb"
        for spec in specs:
            with nbtrack.run(spec.name, params=spec.params, tags=spec.tags, store=local) as run:
                for step, value in enumerate(spec.curve):
                    run.log(step=step, **{spec.curve_key: value})
            spec.run_id = run.run_id
        team = Store(cluster.url(cluster.new_database()), data_path=str(folder / "lake"))
        assert not copy_runs(Store(local), team).failed
        assert not copy_runs(team, Store(back)).failed
        for store in (team, Store(back)):
            for spec in specs:
                got = nbtrack.get(spec.run_id, store=store)
                assert got.name == codec.text_safe(spec.name) and got.tags == [codec.text_safe(t) for t in spec.tags]
                for key, value in spec.params.items():
                    assert same(got.params[codec.text_safe(key)], value), (key, value)
                curve = got.history(codec.text_safe(spec.curve_key))["value"].tolist()
                assert len(curve) == len(spec.curve)
                assert all(same(a, b) or (a == 0 and b == 0) for a, b in zip(curve, spec.curve))

    round_trip()


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_each_team_store_failure_is_one_line_naming_its_cause(cluster, team, tmp_path):
    """With stored runs full of the words a text search used to match (lock, password, data_path, permission,
    conflict), each failure names its real cause; the password never shows."""
    url, data = team
    local = tmp_path / "local.duckdb"
    _tricky_local_runs(local)
    assert _cli("push", "--to", url, "--data-path", data, "--store", str(local), cwd=tmp_path).returncode == 0
    redacted = redact_passwords(url)
    dbname = url.split("dbname=")[1].split()[0]

    wrong = url.replace(PASSWORD, "not-the-Pa55word")
    assert _one_line(_cli("runs", "--store", wrong, cwd=tmp_path)) == (
        f'Error: the team store {redact_passwords(wrong)} refused the login: FATAL: password authentication failed '
        'for user "nbt"; check the user and password (in the URL, $PGPASSWORD or ~/.pgpass)')

    nodb = url.replace(f"dbname={dbname}", "dbname=no_such_db")
    assert _one_line(_cli("runs", "--store", nodb, cwd=tmp_path)) == (
        f"Error: the team store {redact_passwords(nodb)} names a database that does not exist: FATAL: database "
        '"no_such_db" does not exist; create it (createdb NAME) or fix dbname= in the URL')

    down = url.replace(f"port={cluster.port}", "port=1")
    assert _one_line(_cli("runs", "--store", down, cwd=tmp_path)) == (
        f"Error: cannot reach the team store {redact_passwords(down)}: Connection refused; check that PostgreSQL "
        "is up and the URL is right")

    cluster.sql("CREATE ROLE reader2 LOGIN PASSWORD 'read-only-pw'" if "reader2" not in cluster.sql(
        "SELECT rolname FROM pg_roles") else "SELECT 1")
    cluster.sql(f"GRANT CONNECT ON DATABASE {dbname} TO reader2; GRANT USAGE ON SCHEMA public TO reader2; "
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader2", dbname=dbname)
    reader = cluster.url(dbname, user="reader2", password="read-only-pw")
    more = tmp_path / "more.duckdb"
    _tricky_local_runs(more)
    push = _cli("push", "--to", reader, "--data-path", data, "--store", str(more), cwd=tmp_path)
    assert push.returncode == 1 and "read-only-pw" not in push.stdout + push.stderr
    assert ("refused a write: ERROR: permission denied for table ducklake_snapshot; this role or connection may "
            "only read") in push.stdout
    assert "has no data path" not in push.stdout

    fresh = cluster.url(cluster.new_database())
    no_path = _cli("push", "--to", fresh, "--store", str(local), cwd=tmp_path, env={"NBTRACK_DATA_PATH": ""})
    assert f"the team store {redact_passwords(fresh)} has no data path yet: set NBTRACK_DATA_PATH or pass " \
           "data_path= (a folder every writer can reach) to create it" in no_path.stdout + no_path.stderr

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data folder should be")
    fresh2 = cluster.url(cluster.new_database())
    out = _cli("push", "--to", fresh2, "--data-path", str(blocked / "lake"), "--store", str(local), cwd=tmp_path)
    assert out.returncode == 1
    assert f"cannot write the team store's data path {blocked / 'lake'}: " in out.stdout + out.stderr

    with Store(url).connect() as con:
        con.execute("INSERT INTO schema_migrations VALUES ('9999_future', now(), '9.9')")
    assert _one_line(_cli("runs", "--store", url, cwd=tmp_path)) == (
        f"Error: {redacted} was written by a newer nbtrack (migration 9999_future is unknown to nbtrack "
        f"{nbtrack.__version__}); upgrade with: pip install -U nbtrack")


def test_sql_on_a_team_store_reads_the_lake_and_nothing_else(team, tmp_path):
    url, data = team
    local = tmp_path / "local.duckdb"
    _tricky_local_runs(local)
    assert _cli("push", "--to", url, "--data-path", data, "--store", str(local), cwd=tmp_path).returncode == 0
    with Store(url).connect() as con:   # the runs in Parquet files of the data path, not inlined in the catalog
        con.execute("CALL ducklake_flush_inlined_data('team')").fetchall()
    secret = tmp_path / "secret.csv"
    secret.write_text("k\nv\n")
    ok = _cli("sql", "SELECT count(*) AS n FROM runs", "--store", url, "--json", cwd=tmp_path)
    assert ok.returncode == 0 and '"n": 3' in ok.stdout
    refused = _cli("sql", f"SELECT * FROM read_csv('{secret}')", "--store", url, cwd=tmp_path)
    assert refused.returncode == 1 and "file system operations are disabled" in refused.stderr
    copy = _cli("sql", f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'", "--store", url, cwd=tmp_path)
    assert copy.returncode == 1 and not (tmp_path / "out.csv").exists()
    flush = _cli("sql", "CALL ducklake_flush_inlined_data('team')", "--store", url, cwd=tmp_path)
    assert flush.returncode == 1 and "read-only" in flush.stderr
    allowed = _cli("sql", f"SELECT * FROM read_csv('{secret}')", "--store", url, "--allow-files", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr


def test_no_secret_reaches_the_team_catalog_or_its_parquet(ip, cluster, team, tmp_path, monkeypatch):
    """The secret-channels cell of test_secret_channels, pushed: a pg_dump of the catalog and the Parquet
    files of the data path, read back as values, hold none of the secrets."""
    import pyarrow.parquet as pq

    from test_secret_channels import TRACKED, UNTRACKED

    url, data = team
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "env-Secret-4411-xyz")
    local = tmp_path / ".nbtrack" / "runs.duckdb"
    nbtrack.connect(local)
    secrets = ["sk-proj-Zq81LmN0pQ7rT5vW3xY6aB2c", "ghp_" + "k9M2n" * 7 + "a", "plain-9Q!x7#Lm2", "third-7Hk@2Pz8",
               "fourth-5Rt%9Wq", "env-Secret-4411-xyz", "injected-3Vb&8Nm"]
    ip.user_ns["_injected"] = secrets[6]
    ip.run_cell(UNTRACKED.format(plain=secrets[2], token2=secrets[1], plain3=secrets[3]))
    ip.run_cell(TRACKED.format(name="run", tag="t", experiment="e", token=secrets[0], plain4=secrets[4],
                               token_bytes=secrets[1].encode()))
    nbtrack.runs()
    assert _cli("push", "--to", url, "--data-path", data, "--store", str(local), cwd=tmp_path).returncode == 0
    with Store(url).connect() as con:
        con.execute("CALL ducklake_flush_inlined_data('team')").fetchall()
    dbname = url.split("dbname=")[1].split()[0]
    dump = subprocess.run([str(cluster.bin / "pg_dump"), "-h", str(cluster.dir), "-p", str(cluster.port), "-U",
                           "nbt", dbname], capture_output=True, timeout=60)
    assert dump.returncode == 0 and b"ducklake" in dump.stdout
    texts = [dump.stdout.decode("utf-8", "replace")]
    parquet = list(Path(data).rglob("*.parquet"))
    assert parquet
    for file in parquet:
        texts.append(str(pq.read_table(file).to_pylist()))
    for secret in secrets:
        assert not any(secret in t for t in texts), secret


def test_edits_travel_with_push_and_pull_and_the_latest_edit_of_a_field_wins(team, tmp_path):
    """Tags, labels, notes, stars and deletions go with push and pull; when two people edit the same
    field of a run, the later edit wins wherever the edits meet, whichever was pushed last."""
    url, data = team
    ana, ben = tmp_path / "ana" / "runs.duckdb", tmp_path / "ben" / "runs.duckdb"
    ids = []
    for i in range(3):
        with nbtrack.run("fit", params={"i": i}, store=ana) as r:
            r.log(acc=i / 10)
        ids.append(r.run_id)
    nbtrack.tag(ids, "ana-tag", store=ana)
    nbtrack.delete(ids[2], store=ana)
    env = {"NBTRACK_DATA_PATH": data}
    out = _cli("push", "--to", url, "--store", str(ana), cwd=tmp_path, env=env)
    assert "3 new, 0 updated, 0 already there, 0 failed; 4 edits" in out.stdout, out.stdout + out.stderr
    shared = Store(url)
    remote = nbtrack.runs(store=shared)
    assert list(remote["run_id"]) == ids[:2] and all(t == ["ana-tag"] for t in remote["tags"])
    out = _cli("pull", "--from", url, "--store", str(ben), cwd=tmp_path)
    assert "3 new" in out.stdout and "4 edits" in out.stdout, out.stdout + out.stderr

    nbtrack.rename(ids[0], "ana's name", store=ana)            # first
    time.sleep(0.01)
    nbtrack.rename(ids[0], "ben's name", store=ben)            # later: this one wins
    nbtrack.untag(ids[1], "ana-tag", store=ben)                 # other fields: both kept
    nbtrack.star(ids[1], store=ana)
    nbtrack.restore(ids[2], store=ben)
    for who in (ben, ana):                                      # ana pushes last, and still loses the name
        out = _cli("push", "--to", url, "--store", str(who), cwd=tmp_path, env=env)
        assert out.returncode == 0 and "3 already there" in out.stdout, out.stdout + out.stderr
    nbtrack.note(ids[1], "written on the team store", store=shared)   # an edit made there directly
    remote = nbtrack.runs(store=shared).set_index("run_id")
    assert list(remote.index) == ids
    assert remote.at[ids[0], "label"] == "ben's name"
    assert remote.at[ids[1], "tags"] == [] and remote.at[ids[1], "starred"]
    assert remote.at[ids[1], "note"] == "written on the team store"
    _cli("pull", "--from", url, "--store", str(ana), cwd=tmp_path)
    local = nbtrack.runs(store=ana).set_index("run_id")
    for column in ("label", "tags", "starred", "note"):
        assert local[column].tolist() == remote[column].tolist(), column
    assert len(nbtrack.get(ids[0], store=shared).events) == 3   # the tag and both renames, each with who and when

    nbtrack.delete(ids[0], store=shared)
    out = _cli("gc", "--store", url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith(f"removed 1 deleted run from {redact_passwords(url)}: 1 curve point, ")
    assert list(nbtrack.runs(store=shared, include_deleted=True)["run_id"]) == ids[1:]


def test_logged_doubles_come_back_exact_from_a_lake_old_points_included(cluster, team, monkeypatch):
    """A lake inlines a small run's series of points in its catalog (as text), a big run's go to Parquet:
    points a lake held a row each (before 0011, migrated to series) and points logged since come back
    bit for bit either way, NaN, the infinities and the smallest subnormal included, float32 series
    and float64 ones."""
    import math
    import random
    import struct

    from nbtrack.store import migrations
    from nbtrack.store.schema import SERIES_ROW_POINTS

    def bits(v: float) -> bytes:
        return struct.pack("d", v + 0.0)   # -0.0 may come back as 0.0: DuckDB's storage, for every double

    url, data = team
    rng = random.Random(15)
    odd = [math.nan, math.inf, -math.inf, 5e-324, -0.0, 1.7976931348623157e308]
    doubles = [rng.random() * 10 ** rng.randint(-300, 300) for _ in range(1494)] + odd   # few are float32s
    floats = [struct.unpack("f", struct.pack("f", rng.random()))[0] for _ in range(1497)] + odd[:3]
    old_rows = [("old64", s, v) for s, v in enumerate(doubles)] + [("old32", s, v) for s, v in enumerate(floats)]
    before = [m for m in migrations.MIGRATIONS if m[0] < "0011"]
    monkeypatch.setattr(migrations, "MIGRATIONS", before)   # a lake from before series
    with Store(url, data_path=data).connect() as con:
        assert "metric_series" not in {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        con.execute("INSERT INTO runs (run_id, seq, experiment, name, status, kind, started_at) VALUES "
                    "('old', 1, 'e', 'n', 'finished', 'script', TIMESTAMPTZ '2026-01-01 00:00:00+00')")
        con.execute("BEGIN")
        con.executemany("INSERT INTO metric_history (run_id, key, step, value, chunk, started_us) "
                        "VALUES ('old', ?, ?, ?, 0, 1767225600000000)", old_rows)
        con.execute("COMMIT")
    monkeypatch.undo()
    with nbtrack.run("new", store=Store(url, data_path=data)) as run:   # migrates, then imports
        for step, (d, f) in enumerate(zip(doubles, floats)):
            run.log(step=step, new64=d, new32=f)

    def check() -> None:
        for run_id, keys in (("old", ("old64", "old32")), (run.run_id, ("new64", "new32"))):
            history = nbtrack.get(run_id, store=Store(url))
            for key, logged in zip(keys, (doubles, floats)):
                got = history.history(key)
                assert list(got["step"]) == list(range(1500))
                off = sum(bits(a) != bits(b) for a, b in zip(got["value"], logged))
                assert off == 0, f"{off} of {len(logged)} values of {key} came back changed"
        with Store(url).connect(read_only=True) as con:
            nulls = con.execute("SELECT count(*) FROM metric_history WHERE value IS NULL").fetchall()[0][0]
        assert nulls == 0   # (a NULL would read as NaN in the frame above)

    assert not list(Path(data).rglob("metric_series/*.parquet"))   # the 8 rows of series (4 migrated, 4 logged) are inlined in the catalog
    check()
    rows = migrations.SERIES_INLINE_ROWS + 1   # past metric_series's own limit (the lake's is 1,000 rows)
    with nbtrack.run("big", store=Store(url, data_path=data)) as big:
        for step in range(rows * SERIES_ROW_POINTS):
            big.log(step=step, loss=1 / (step + 1))
    assert len(nbtrack.get(big.run_id, store=Store(url, data_path=data)).history()) == rows * SERIES_ROW_POINTS
    assert len(list(Path(data).rglob("metric_series/*.parquet"))) == 1
    with Store(url, data_path=data).connect() as con:
        con.execute("CALL ducklake_flush_inlined_data('team')").fetchall()
    assert len(list(Path(data).rglob("metric_series/*.parquet"))) == 2
    check()   # and from Parquet


def test_runs_that_start_in_the_same_microsecond_keep_their_own_values_in_a_lake(team, monkeypatch):
    """A lake's writers commit side by side and cannot see each other's runs, so its list of shared
    starts (store/locality.py) is a view of its runs, never a table a writer may have missed."""
    url, data = team
    store = Store(url, data_path=data)
    same_start_runs(store, monkeypatch)
    with store.connect() as con:
        views = con.execute("SELECT view_name FROM duckdb_views() WHERE database_name = current_database() "
                            "AND view_name IN ('shared_starts', 'metrics_by_key', 'params_by_key') ORDER BY 1").fetchall()
        assert views == [("metrics_by_key",), ("params_by_key",), ("shared_starts",)]   # no copies: writers commit side by side
        assert con.execute("SELECT count(*) FROM shared_starts").fetchall() == [(1,)]
    assert_kept_apart(store)


def test_a_writer_that_checked_before_another_machine_migrated_the_lake_goes_on(team, tmp_path, monkeypatch):
    """Two machines' first writers on a fresh lake: one asks which migrations are pending, the other
    applies them all, then the first goes on with its answer. In CI one of eight writers on S3 warned
    'Existing object metric_history is of type View, trying to drop type Table' and kept its runs in
    its spool; each migration now asks again in its own transaction."""
    url, data = team
    first = Store(url, data_path=data)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "machine2"))   # its own spool and lock
    second = Store(url, data_path=data)
    real = migrations.check

    def check_then_the_other_migrates(con, path):
        pending = real(con, path)
        monkeypatch.setattr(migrations, "check", real)
        with second.connect():
            pass
        return pending

    monkeypatch.setattr(migrations, "check", check_then_the_other_migrates)
    with nbtrack.run("after", store=first, params={"lr": 0.1}) as r:
        r.log(loss=0.5, step=0)
    with first.connect() as con:
        names = [row[0] for row in con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]
    assert names == [name for name, _ in migrations.MIGRATIONS]   # each once, by one writer
    frame = nbtrack.runs(store=first)
    assert list(frame["params.lr"]) == [0.1] and list(frame["metrics.loss"]) == [0.5]
    assert first.fallback is None
