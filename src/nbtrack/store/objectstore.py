"""A team store's data on object storage: ``s3://bucket/prefix`` on AWS S3 or any S3-compatible server
(MinIO, Ceph, Cloudflare R2), written by DuckDB's httpfs extension.

Credentials are the standard AWS ones: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (and
``AWS_SESSION_TOKEN``), else the ``AWS_PROFILE`` (or default) profile of ``~/.aws/credentials``;
the region and endpoint from ``AWS_REGION``/``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL_S3``/
``AWS_ENDPOINT_URL``, else the profile's ``~/.aws/config``. They go to DuckDB as a temporary secret
(in memory, gone with the process): never into the catalog, a file, an exported script or a message.
Read by hand, not through boto3 or DuckDB's ``aws`` extension: these few variables and two INI files
are all either would read here, and neither is otherwise a dependency.
"""
from __future__ import annotations

import configparser
import os
import re
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

SCHEMES = ("s3://",)
SECRET_NAME = "nbtrack_s3"
CREDENTIAL_HINT = ("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that they may read "
                   "and write the data path")


# how httpfs quotes an answer: "(HTTP code 403)", "(HTTP 403 Forbidden)"
_DENIED = re.compile(r"\bHTTP (?:code )?40[13]\b", re.I)
_ANSWERED = re.compile(r"\bHTTP (?:code )?\d{3}\b", re.I)


def is_remote(path: str | None) -> bool:
    return bool(path) and str(path).lower().startswith(SCHEMES)


def _profile(env: Mapping[str, str]) -> dict[str, str]:
    """The profile's settings from the AWS config and credentials files (credentials win)."""
    name = env.get("AWS_PROFILE") or "default"
    home = Path(env.get("HOME") or Path.home())
    out: dict[str, str] = {}
    for var, default, section in (("AWS_CONFIG_FILE", home / ".aws" / "config", "profile " + name),
                                  ("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials", name)):
        parser = configparser.RawConfigParser()
        try:
            parser.read(env.get(var) or default, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue
        for wanted in (section, name):   # config names the default profile [default], others [profile x]
            if parser.has_section(wanted):
                out.update(parser.items(wanted))
                break
    return out


def secret_options(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The S3 secret's options for DuckDB, or ``None`` when no credentials are configured (then only
    public buckets can be read)."""
    env = os.environ if env is None else env
    profile = _profile(env)
    key = env.get("AWS_ACCESS_KEY_ID")
    secret = env.get("AWS_SECRET_ACCESS_KEY")
    token = env.get("AWS_SESSION_TOKEN")
    if not (key and secret):
        key, secret = profile.get("aws_access_key_id"), profile.get("aws_secret_access_key")
        token = profile.get("aws_session_token")
    if not (key and secret):
        return None
    options = {"KEY_ID": key, "SECRET": secret,
               "REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or profile.get("region") or "us-east-1"}
    if token:
        options["SESSION_TOKEN"] = token
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or profile.get("endpoint_url")
    if endpoint:   # an S3-compatible server: its host, and path-style URLs (MinIO and Ceph need them)
        parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        options["ENDPOINT"] = parts.netloc
        options["USE_SSL"] = "true" if parts.scheme == "https" else "false"
        options["URL_STYLE"] = "path"
    return options


def create_secret_sql(options: Mapping[str, str]) -> str:
    """``CREATE TEMPORARY SECRET``: DuckDB keeps it in memory only, and shows it redacted."""
    def literal(name: str, value: str) -> str:
        return value if name == "USE_SSL" else "'" + value.replace("'", "''") + "'"

    body = ", ".join(f"{name} {literal(name, value)}" for name, value in options.items())
    return f"CREATE OR REPLACE TEMPORARY SECRET {SECRET_NAME} (TYPE s3, {body})"


def refused(text: str) -> str | None:
    """The object store's error code when it answered a request with 401/403, else ``None``."""
    if not _DENIED.search(text):
        return None
    for line in text.splitlines():   # S3's error code, e.g. "InvalidAccessKeyId: The AWS Access Key Id ..."
        code = line.strip().split(":", 1)[0]
        if code.isalnum() and code[:1].isupper() and code != "HTTP":
            return code
    return "HTTP 403"


def unreachable(text: str) -> bool:
    """The object store's endpoint did not answer (as opposed to: it answered with an error)."""
    low = text.lower()
    return (("http" in low or "s3://" in low)   # httpfs's words; PostgreSQL's own outage is told by ducklake.py
            and not _ANSWERED.search(text)
            and any(s in low for s in ("could not connect to server", "could not resolve hostname",
                                       "connection refused", "timeout was reached", "failed to connect")))


def explain(text: str) -> str | None:
    """One line for an object store's refusal of the credentials, else ``None``."""
    code = refused(text)
    if code is None:
        return None
    return f"the object store refused the credentials for the team store's data ({code}); {CREDENTIAL_HINT}"
