"""The Python API: runs(), get(), last(), log(), run(), connect()."""
from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import RunNotFoundError
from .recorder import run as _run
from .recorder.session import session
from . import secrets
from .store import Store, curves, edits, queries, wide
from .store import codec
from .store.records import decode_value

if TYPE_CHECKING:   # pandas is imported when a frame is first made: `import nbtrack` stays light
    import pandas as pd

def connect(path: str | os.PathLike[str] | None = None, *, data_path: str | os.PathLike[str] | None = None,
            read_only: bool = False) -> Store:
    """Use the store at ``path`` from now on: a DuckDB file, or a team store URL such as
    ``"ducklake:postgres:dbname=runs host=db user=me"`` (default: ``$NBTRACK_STORE``, else
    ``./.nbtrack/runs.duckdb``).

    ``data_path``: the team store's shared data folder (default ``$NBTRACK_DATA_PATH``; needed only to
    create it). ``read_only``: never write (tracked runs then stay in the local store).
    The magic, ``runs()``, ``get()``, the panels and ``nbtrack.run`` all use it afterwards.
    """
    session.store = Store(path, data_path=data_path, read_only=read_only)
    if session.tracker is not None:
        session.tracker.store = session.store
    return session.store


def resolve_store(store: str | os.PathLike[str] | Store | None) -> Store:
    """A ``store=`` argument as a Store: a path or URL opened, ``None`` the current store."""
    if isinstance(store, Store):
        return store
    if store is not None:
        return Store(store)
    return session.current_store()


def runs(experiment: str | None = None, where: str | None = None,
         store: str | os.PathLike[str] | Store | None = None, *, limit: int | None = None,
         max_columns: int | None = wide.MAX_COLUMNS, include_deleted: bool = False) -> pd.DataFrame:
    """All runs as a DataFrame, one row per run, oldest first.

    Columns: ``run_id, experiment, name, status, started_at, ended_at, duration_s, tags, sweep_id,
    user, host, label, starred, note``, then ``params.<k>``, ``metrics.<k>`` (final value) and
    ``values.<k>``. Deleted runs (``nbtrack.delete``) are left out.

    Parameters
    ----------
    experiment : only runs of this experiment.
    where : a filter such as ``"metrics.acc > 0.9 and params.model = 'rf'"``; operators
        ``= != < <= > >= in like is null``, ``and or not`` and parentheses.
    store : a store path or Store; default: the current store.
    limit : only the latest ``limit`` runs.
    max_columns : at most this many ``params.``/``metrics.``/``values.`` columns (default 1,000), the
        keys set in the most runs, with a warning when some are left out; ``None`` for all.
    include_deleted : deleted runs too, with a ``deleted_at`` column.
    """
    st = resolve_store(store)
    session.syncer.flush()
    if not st.exists():
        if where:
            queries.compile_filter(where)  # a bad filter is an error even on an empty store
        import pandas as pd

        return pd.DataFrame(columns=queries.BASE_COLUMNS)
    with st.connect() as con:
        return queries.runs_frame(con, experiment, where, limit, max_columns, include_deleted)


@dataclass(repr=False)
class Run:
    """One recorded run, read from the store."""

    run_id: str
    name: str
    experiment: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    tags: list[str]
    params: dict[str, Any]
    param_kinds: dict[str, str]
    metrics: dict[str, float]
    values: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    source: str | None
    env: dict[str, Any]
    error: dict[str, Any] | None
    displays: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    store: Store | None = None
    label: str | None = None          # set with nbtrack.rename(); the name stays
    note: str | None = None           # Markdown, set with nbtrack.note()
    starred: bool = False
    deleted_at: datetime | None = None   # set by nbtrack.delete(); such a run is left out of runs()

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every edit of this run (tags, label, note, star, deletion), oldest first:
        ``{at, user, host, field, tag, value}``. The run's fields show their result."""
        with self.store.connect(read_only=True) as con:
            return edits.events(con, self.run_id)

    def load(self, name: str) -> Any:
        """An output saved with ``%%track --save NAME``: a DataFrame (Parquet) or an array (.npy).
        Nothing is unpickled: nbtrack saves only in those formats."""
        from .recorder.artifacts import deserialize

        item = self.outputs.get(name)
        if not item or not item.get("artifact"):
            saved = [n for n, o in self.outputs.items() if o.get("artifact")]
            raise RunNotFoundError(f"run {self.run_id[:8]} has no saved output {name!r} (saved: "
                                   f"{', '.join(saved) or 'none'}); save one with %%track --save {name}")
        with self.store.connect() as con:
            data = queries.artifact(con, item["artifact"])
        return deserialize(data, item["artifact_format"])

    def history(self, key: str | None = None) -> pd.DataFrame:
        """Logged points as a DataFrame with columns ``step, key, value``."""
        with self.store.connect() as con:
            return curves.history(con, self.run_id, key)

    def __repr__(self) -> str:
        own = [(k, v) for k, v in self.params.items() if self.param_kinds.get(k) != "capturer"]
        params = ", ".join(f"{k}={v!r}" for k, v in (own or list(self.params.items()))[:6])
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in list(self.metrics.items())[:6])
        return f"<Run {self.run_id[:8]} {self.name!r} {self.status}: {params}{' -> ' if metrics else ''}{metrics}>"


def run_from_detail(detail: dict[str, Any], store: Store) -> Run:
    row = detail["run"]
    error = None
    if row.get("error_type"):
        error = {"type": row["error_type"], "message": row["error_message"], "traceback": row["traceback"]}
    env = dict(detail["env"])
    env.update({k: row[k] for k in ("git_commit", "git_branch", "git_dirty", "host", "user", "notebook",
                                    "session_id", "kernel_id", "pid")})
    return Run(run_id=row["run_id"], name=row["name"], experiment=row["experiment"], status=row["status"],
               started_at=row["started_at"], ended_at=row["ended_at"], duration_s=row["duration_s"],
               tags=row["tags"], params=detail["params"], param_kinds=detail["param_kinds"], metrics=detail["metrics"], values=detail["values"],
               inputs=detail["inputs"], outputs=detail["outputs"], source=detail["source"], env=env,
               error=error, displays=detail["displays"], info=row, store=store, label=row.get("label"),
               note=row.get("note"), starred=bool(row.get("starred")), deleted_at=row.get("deleted_at"))


def run_from_record(record: dict[str, Any], store: Store) -> Run:
    """A Run from a spool record (what a run just wrote), the same as ``get`` would return once imported."""
    row = dict(record["run"])
    for key in ("started_at", "ended_at"):
        if row.get(key) is not None:
            row[key] = datetime.fromtimestamp(row[key], timezone.utc)
    row["tags"] = list(row.get("tags") or [])
    row["redacted"] = list(row.get("redacted") or [])

    def kv(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {r["key"]: decode_value(r["vtype"], r["value_json"], r["value_num"], r["value_text"]) for r in rows}

    def fingerprints(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        out = {}
        for r in rows:
            item = {k: v for k, v in r.items() if k not in ("name", "run_id")}
            item["summary"] = codec.loads(item["summary"]) if item.get("summary") else {}
            item["shape"] = queries.shape_of(item.get("shape"))
            out[r["name"]] = item
        return out

    env = dict(record.get("env") or {})
    if isinstance(env.get("packages"), str):
        env["packages"] = codec.loads(env["packages"])
    detail = {"run": row, "params": kv(record.get("params", [])),
              "param_kinds": {r["key"]: r["kind"] for r in record.get("params", [])},
              "values": kv(record.get("values", [])),
              "metrics": {r["key"]: r["value"] for r in record.get("metrics", [])},
              "inputs": fingerprints(record.get("inputs", [])), "outputs": fingerprints(record.get("outputs", [])),
              "source": (record.get("source") or {}).get("text"), "env": env, "displays": []}
    return run_from_detail(detail, store)


def get(run_id: str, store: str | os.PathLike[str] | Store | None = None) -> Run:
    """The run with this id or unique id prefix (like git)."""
    st = resolve_store(store)
    session.syncer.flush()
    if not st.exists():
        raise RunNotFoundError(f"no run matches {run_id!r}: there is no store at {st.path} yet")
    with st.connect() as con:
        full = queries.resolve_run_id(con, run_id, str(st.path))
        return run_from_detail(queries.run_detail(con, full), st)


def last() -> Run:
    """This kernel's (or script's) latest run, read from the store it was recorded into."""
    run_id = session.last_run_id
    if run_id is None:
        raise RunNotFoundError("no run has been recorded in this kernel yet: put %%track on a cell")
    finished = session.last_finished
    return get(run_id, store=finished.store if finished is not None and finished.run_id == run_id else None)


def last_sweep() -> pd.DataFrame:
    """The runs of this kernel's latest ``%%track --grid``/``--repeat`` sweep, as ``runs()`` gives them."""
    sweep_id = session.last_sweep_id
    if sweep_id is None:
        raise RunNotFoundError("no sweep has run in this kernel yet: %%track --grid KEY=V1,V2 runs one")
    return runs(where=f"sweep_id = '{sweep_id}'")


def log(step: int | None = None, **metrics: float) -> None:
    """Log metric points of the current run: ``nbtrack.log(loss=0.3, acc=0.9)`` (step auto-increments)."""
    stack = session.active
    if not stack:
        _run.require_active()  # raises with the explanation
    stack[-1].log_dict(step, metrics)


class ScriptRun:
    """``with nbtrack.run("name", params={...}) as run:`` for scripts and jobs."""

    def __init__(self, name: str, params: dict[str, Any] | None = None, tags: list[str] | None = None,
                 experiment: str | None = None, store: str | os.PathLike[str] | Store | None = None) -> None:
        self.name, self.params, self.tags = name, dict(params or {}), list(tags or [])
        self.experiment, self._store = experiment, store
        self._active: _run.ActiveRun | None = None

    @property
    def run_id(self) -> str | None:
        return self._active.run_id if self._active else None

    def __enter__(self) -> "ScriptRun":
        frame = sys._getframe(1)
        path: str | None = frame.f_code.co_filename
        source, found = _script_source(path)
        if source is None:
            path = None
        # secret-named variables of the calling module: their values are scrubbed from the record
        found = found | {text for name, value in list(frame.f_globals.items())
                         if secrets.is_secret_name(name) and (text := secrets.known_text(value))}
        experiment = self.experiment or (Path(path).stem if path else "default")
        active = _run.ActiveRun(resolve_store(self._store), name=self.name, experiment=experiment, kind="script",
                                tags=self.tags, command=" ".join(sys.argv), source=source,
                                source_path=path, secret_values=found,
                                git_dir=str(Path(path).parent) if path else None)
        for key, value in self.params.items():
            active.params[key] = (value, "given")
        self._active = active.start()
        return self

    def log(self, step: int | None = None, **metrics: float) -> None:
        """Log metric points of this run."""
        self._active.log_dict(step, metrics)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> bool:
        self._active.end(ev)
        return False


_sources: dict[str, tuple[tuple[int, int], str | None, frozenset[str]]] = {}


def _script_source(path: str) -> tuple[str | None, frozenset[str]]:
    """A script's source with its secret literals redacted, and those secrets; read and parsed once per
    version of the file (size and mtime), not once per run."""
    try:
        st = os.stat(path)
    except OSError:
        return None, frozenset()
    stamp = (st.st_size, st.st_mtime_ns)
    cached = _sources.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    try:
        text = Path(path).read_text(encoding="utf-8")
        source, found = secrets.redact_source(text, ast.parse(text))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        source, found = None, set()
    _sources[path] = (stamp, source, frozenset(found))
    return source, frozenset(found)


def run(name: str, params: dict[str, Any] | None = None, tags: list[str] | None = None,
        experiment: str | None = None, store: str | os.PathLike[str] | Store | None = None) -> ScriptRun:
    """Record a block of a script as a run::

        with nbtrack.run("train", params={"lr": 0.01}) as run:
            for step in range(100):
                run.log(loss=..., step=step)

    The status is ``failed``/``interrupted`` when the block raises; the source file and its hash,
    the environment and git state are recorded as for a cell.
    """
    return ScriptRun(name, params, tags, experiment, store)


def register_capturer(type_or_predicate: Any, fn: Any) -> None:
    """Teach nbtrack a type (see ``nbtrack.recorder.capture.register_capturer``): ``fn(value)`` returns
    a fingerprint dict and may add ``params``/``metrics`` recorded under the variable's name."""
    from .recorder.frameworks import register_capturer as register

    register(type_or_predicate, fn)


def fingerprint(value: Any) -> str | None:
    """The content fingerprint nbtrack records for an input or output (what lineage links by and what
    exported scripts check); ``None`` when the object cannot be hashed."""
    from .recorder.capture import safe_fingerprint

    return safe_fingerprint(value).get("hash")
