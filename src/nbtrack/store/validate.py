"""What a spool record must be to be imported: each check names what is wrong, for the line that sets
the record aside (a record DuckDB would refuse or misread never reaches a transaction)."""
from __future__ import annotations

from typing import Any

# columns an import cannot do without (NOT NULL in the schema)
REQUIRED = {
    "params": ("key", "kind", "vtype"), "values": ("key", "vtype"), "metrics": ("key", "source"),
    "inputs": ("name",), "outputs": ("name", "change"), "displays": ("seq", "kind", "mime", "size", "truncated"),
}
LATEST_TIME = 32503680000.0   # 3000-01-01: beyond it a timestamp is a corrupt record, not a date


class BadRecord(Exception):
    """A spool item that cannot be imported: set aside with this reason."""


def check_record(record: Any, run_id: str) -> None:
    """Raise BadRecord naming what is wrong with a run record that DuckDB would refuse or misread."""
    if not isinstance(record, dict) or not isinstance(record.get("run"), dict):
        raise BadRecord("not a run record (no 'run' object)")
    run = record["run"]
    if run.get("run_id") != run_id:
        raise BadRecord("its run id does not match its file name")
    for key in ("experiment", "name", "status", "kind"):
        if not isinstance(run.get(key), str):
            raise BadRecord(f"the run's {key} is missing or not text")
    for key in ("started_at", "ended_at"):
        value = run.get(key)
        if value is None and key == "ended_at":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= LATEST_TIME:
            raise BadRecord(f"the run's {key} is not a time ({value!r:.40})")
    for table, columns in REQUIRED.items():
        rows = record.get(table) or []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise BadRecord(f"its {table} are not a list of rows")
        for row in rows:
            missing = [c for c in columns if row.get(c) is None]
            if missing:
                raise BadRecord(f"a row of its {table} has no {missing[0]}")
    for key in ("source", "env"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            raise BadRecord(f"its {key} is not an object")
    source = record.get("source")
    if source and not (isinstance(source.get("hash"), str) and isinstance(source.get("text"), str)):
        raise BadRecord("its source has no hash or text")
    env = record.get("env")
    if env and not isinstance(env.get("env_id"), str):
        raise BadRecord("its environment has no id")
    if record.get("points") is not None:
        check_points(record["points"])


def check_points(points: Any) -> None:
    """A run's last points, carried in its final record (recorder/run.py)."""
    def ints(xs: Any) -> bool:
        return isinstance(xs, list) and all(type(x) is int for x in xs)

    if not isinstance(points, dict) or type(points.get("chunk")) is not int or points["chunk"] < 0:
        raise BadRecord("its points have no chunk number")
    keys, index, steps, values = (points.get(k) for k in ("keys", "key", "step", "value"))
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise BadRecord("its points' keys are not text")
    if not (ints(index) and ints(steps) and isinstance(values, list)) \
            or not len(index) == len(steps) == len(values):
        raise BadRecord("its points are not lists of keys, steps and values of one length")
    if any(not 0 <= i < len(keys) for i in index):
        raise BadRecord("a point names a key its record does not have")
    if not all(type(v) in (int, float) for v in values):
        raise BadRecord("a point's value is not a number")
