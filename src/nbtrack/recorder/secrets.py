"""Keep secrets out of the store: names that look secret, values shaped like known tokens.

Every text nbtrack writes (params, values, stdout, displays, errors, the cell
source) passes through here first, so no byte of a secret reaches a file.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"

_SECRET_PARTS = {
    "password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "credential",
    "credentials", "auth", "authorization", "bearer", "cookie", "privatekey",
}
_SECRET_PAIRS = ("api_key", "access_key", "private_key", "secret_key", "client_secret", "auth_token",
                 "access_token", "refresh_token", "session_key")

TOKEN_PATTERNS = [
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}"),          # OpenAI / Anthropic
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),        # GitHub
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),                      # AWS access key id
    re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}"),  # JWT
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),                   # Slack
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),                              # Hugging Face
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),                           # Google API key
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"),                        # GitLab
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
]
URL_PASSWORD = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]+:)(?P<pw>[^\s@/]+)(?P<at>@)")
# libpq's keyword form, as in a team store URL: "dbname=runs host=db password=..."
KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_name(name: str) -> bool:
    """True for names like ``api_key``, ``DB_PASSWORD``, ``hfToken``; not for ``max_tokens``."""
    snake = _CAMEL.sub("_", name).lower().replace("-", "_")
    parts = [p for p in snake.split("_") if p]
    if any(p in _SECRET_PARTS for p in parts):
        return True
    joined = "_".join(parts)
    return any(pair in joined for pair in _SECRET_PAIRS) or "apikey" in joined or "passw" in joined


def looks_like_token(text: str) -> bool:
    return any(p.search(text) for p in TOKEN_PATTERNS) or bool(URL_PASSWORD.search(text)) \
        or bool(KV_PASSWORD.search(text))


def redact_passwords(text: str) -> str:
    """``text`` with the password of every connection string (URI or keyword form) replaced by ``***``."""
    text = KV_PASSWORD.sub(lambda m: m["key"] + REDACTED, text)
    return URL_PASSWORD.sub(lambda m: m["pre"] + REDACTED + m["at"], text)


def scrub(text: str, known: Iterable[str] = ()) -> tuple[str, bool]:
    """Replace known secret values, token shapes and URL passwords; return (text, changed)."""
    if not text:
        return text, False
    out = text
    for value in known:
        if value and len(value) >= 4 and value in out:
            out = out.replace(value, REDACTED)
    for pattern in TOKEN_PATTERNS:
        out = pattern.sub(REDACTED, out)
    out = redact_passwords(out)
    return out, out != text


def redact_value(value: Any, known: Iterable[str] = (), name: str = "") -> tuple[Any, bool]:
    """A copy of a param/value with secrets replaced: secret-named keys, token shapes, known values."""
    if name and is_secret_name(name):
        return REDACTED, True
    if isinstance(value, str):
        if looks_like_token(value) or any(k and len(k) >= 4 and k in value for k in known):
            return REDACTED, True
        return value, False
    if isinstance(value, dict):
        changed = False
        out = {}
        for k, v in value.items():
            out[k], c = redact_value(v, known, k if isinstance(k, str) else "")
            changed |= c
        return out, changed
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [redact_value(v, known) for v in value]
        return type(value)(v for v, _ in items) if not isinstance(value, list) else [v for v, _ in items], \
            any(c for _, c in items)
    return value, False


def secret_literals(tree: ast.AST | None) -> list[tuple[ast.Constant, str]]:
    """String literals in a cell that hold a secret: assigned to a secret name, or token-shaped."""
    if tree is None:
        return []
    found: dict[int, tuple[ast.Constant, str]] = {}
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        value = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.keyword) and node.arg and is_secret_name(node.arg):
            value = node.value
            targets = [ast.Name(id=node.arg)]
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and is_secret_name(k.value):
                    for sub in ast.walk(v):
                        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                            found[id(sub)] = (sub, sub.value)
        if value is not None and any(_names_secret(t) for t in targets):
            for sub in ast.walk(value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    found[id(sub)] = (sub, sub.value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and looks_like_token(node.value):
            found[id(node)] = (node, node.value)
    return list(found.values())


def _names_secret(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return is_secret_name(target.id)
    if isinstance(target, ast.Attribute):
        return is_secret_name(target.attr)
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return isinstance(target.slice.value, str) and is_secret_name(target.slice.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(_names_secret(e) for e in target.elts)
    return False


def redact_source(source: str, tree: ast.AST | None, offset_lines: int = 0) -> tuple[str, set[str]]:
    """The cell source with every secret literal replaced by "***", and the secret values found.

    ``offset_lines`` is how many lines the parsed text had before ``source`` starts.
    """
    literals = secret_literals(tree)
    secrets = {value for _, value in literals if value}
    lines = source.splitlines(keepends=True)
    # replace from the end so earlier offsets stay valid
    spans = sorted(((n.lineno - 1 - offset_lines, n.col_offset, n.end_lineno - 1 - offset_lines,
                     n.end_col_offset) for n, _ in literals if n.end_lineno is not None), reverse=True)
    for l0, c0, l1, c1 in spans:
        if l0 < 0 or l1 >= len(lines):
            continue
        start = _char_index(lines, l0, c0)
        end = _char_index(lines, l1, c1)
        text = "".join(lines)
        text = text[:start] + '"' + REDACTED + '"' + text[end:]
        lines = text.splitlines(keepends=True)
    text, _ = scrub("".join(lines), secrets)
    return text, secrets


def _char_index(lines: list[str], line: int, col_bytes: int) -> int:
    """ast offsets are UTF-8 byte columns; turn (line, byte col) into a character index."""
    prefix = sum(len(l) for l in lines[:line])
    return prefix + len(lines[line].encode()[:col_bytes].decode("utf-8", "replace"))
