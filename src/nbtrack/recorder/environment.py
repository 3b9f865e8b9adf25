"""The environment of a run: Python, OS, imported packages' versions, git state, notebook, kernel.

Recorded once per kernel session and referenced by id: the id is a hash of the
content, so a new import gives a new environment row and an unchanged session
reuses the old one. Mapping modules to distributions scans installed
metadata (~100 ms), so it is warmed in a thread when the extension loads and
cached; git state is read by a background refresh with a short TTL so that
no subprocess runs on a cell's critical path after the first run.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from typing import Any


_lock = threading.Lock()
_dists: dict[str, list[str]] | None = None
_versions: dict[str, str | None] = {}
_env_cache: tuple[tuple[int, str | None], dict[str, Any]] | None = None
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbtrack-env")


def _top_level_names(dist: metadata.Distribution) -> set[str]:
    """Import names a distribution provides: top_level.txt, else the first part of its files
    (numpy and many wheels ship no top_level.txt; Python 3.10's packages_distributions misses them)."""
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    names = set()
    for f in dist.files or ():
        first = f.parts[0] if f.parts else ""
        if not first or first.endswith((".dist-info", ".egg-info", ".data")) or first in ("..", "__pycache__"):
            continue
        if len(f.parts) == 1:
            if first.endswith(".py"):
                names.add(first[:-3])
            elif first.endswith((".so", ".pyd")):
                names.add(first.split(".")[0])
        else:
            names.add(first)
    return names


def _distributions() -> dict[str, list[str]]:
    global _dists
    with _lock:
        if _dists is None:
            mapping: dict[str, list[str]] = {}
            try:
                if sys.version_info >= (3, 11):  # reads RECORD files itself, and is faster than below
                    _dists = metadata.packages_distributions()
                    return _dists
                for dist in metadata.distributions():
                    name = dist.metadata["Name"]
                    if not name:
                        continue
                    for top in _top_level_names(dist):
                        mapping.setdefault(top, []).append(name)
            except Exception:
                pass
            _dists = mapping
        return _dists


def warm() -> None:
    """Start the slow metadata scan in the background."""
    _pool.submit(_distributions)


def _version(dist: str) -> str | None:
    if dist not in _versions:
        try:
            _versions[dist] = metadata.version(dist)
        except Exception:
            _versions[dist] = None
    return _versions[dist]


def static_info() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


_STATIC = static_info()
HOST = socket.gethostname()


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None


USER = _user()


def _newest(modules: dict[str, Any]) -> str | None:
    """The module imported last; None when other threads kept importing while it was asked (an iterator
    of a dict that changes size raises: seen in a run started while another thread imported)."""
    for _ in range(5):
        try:
            return next(reversed(modules), None)
        except RuntimeError:
            continue
    return None


def environment() -> dict[str, Any]:
    """The current environment record with its content id; cheap when no new package was imported."""
    global _env_cache
    # sys.modules only grows in practice, in insertion order: its size and newest key tell a new import
    modules = sys.modules
    signature = (len(modules), _newest(modules))
    cached = _env_cache
    if cached is not None and cached[0] == signature:
        return cached[1]
    tops = {name.partition(".")[0] for name in list(modules)}
    dists = _distributions()
    packages: dict[str, str] = {}
    for top in tops:
        for dist in dists.get(top, ()):
            version = _version(dist)
            if version:
                packages[dist] = version
    packages = dict(sorted(packages.items(), key=lambda kv: kv[0].lower()))
    env = dict(_STATIC, packages=json.dumps(packages))
    env["env_id"] = hashlib.sha1(json.dumps(env, sort_keys=True).encode()).hexdigest()[:16]
    env["created_at"] = time.time()
    _env_cache = (signature, env)
    return env


# -- git ----------------------------------------------------------------------
_GIT_TTL = 2.0
_git: dict[str, tuple[float, dict[str, Any]]] = {}
_git_pending: dict[str, Future] = {}


def _git_read(directory: str) -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True,
                                 timeout=5, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_branch": None, "git_dirty": None}
    branch = run("rev-parse", "--abbrev-ref", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_branch": branch, "git_dirty": bool(status)}


def _git_refresh(directory: str) -> dict[str, Any]:
    state = _git_read(directory)
    _git[directory] = (time.monotonic(), state)
    return state


def git_state(directory: str) -> dict[str, Any]:
    """Git state of ``directory``: fresh on first use, then refreshed in the background."""
    cached = _git.get(directory)
    if cached is None:
        return _git_refresh(directory)
    if time.monotonic() - cached[0] > _GIT_TTL:
        pending = _git_pending.get(directory)
        if pending is None or pending.done():
            _git_pending[directory] = _pool.submit(_git_refresh, directory)
    return cached[1]


def prefetch_git(directory: str) -> None:
    """Refresh git state while a cell runs, so the end of the run finds it current."""
    cached = _git.get(directory)
    if cached is None or time.monotonic() - cached[0] > _GIT_TTL:
        pending = _git_pending.get(directory)
        if pending is None or pending.done():
            _git_pending[directory] = _pool.submit(_git_refresh, directory)


# -- front end facts ----------------------------------------------------------
def notebook_path(user_ns: dict[str, Any]) -> str | None:
    """The notebook's path where the front end tells it (JupyterLab/Notebook 7, VS Code)."""
    for key in ("__session__", "__vsc_ipynb_file__"):
        value = user_ns.get(key)
        if isinstance(value, str) and value:
            return value
    value = os.environ.get("JPY_SESSION_NAME")
    return value or None


def kernel_id() -> str | None:
    """The Jupyter kernel id, from the connection file name ipykernel was started with."""
    ipykernel = sys.modules.get("ipykernel.connect")
    try:
        if ipykernel is not None:
            name = os.path.basename(ipykernel.get_connection_file())
            return name.removeprefix("kernel-").removesuffix(".json")
    except Exception:
        pass
    return None


def environ_secrets() -> frozenset[str]:
    """Values of environment variables with secret names (``OPENAI_API_KEY``...), to scrub from text.

    Read afresh each time: ``%env TOKEN=new`` replaces a value without changing anything cheaper to
    watch. On POSIX the raw bytes are read and only the values under secret names decoded (each name
    is judged once): decoding every variable was a tenth of a trivial tracked cell's time."""
    from ..secrets import is_secret_name

    raw = getattr(os.environ, "_data", None)
    decode = getattr(os.environ, "decodevalue", None)
    if not isinstance(raw, dict) or decode is None:
        return frozenset(v for k, v in os.environ.items()
                         if len(v) >= 8 and k not in _SHELL_DIRS and is_secret_name(k))
    out = set()
    for key, value in list(raw.items()):
        if len(value) < 8:
            continue
        secret = _SECRET_KEYS.get(key)
        if secret is None:
            name = os.environ.decodekey(key)
            secret = _SECRET_KEYS[key] = name not in _SHELL_DIRS and is_secret_name(name)
        if secret:
            text = decode(value)
            if len(text) >= 8:
                out.add(text)
    return frozenset(out)


_SECRET_KEYS: dict[Any, bool] = {}   # raw variable name -> whether it is a secret name
# the shell's working folders: "pwd" names a password in code, but $PWD is a path (scrubbing it
# turned every path under the folder a script was started from into "***/...")
_SHELL_DIRS = {"PWD", "OLDPWD"}
