"""Secrets never reach any file nbtrack writes."""
from __future__ import annotations

from pathlib import Path

import pytest

import nbtrack
from nbtrack.recorder.secrets import is_secret_name, looks_like_token, scrub

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
    assert token.split("://")[-1].split("@")[0].split(":")[-1] not in scrub(f"x {token} y")[0] or "://" in token


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
    assert b"0.1" in on_disk or b"lr" in on_disk  # the store holds the rest
