"""Keep secrets out of the store: one rule set, applied at the boundary (store/seal.py) to everything.

Three kinds of rules: names that look secret (``api_key = ...``, ``DB_PASS: ...``,
``--token X``), values shaped like known tokens (``sk-...``, ``ghp_...``,
passwords in URLs and connection strings), and the literal values of secrets
seen in the process (secret-named variables and environment variables),
removed wherever they appear. Text gets all three; code (cell source, function
definitions) gets them inside its string literals and comments, and secret
literals found from its syntax tree, so that the code itself stays code.
"""
from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

REDACTED = "***"
MIN_SECRET = 6          # shorter values are not scrubbed as literals: too many innocent matches

_SECRET_PARTS = {
    "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "apikey", "credential",
    "credentials", "auth", "authorization", "bearer", "cookie", "privatekey",
}
_SECRET_LAST = {"pass", "pw"}        # DB_PASS, smtp_pw; not pass_rate or pass_at_k
_SECRET_PAIRS = ("api_key", "access_key", "private_key", "secret_key", "client_secret", "auth_token",
                 "access_token", "refresh_token", "session_key", "api_secret")
# "token" and "auth" also name counts and sizes in NLP code: token_count, n_tokens, auth_method
_INNOCENT = {"count", "counts", "len", "length", "num", "n", "max", "min", "ids", "id", "type", "types", "size",
             "limit", "per", "total", "budget", "usage", "rate", "method", "mode", "index", "idx", "pos", "level"}
_WEAK = {"token", "auth"}

# (markers, pattern): a pattern runs only on text holding one of its literal markers, so megabytes of
# output cost a few substring scans, not a dozen regex passes
_TOKENS = [
    (("sk-",), re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}")),          # OpenAI / Anthropic
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}")),  # GitHub
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
    (("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),              # AWS access key id
    (("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_\-]{5,512}\.eyJ[A-Za-z0-9_\-]{5,16384}\.[A-Za-z0-9_\-]{5,}")),  # JWT
    (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}")),                   # Slack
    (("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{30,}")),                              # Hugging Face
    (("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),                         # Google API key
    (("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}")),                    # GitLab
    (("Bearer", "Basic"), re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/\-]{8,}=*")),   # HTTP Authorization
    (("PRIVATE KEY",), re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)")),
]
TOKEN_PATTERNS = [pattern for _, pattern in _TOKENS]
# scheme://user:password@host, also with an empty user (https://:pw@host)
URL_PASSWORD = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.\-]{0,31}://[^\s:/@]{0,256}:)(?P<pw>[^\s@/]{1,1024})(?P<at>@)")
# libpq's keyword form, as in a team store URL: "dbname=runs host=db password=..."
KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)
# name = value, name: value, "name": "value", name="value" in any text; the name decides. A name starts a
# word (the lookbehind): otherwise a long word is rescanned from each of its letters (quadratic time)
NAMED_VALUE = re.compile(
    r"(?<![A-Za-z0-9_\-])(?P<name>[A-Za-z_][A-Za-z0-9_\-]{0,63})(?P<q>[\"']?)(?P<sep>\s*[:=]\s*)(?!=)"
    r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|b'(?:[^'\\\n]|\\.)*'|b\"(?:[^\"\\\n]|\\.)*\""
    r"|[^\s\"',;})\]]+)")
# a command line: --password X, --api-key=X, -token X
# (every repetition is bounded or anchored: a regex over megabytes of output must stay linear)
SECRET_OPTION = re.compile(r"(?P<opt>(?<![\w-])--?(?P<name>[A-Za-z][\w\-]{0,63}))(?P<sep>=|\s+)"
                           r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"']+)")
# every secret name holds one of these, lowercased (is_secret_name); text without any needs no name rule
_SECRET_WORDS = ("pass", "pw", "secret", "token", "key", "auth", "credential", "bearer", "cookie")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PLACEHOLDERS = {"", REDACTED, "None", "null", "true", "false", "True", "False"}


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True for names like ``api_key``, ``DB_PASSWORD``, ``DB_PASS``, ``hfToken``; not for ``max_tokens``,
    ``token_count`` or ``pass_rate``."""
    snake = _CAMEL.sub("_", name).lower().replace("-", "_")
    parts = [p for p in snake.split("_") if p]
    if not parts:
        return False
    strong = [p for p in parts if p in _SECRET_PARTS and p not in _WEAK]
    if strong:
        return True
    if any(p in _WEAK for p in parts) and not any(p in _INNOCENT for p in parts):
        return True
    if parts[-1] in _SECRET_LAST and len(parts) > 1:
        return True
    joined = "_".join(parts)
    return any(pair in joined for pair in _SECRET_PAIRS) or "apikey" in joined or "passw" in joined


def looks_like_token(text: str) -> bool:
    return _sub_tokens(text) != text or redact_passwords(text) != text


def _sub_tokens(text: str) -> str:
    for markers, pattern in _TOKENS:
        if any(m in text for m in markers):
            text = pattern.sub(REDACTED, text)
    return text


def redact_passwords(text: str) -> str:
    """``text`` with the password of every connection string (URI or keyword form) replaced by ``***``."""
    if "assword" in text or "ASSWORD" in text:
        text = KV_PASSWORD.sub(lambda m: m["key"] + REDACTED, text)
    if "://" in text:
        text = URL_PASSWORD.sub(lambda m: m["pre"] + REDACTED + m["at"], text)
    return text


def passwords_in(text: str) -> set[str]:
    """Passwords written in connection strings in ``text`` (URI and keyword forms): secrets wherever else
    they appear (a DSN's password printed on its own, or passed as a plain parameter)."""
    found = set()
    if "://" in text:
        for m in URL_PASSWORD.finditer(text):   # as written (percent-encoded) and as it is
            found.update((m["pw"], unquote(m["pw"])))
    if "assword" in text or "ASSWORD" in text:
        found.update(m["value"].strip("'") for m in KV_PASSWORD.finditer(text))
    return {p for p in found if known_text(p)}


def known_text(value: Any) -> str | None:
    """The text of a secret value to scrub as a literal: strings, bytes and numbers of six characters or more."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = _number_text(value)
    if isinstance(value, str) and len(value) >= MIN_SECRET and value not in _PLACEHOLDERS:
        return value
    return None


def _number_text(value: int | float) -> str | None:
    try:
        return str(value)
    except ValueError:   # an int past str()'s digit limit is no one's PIN
        return None


def _replace_known(text: str, known: Iterable[str]) -> str:
    for value in sorted(known, key=len, reverse=True):   # longest first: one secret may contain another
        if value and value in text:
            text = text.replace(value, REDACTED)
    return text


def _named(m: re.Match[str]) -> str:
    if not is_secret_name(m["name"]):
        return m[0]
    value = m["value"]
    if value.strip("'\"b") in _PLACEHOLDERS:
        return m[0]
    quote = value[-1] if value[-1] in "'\"" and len(value) > 1 else ""
    prefix = "b" if value.startswith("b") and quote else ""
    return f"{m['name']}{m['q']}{m['sep']}{prefix}{quote}{REDACTED}{quote}"


def _option(m: re.Match[str]) -> str:
    if not is_secret_name(m["name"]):
        return m[0]
    return f"{m['opt']}{m['sep']}{REDACTED}"


def scrub_text(text: str, known: Iterable[str] = ()) -> tuple[str, bool]:
    """Every rule over free text (output, messages, names, command lines); return (text, changed)."""
    if not text:
        return text, False
    out = _sub_tokens(_replace_known(text, known))
    out = redact_passwords(out)
    low = out.lower()
    if any(word in low for word in _SECRET_WORDS):   # substring scans decide whether the name rules run
        out = NAMED_VALUE.sub(_named, out)
        out = SECRET_OPTION.sub(_option, out)
    return out, out != text


scrub = scrub_text   # the name earlier versions exported


def _offsets(text: str) -> list[int]:
    starts, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


_TEXT_TOKENS = {tokenize.STRING, tokenize.COMMENT} | \
    {getattr(tokenize, n) for n in ("FSTRING_MIDDLE",) if hasattr(tokenize, n)}


def scrub_code(text: str, known: Iterable[str] = ()) -> tuple[str, bool]:
    """Code stays code: secret literals (by the syntax tree), every rule inside string literals and
    comments, known values and token shapes everywhere. Code that does not tokenize (IPython magics,
    half-written cells) is scrubbed as text."""
    if not text:
        return text, False
    known = frozenset(known)
    return _scrub_code(text, known)


@functools.lru_cache(maxsize=128)
def _scrub_code(text: str, known: frozenset[str]) -> tuple[str, bool]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    out, found = redact_source(text, tree) if tree is not None else (text, set())
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(out).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        scrubbed, _ = scrub_text(out, known | found)
        return scrubbed, scrubbed != text
    starts = _offsets(out)
    spans = [(starts[t.start[0] - 1] + t.start[1], starts[t.end[0] - 1] + t.end[1])
             for t in tokens if t.type in _TEXT_TOKENS and t.end[0] - 1 < len(starts)]
    for start, end in reversed(spans):
        piece, changed = scrub_text(out[start:end], known | found)
        if changed:
            out = out[:start] + piece + out[end:]
    out = _sub_tokens(_replace_known(out, known | found))
    return out, out != text


MAX_DEPTH = 100   # as deep as the value encoding goes (store/codec.py); deeper parts are kept as their repr


def _opaque(value: Any, known: Iterable[str]) -> tuple[Any, bool]:
    """A part too deep to walk, or a container that holds itself: the encoding keeps its repr, so its
    repr is what is scrubbed."""
    try:
        text = repr(value)
    except BaseException:
        return value, False
    out, changed = scrub_text(text, known)
    return (out, True) if changed else (value, False)


def redact_value(value: Any, known: Iterable[str] = (), name: str = "", _depth: int = 0,
                 _path: frozenset[int] = frozenset()) -> tuple[Any, bool]:
    """A copy of a param/value with secrets replaced: secret-named keys, token shapes, known values;
    recursively through containers (dict keys too)."""
    if name and is_secret_name(name) and value is not None:
        return REDACTED, True
    if isinstance(value, str):
        out, changed = scrub_text(value, known)
        return (REDACTED, True) if changed else (value, False)
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "replace")
        return (REDACTED, True) if scrub_text(text, known)[1] else (value, False)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        known = set(known)
        return (REDACTED, True) if known and _number_text(value) in known else (value, False)
    if not isinstance(value, (dict, list, tuple, set, frozenset)):
        return value, False
    if _depth >= MAX_DEPTH or id(value) in _path:
        return _opaque(value, known)
    path = _path | {id(value)}
    if isinstance(value, dict):
        changed = False
        out = {}
        for k, v in value.items():
            if isinstance(k, str):
                new_k, c = scrub_text(k, known)
            else:
                new_k, c = redact_value(k, known, "", _depth + 1, path)
            changed |= c
            out[new_k], c = redact_value(v, known, k if isinstance(k, str) else "", _depth + 1, path)
            changed |= c
        return (out, True) if changed else (value, False)
    items = [redact_value(v, known, "", _depth + 1, path) for v in value]
    if not any(c for _, c in items):
        return value, False
    plain = [v for v, _ in items]
    if isinstance(value, list):
        return plain, True
    try:
        return type(value)(plain), True
    except TypeError:
        return tuple(plain), True


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
                        if isinstance(sub, ast.Constant) and isinstance(sub.value, (str, bytes)):
                            found[id(sub)] = (sub, _literal_text(sub.value))
        if value is not None and any(_names_secret(t) for t in targets):
            if isinstance(value, ast.Constant) and isinstance(value.value, (int, float)) \
                    and not isinstance(value.value, bool):   # pin_password = 12345678
                found[id(value)] = (value, _literal_text(value.value))
            for sub in ast.walk(value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, (str, bytes)):
                    found[id(sub)] = (sub, _literal_text(sub.value))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and looks_like_token(node.value):
            found[id(node)] = (node, node.value)
    return list(found.values())


def _literal_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


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
    secrets = {value for _, value in literals if known_text(value)}
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
    return _replace_known("".join(lines), secrets), secrets


def _char_index(lines: list[str], line: int, col_bytes: int) -> int:
    """ast offsets are UTF-8 byte columns; turn (line, byte col) into a character index."""
    prefix = sum(len(l) for l in lines[:line])
    return prefix + len(lines[line].encode()[:col_bytes].decode("utf-8", "replace"))
