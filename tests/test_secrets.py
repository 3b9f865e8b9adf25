"""Secrets never reach any file nbtrack writes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nbtrack
from nbtrack.secrets import is_secret_name, looks_like_token, scrub

OPENAI = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
GITHUB = "ghp_" + "a" * 36
AWS = "AKIA" + "ABCDEFGHIJKLMNOP"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PLAIN_PASSWORD = "hunter2-but-longer"


@pytest.mark.parametrize("name", ["api_key", "OPENAI_API_KEY", "db_password", "passwd", "hfToken", "token",
                                  "client_secret", "aws_secret_access_key", "private_key", "credentials",
                                  "auth", "AUTH_HEADER", "apikey"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["max_tokens", "tokens", "author", "n_estimators", "secretary_count", "lr",
                                  "key", "keys", "tokenizer_name"])
def test_ordinary_names(name):
    assert not is_secret_name(name)


@pytest.mark.parametrize("token", [OPENAI, GITHUB, AWS, JWT, "xoxb-1234567890-abcdefghij",
                                   "hf_" + "x" * 34, "postgres://me:" + PLAIN_PASSWORD + "@db.example/runs"])
def test_token_shapes(token):
    assert looks_like_token(f"text before {token} and after")
    scrubbed, changed = scrub(f"x {token} y")
    assert changed
    if "://" in token:   # a URL keeps its user and host; only the password goes
        assert scrubbed == "x postgres://me:***@db.example/runs y"
    else:
        assert scrubbed == "x *** y"


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_no_byte_of_a_secret_reaches_any_file(ip, store_path, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", PLAIN_PASSWORD)
    import os
    ip.user_ns["os"] = os
    cell = (f"%%track\napi_key = {OPENAI!r}\ngithub = {GITHUB!r}  # also in a comment: {AWS}\n"
            f"conf = {{'password': {PLAIN_PASSWORD + '-x'!r}, 'lr': 0.1}}\n"
            "service = os.environ['MY_SERVICE_TOKEN']\n"
            "print('using', api_key, service)\n"
            f"jwt = {JWT!r}\n"
            "raise RuntimeError('failed with ' + api_key)")
    ip.run_cell(cell)
    run = nbtrack.last()
    assert run.status == "failed"
    assert run.params["api_key"] == "***" and run.params["github"] == "***" and run.params["jwt"] == "***"
    assert run.params["conf"]["lr"] == 0.1
    assert "api_key = \"***\"" in run.source and "lr" in run.source
    assert {"params.api_key", "source", "error_message"} <= set(run.info["redacted"])
    stdout = next(d for d in run.displays if d["kind"] == "stdout")["data"]
    assert stdout.startswith(b"using *** ***\n")
    nbtrack.runs()  # import the spool into the DuckDB file
    on_disk = _all_bytes(store_path.parent)
    for secret in (OPENAI, GITHUB, AWS, JWT, PLAIN_PASSWORD, OPENAI[:20]):
        assert secret.encode() not in on_disk, secret
    # and what is not secret is all there, read back from the store file
    stored = nbtrack.get(run.run_id)
    assert stored.params["conf"]["lr"] == 0.1 and stored.params["conf"]["password"] == "***"
    assert stored.source == run.source and stored.status == "failed"


def test_the_shells_working_folder_is_not_a_secret_but_a_token_in_the_environment_is(tmp_path):
    # $PWD names a folder, not a password: paths under it stay as they are in every field
    code = textwrap.dedent("""
        import os, nbtrack
        with nbtrack.run("paths", store="runs.duckdb") as r:
            print(os.path.join(os.getcwd(), "data.csv"))
        run = nbtrack.get(r.run_id, store="runs.duckdb")
        print(run.info["source_path"], run.info["redacted"])
    """)
    script = tmp_path / "train.py"
    script.write_text(code)
    env = {"PWD": str(tmp_path), "OLDPWD": str(tmp_path.parent), "MY_SERVICE_TOKEN": "s3cr3t-v4lue-99"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed, path_and_redacted = proc.stdout.splitlines()
    assert printed == str(tmp_path / "data.csv")
    assert path_and_redacted == f"{script} []"
    stored = nbtrack.get(nbtrack.runs(store=tmp_path / "runs.duckdb").run_id[0], store=tmp_path / "runs.duckdb")
    assert stored.info["source_path"] == str(script)
    # a value under a secret name in the environment is still scrubbed wherever it is printed
    script.write_text("import os, nbtrack\nwith nbtrack.run('leak', store='runs.duckdb'):\n"
                      "    print('using', os.environ['MY_SERVICE_TOKEN'])\n")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env={**os.environ, **env}, timeout=120, check=True,
                   capture_output=True)
    frame = nbtrack.runs(store=tmp_path / "runs.duckdb")
    leak = nbtrack.get(frame.run_id[frame["name"] == "leak"].iloc[0], store=tmp_path / "runs.duckdb")
    assert "s3cr3t-v4lue-99" not in str(leak.info) and "s3cr3t-v4lue-99" not in (tmp_path / "runs.duckdb").read_bytes().decode("latin-1")
