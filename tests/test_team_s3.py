"""The team store with its data on object storage (s3://): DuckLake's catalog in a real PostgreSQL, the
Parquet files in an S3-compatible server on 127.0.0.1 (moto, tests/s3server.py), reached through DuckDB's
httpfs extension loaded from its PyPI package."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import StoreError
from nbtrack.store import Store, ducklake

from helpers import eight_writers
from pgcluster import Cluster, server_bin

REQUIRED = os.environ.get("NBTRACK_REQUIRE_TEAM") == "1"


def _missing() -> str | None:
    if server_bin() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    try:
        ducklake._Extensions().files(["postgres", "ducklake", "httpfs"])
        import moto.server  # noqa: F401
    except (StoreError, ImportError) as e:
        return str(e)
    return None


_why = _missing()
if _why and REQUIRED:
    raise RuntimeError(f"NBTRACK_REQUIRE_TEAM=1 but the object-storage team store cannot be tested: {_why}")
pytestmark = [pytest.mark.skipif(_why is not None, reason=_why or ""), pytest.mark.slow]

NBTRACK = str(Path(sys.executable).with_name("nbtrack"))
CURVE = 3000   # points of a run's loss curve (one row: points are stored a series to a row)
WIDE = 1_100   # metrics logged once: more rows than DuckLake inlines in the catalog, so a run writes Parquet to S3
POINTS = CURVE + WIDE


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.destroy()


@pytest.fixture(scope="module")
def s3():
    from s3server import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def lake(cluster, s3, tmp_path, monkeypatch):
    """A fresh catalog and bucket, the AWS variables set: (url, data path, bucket)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    bucket = s3.new_bucket()
    return cluster.url(cluster.new_database()), f"s3://{bucket}/runs", bucket


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([NBTRACK, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _train(store, name: str, lr: float) -> str:
    with nbtrack.run(name, params={"lr": lr}, store=store) as run:
        for step in range(CURVE):
            run.log(step=step, loss=1 / (step + 1) + lr)
        run.log(step=0, **{f"k{i}": float(i) for i in range(WIDE)})
    return run.run_id


def test_runs_land_on_s3_and_read_back_push_pull_and_maintain(lake, s3, cluster, ip, store_path, tmp_path, capsys):
    url, data, bucket = lake
    ip.run_cell(f"%nbtrack store '{url}' --data-path {data}")
    assert ip.run_cell("import nbtrack\n").success
    r = ip.run_cell(textwrap.dedent(f"""\
        %%track fit
        lr = 0.1
        for step in range({CURVE}):
            nbtrack.log(loss=1 / (step + 1) + lr)
        nbtrack.log(step=0, **{{f"k{{i}}": i for i in range({WIDE})}})
        acc = 1 - lr
        """))
    assert r.success
    frame = nbtrack.runs()
    assert list(frame["name"]) == ["fit"] and frame["metrics.acc"].iloc[0] == 0.9
    run = nbtrack.get(frame.run_id.iloc[0])
    assert len(run.history()) == POINTS and run.history()["value"].iloc[-1] == 1 / CURVE + 0.1
    keys = s3.keys(bucket)
    assert any(k.startswith("runs/") and k.endswith(".parquet") for k in keys), keys

    # a local store's runs pushed to the lake on S3, pulled into another local store
    local = Store(tmp_path / "local.duckdb")
    ids = [_train(local, "local", lr) for lr in (0.2, 0.3)]
    out = _cli("push", "--to", url, "--store", str(local.path), "--data-path", data, cwd=tmp_path)
    assert "2 new, 0 updated, 0 already there, 0 failed" in out.stdout, out.stdout + out.stderr
    pulled = tmp_path / "pulled.duckdb"
    out = _cli("pull", "--from", url, "--store", str(pulled), cwd=tmp_path)
    assert "3 new" in out.stdout, out.stdout + out.stderr
    assert len(nbtrack.get(ids[1], store=pulled).history()) == POINTS

    out = _cli("maintain", "--store", url, cwd=tmp_path)
    assert out.returncode == 0 and "small files merged" in out.stdout, out.stdout + out.stderr
    assert sorted(nbtrack.runs(store=Store(url))["name"]) == ["fit", "local", "local"]
    assert len(nbtrack.get(ids[0], store=Store(url)).history()) == POINTS

    # the credentials reach no object, no store, no spool and no output
    secret = s3.secret.encode()
    assert not [k for k in s3.keys(bucket) if secret in s3.read(bucket, k)]
    for path in (tmp_path / "local.duckdb", pulled, *(tmp_path / "cache").rglob("*")):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    dbname = url.split("dbname=")[1].split()[0]
    dump = subprocess.run([str(cluster.bin / "pg_dump"), "-h", str(cluster.dir), "-p", str(cluster.port), "-U",
                           "nbt", dbname], capture_output=True, timeout=60)
    assert dump.returncode == 0 and dump.stdout and secret not in dump.stdout, dump.stderr
    assert s3.secret not in capsys.readouterr().err


def test_eight_writers_on_s3_lose_nothing(lake, tmp_path):
    url, data, _ = lake
    writer = textwrap.dedent(f"""
        import sys, nbtrack
        w = int(sys.argv[1])
        nbtrack.connect({url!r}, data_path={data!r})
        for i in range(25):
            with nbtrack.run("w", params={{"writer": w, "i": i}}) as r:
                for step in range(200 if i % 5 else {CURVE}):
                    r.log(loss=1.0 / (i + 1), step=step)
                if i % 5 == 0:
                    r.log(step=0, **{{f"k{{k}}": k for k in range({WIDE})}})
        """)
    eight_writers(writer, tmp_path, {"NBTRACK_TEAM_FLUSH_COMMITS": "5"})   # flushes to S3 meanwhile
    frame = nbtrack.runs(store=Store(url))
    assert len(frame) == 200 and frame["run_id"].is_unique
    assert set(zip(frame["params.writer"], frame["params.i"])) == {(w, i) for w in range(8) for i in range(25)}
    long = frame[frame["params.i"] % 5 == 0].run_id.iloc[0]
    assert len(nbtrack.get(long, store=Store(url)).history()) == POINTS


def test_a_run_while_the_endpoint_is_down_is_kept_locally_and_pushed_later(lake, s3, ip, tmp_path, capsys):
    url, data, bucket = lake
    ip.run_cell(f"%nbtrack store '{url}' --data-path {data}")
    assert ip.run_cell("%%track before\nacc = 1 - 0.5").success
    capsys.readouterr()
    s3.door.down()
    try:
        r = ip.run_cell(textwrap.dedent(f"""\
            %%track offline
            import nbtrack
            for step in range({CURVE}):
                nbtrack.log(loss=1 / (step + 1))
            nbtrack.log(step=0, **{{f"k{{i}}": i for i in range({WIDE})}})
            acc = 0.75
            acc
            """))
        assert r.success and r.result == 0.75
        from nbtrack.recorder.sync import syncer

        syncer.flush()
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "nbtrack warning" in line]
        assert len(lines) == 1, err
        assert "cannot reach the object store" in lines[0] and "nbtrack push" in lines[0], lines[0]
        local = nbtrack.runs(store=tmp_path / ".nbtrack" / "runs.duckdb")
        assert list(local["name"]) == ["offline"]
    finally:
        s3.door.up()
    out = _cli("push", "--to", url, cwd=tmp_path)
    # new, or an update of its "running" record: that one is small, inlined in the catalog (which was up)
    assert "1 new, 0 updated" in out.stdout or "0 new, 1 updated" in out.stdout, out.stdout + out.stderr
    assert "0 failed" in out.stdout
    remote = nbtrack.runs(store=Store(url))
    assert set(remote["status"]) == {"finished"}
    assert sorted(remote["name"]) == ["before", "offline"]
    assert len(nbtrack.get(remote[remote.name == "offline"].run_id.iloc[0], store=Store(url)).history()) == POINTS


def test_wrong_credentials_are_one_line_without_the_secret(lake, s3, tmp_path):
    url, data, _ = lake
    local = Store(tmp_path / "local.duckdb")
    _train(local, "fit", 0.1)
    wrong = "wrong-secret-" + "x" * 20
    out = _cli("push", "--to", url, "--store", str(local.path), "--data-path", data, cwd=tmp_path,
               env=s3.env(secret=wrong))
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert "refused" in text and "AWS_ACCESS_KEY_ID" in text, text
    assert wrong not in text and s3.secret not in text
    failed = [line for line in out.stdout.splitlines() if "failed " in line and ":" in line]
    assert len(failed) == 1 and failed[0].strip().startswith("failed "), out.stdout
    assert "refused the credentials" in failed[0] and "SignatureDoesNotMatch" in failed[0], failed[0]
    assert failed[0].rstrip().endswith("and that they may read and write the data path"), failed[0]

    # reading the curves, in the lake's Parquet, with an unknown key: one line on stderr, exit 1
    ok = _cli("push", "--to", url, "--store", str(local.path), "--data-path", data, cwd=tmp_path)
    assert "1 new" in ok.stdout, ok.stdout + ok.stderr
    env = {**s3.env(), "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN0000000000"}
    out = _cli("sql", "--store", url, "SELECT sum(value) FROM metric_history", cwd=tmp_path, env=env)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1, out.stdout + out.stderr
    assert "refused the credentials" in lines[0] and "InvalidAccessKeyId" in lines[0], lines[0]
