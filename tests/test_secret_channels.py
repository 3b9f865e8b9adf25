"""Secrets through every channel a cell or a script has: no byte of them in anything nbtrack writes.

Each generated secret goes in through params, values, the source, a function from an untracked cell
(provenance), stdout and stderr (also cut at the size cap), every kind of display payload, an error,
the run's name, tags and experiment, nbtrack.log keys, a script's command line, the environment, a git
remote and an exported script; then every file is read (raw bytes, and every text and blob column of
the DuckDB file read back through SQL, since DuckDB compresses strings on disk)."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import duckdb
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import nbtrack

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _random_enough(text: str) -> bool:
    """A secret worth the name: a half of "000000000000" turns up in any binary file by chance, and
    hypothesis also tries words found in nbtrack's own code ("client_secret"), which nbtrack writes."""
    return len(set(text)) >= 8 and any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
# secrets are made from random bytes: text strategies also try words from nbtrack's own code ("client_secret",
# "0005_saved_outputs"), which nbtrack writes itself
RANDOM = st.binary(min_size=12, max_size=16).filter(lambda b: len(set(b)) >= 10)
TOKENS = st.one_of(
    RANDOM.map(lambda b: "sk-proj-" + b.hex()[:28]),
    RANDOM.map(lambda b: "ghp_" + base64.b32encode(b * 3).decode().rstrip("=")[:36]),
    RANDOM.map(lambda b: "AKIA" + base64.b32encode(b).decode()[:16]),
    RANDOM.map(lambda b: "hf_" + b.hex()[:34]),
)
PLAIN = RANDOM.map(lambda b: base64.b85encode(b).decode()).filter(_random_enough)


def _variants(secret: str) -> list[bytes]:
    """The secret as UTF-8, JSON-escaped and UTF-16, and each half of it (a cut that kept half a secret)."""
    half = len(secret) // 2
    out = set()
    for text in (secret, secret[:half], secret[half:]):
        out |= {text.encode(), json.dumps(text).encode()[1:-1], text.encode("utf-16-le")}
    return sorted(out)


def _scan(root: Path, secrets: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for secret in secrets:
            if any(v in data for v in _variants(secret)):
                hits.append(f"{path}: {secret}")
        if path.suffix == ".duckdb" and not path.name.endswith(".damaged"):
            con = duckdb.connect(str(path), read_only=True)
            try:
                hits += [f"{path} (SQL) {h}" for h in _sql_hits(con, secrets)]
            finally:
                con.close()
    return hits


def _sql_hits(con: duckdb.DuckDBPyConnection, secrets: list[str]) -> list[str]:
    """Every text and blob column of every table, read back through SQL."""
    hits = []
    columns = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = 'main'").fetchall()
    for table, column, dtype in columns:
        if dtype not in ("VARCHAR", "BLOB", "VARCHAR[]"):
            continue
        for (value,) in con.execute(f'SELECT "{column}" FROM "{table}"').fetchall():
            text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
            hits += [f"{table}.{column}: {s}" for s in secrets
                     if any(part in text for part in (s, s[:len(s) // 2], s[len(s) // 2:]))]
    return hits


UNTRACKED = '''
DB_PASS = {plain!r}
service_token = {token2!r}
def connect():
    return dict(user="me", password={plain3!r})
'''
TRACKED = '''%%track {name!r} -t {tag!r} -e {experiment!r}
import os, sys, nbtrack
import altair as alt, pandas as pd
from IPython.display import display
api_key = {token!r}
pin_password = 98765432101
conf = {{"password": {plain4!r}, "lr": 0.1}}
token_bytes = {token_bytes!r}
db_password = _injected
print("x" * (32 * 1024 - len(DB_PASS) // 2) + DB_PASS)   # the kept head (32 KiB) ends in the middle of a secret
print("db", DB_PASS, "service", service_token, "env", os.environ["MY_SERVICE_TOKEN"], "pin", pin_password)
print("bytes", token_bytes, "conn", connect())
print("to stderr", api_key, file=sys.stderr)
print(f'password="{{DB_PASS}}" api_key: {{service_token}} --token {{DB_PASS}}')
display({{"text/html": f"<b>{{api_key}}</b>", "text/markdown": DB_PASS, "text/latex": service_token,
         "application/json": {{"k": [DB_PASS, {{"deep": api_key}}], "password": "hidden-by-name"}},
         "application/vnd.custom+json": {{"x": service_token}}, "image/svg+xml": f"<svg>{{DB_PASS}}</svg>",
         "application/javascript": f"var k = '{{api_key}}'",
         "application/vnd.dataresource+json": {{"data": [{{"k": DB_PASS}}], "schema": {{"fields": []}}}},
         "text/plain": api_key}}, raw=True)
display(alt.Chart(pd.DataFrame({{"k": [DB_PASS, service_token]}})).mark_point().encode(x="k"))
nbtrack.log(**{{"loss_" + DB_PASS: 1.0}})
print(api_key + "v" * (32 * 1024 - len(api_key) // 2))     # the kept tail starts in the middle of one
raise RuntimeError("failed with " + api_key + " and " + DB_PASS)
'''
SCRIPT = '''
import nbtrack
API_TOKEN = {token!r}
with nbtrack.run("script", params={{"endpoint": "https://:{quoted}@db.example", "note": {plain!r}}}) as run:
    print("using", API_TOKEN)
    run.log(loss=0.5)
'''


# each example runs a notebook's worth of cells and a script: no shrinking (minutes), the failing values print
@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(token=TOKENS, token2=TOKENS, plain=PLAIN, plain3=PLAIN, plain4=PLAIN, env_secret=PLAIN, injected=PLAIN)
def test_no_secret_reaches_any_byte_nbtrack_writes(ip, tmp_path_factory, monkeypatch, token, token2, plain,
                                                    plain3, plain4, env_secret, injected):
    work = tmp_path_factory.mktemp("secrets")
    monkeypatch.chdir(work)
    store_path = work / ".nbtrack" / "runs.duckdb"
    nbtrack.connect(store_path)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "remote", "add", "origin", f"https://me:{plain}@git.example/repo.git"], cwd=work, check=True)
    monkeypatch.setenv("MY_SERVICE_TOKEN", env_secret)
    ip.user_ns["_injected"] = injected
    ip.run_cell(UNTRACKED.format(plain=plain, token2=token2, plain3=plain3))
    result = ip.run_cell(TRACKED.format(name=f"run {token}", tag=f"tag {plain}", experiment=f"exp {plain}",
                                        token=token, plain4=plain4, token_bytes=token2.encode()))
    assert isinstance(result.error_in_exec, RuntimeError)          # the cell behaves as it would untracked
    run = nbtrack.last()
    assert run.status == "failed" and run.params["api_key"] == "***" and run.params["conf"]["lr"] == 0.1
    script = work / "train.py"
    script.write_text(SCRIPT.format(token=token, plain=plain, quoted=quote(plain, safe="")))
    proc = subprocess.run([sys.executable, str(script), "--password", plain, "--api-key=" + token, "--token", plain3],
                          cwd=work, capture_output=True, text=True, env={**__import__("os").environ,
                                                                         "NBTRACK_STORE": str(store_path)})
    assert proc.returncode == 0, proc.stderr
    nbtrack.runs()
    nbtrack.export_script(run.run_id, work / "exported.py")
    from click.testing import CliRunner

    from nbtrack.cli import main
    for fmt in ("csv", "parquet", "json"):
        assert CliRunner().invoke(main, ["export", "--format", fmt, "-o", str(work / f"runs.{fmt}")]).exit_code == 0
    secrets = [token, token2, plain, plain3, plain4, env_secret, injected, "98765432101"]
    hits = _scan(store_path.parent, secrets) + _scan(work, secrets)
    hits = [h for h in hits if "/.git/" not in h and "train.py" not in h]   # the user's own files
    assert hits == []
    assert {"params.api_key", "source", "error_message", "displays.stdout"} <= set(run.info["redacted"])
