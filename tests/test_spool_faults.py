"""Nothing in the spool can block the rest: damaged, odd or hostile spool items are set aside (never
deleted) with one line each, and every good run stays readable."""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.store import Store
from nbtrack.store.spool import parse_name

KINDS = ["truncate", "empty", "garbage", "wrong_type", "odd_name", "flip", "directory", "not_an_object"]


def _wrong_type(path: Path, rnd: int) -> None:
    if path.name.startswith("pts."):
        table = pa.table({"key": ["loss"], "step": ["not a step"], "value": ["x"]})
        sink = pa.BufferOutputStream()
        with ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        path.write_bytes(sink.getvalue().to_pybytes())
        return
    record = json.loads(path.read_bytes())
    victims = [("run", "started_at", "yesterday"), ("run", "tags", "a,b"), ("run", "name", None),
               ("run", "execution_count", 1.5), ("run", "pid", 2**70), ("run", "ended_at", 1e300),
               ("params", None, [{"key": None}]), ("metrics", None, [{"key": "m", "value": "high", "source": "log"}]),
               ("displays", None, "no"), ("env", None, {"env_id": 5})]
    section, field, value = victims[rnd % len(victims)]
    if field is None:
        record[section] = value
    else:
        record[section][field] = value
    path.write_text(json.dumps(record))


def _damage(path: Path, kind: str, rnd: int) -> None:
    data = path.read_bytes()
    if kind == "truncate":
        path.write_bytes(data[: rnd % max(len(data), 1)])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(os.urandom(1 + rnd % 300))
    elif kind == "wrong_type":
        _wrong_type(path, rnd)
    elif kind == "odd_name":
        path.rename(path.with_name(["notes.txt", "run.bad.json", f"{path.name}.bak", "pts.x.1.arrow",
                                    "run." + "0" * 32 + ".-1.json"][rnd % 5]))
    elif kind == "flip":
        pos = rnd % max(len(data), 1)
        path.write_bytes(data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1:] if data else b"\xff")
    elif kind == "directory":
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("x")
    elif kind == "not_an_object":
        path.write_text(json.dumps(["a", "list", "not", "a", "record"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hits=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(KINDS), st.integers(0, 10_000)),
                     min_size=1, max_size=5),
       imported=st.integers(0, 4), junk_lock=st.booleans())
def test_damaged_spool_items_are_set_aside_and_every_good_run_stays_readable(tmp_path, capfd, monkeypatch, hits,
                                                                            imported, junk_lock):
    from nbtrack.recorder.sync import syncer

    syncer.flush()
    monkeypatch.setattr(syncer, "request", lambda store: None)   # no background import while files are damaged
    path = tmp_path / uuid.uuid4().hex / "runs.duckdb"
    runs = {}
    for i in range(6):
        with nbtrack.run(f"r{i}", params={"i": i, "label": "Infinity War", "x": float("inf")}, store=path) as r:
            for step in range(3):
                r.log(step=step, loss=1.0 / (step + 1))
        runs[r.run_id] = i
        if i + 1 == imported:
            nbtrack.runs(store=path)                 # some runs are in the store already, the rest spooled
    store = Store(path)
    files = store.spool.pending()
    hit_runs = set()
    damaged = []
    for index, kind, rnd in hits:
        target = files[index % len(files)]
        if not target.exists() or target in damaged:
            continue
        name = parse_name(target)
        if name and name[0] == "run.":
            hit_runs.add(name[1])
        _damage(target, kind, rnd)
        damaged.append(target)
    (path.parent / "stray.tmp").write_bytes(b"\x00" * 10)          # odd files beside the store
    if junk_lock:
        store.lock_path.write_bytes(os.urandom(64))
    capfd.readouterr()

    frame = nbtrack.runs(store=path)                  # never raises, whatever the spool holds
    err = capfd.readouterr().err
    assert store.spool.pending() == []                # everything was imported or set aside
    kept = sorted(p.name for p in store.spool.dir.iterdir() if p.name.startswith(".unreadable."))
    lines = [line for line in err.splitlines() if "set aside an unreadable spool file" in line]
    assert len(lines) == len(kept)                    # one line per item set aside, naming where it is kept
    assert all(any(k in line for line in lines) for k in kept)
    by_id = frame.set_index("run_id")
    for run_id, i in runs.items():
        if run_id in hit_runs:
            continue
        assert run_id in by_id.index, (run_id, err)
        assert by_id.at[run_id, "params.i"] == i and by_id.at[run_id, "status"] == "finished"
        assert by_id.at[run_id, "params.label"] == "Infinity War"
        assert nbtrack.get(run_id, store=path).params["x"] == float("inf")
    assert len(nbtrack.runs(store=path)) == len(frame)   # a second import finds nothing new, sets nothing aside


def test_a_damaged_final_record_leaves_the_run_as_it_started(tmp_path, capfd):
    path = tmp_path / "runs.duckdb"
    with nbtrack.run("kept", params={"lr": 0.1}, store=path) as r:
        pass
    final = sorted(Store(path).spool.dir.glob(f"run.{r.run_id}.*.json"))[-1]
    final.write_bytes(final.read_bytes()[:40])
    run = nbtrack.get(r.run_id, store=path)
    assert run.status == "running" and run.params == {"lr": 0.1}
    assert "set aside an unreadable spool file" in capfd.readouterr().err
    assert (final.parent / f".unreadable.{final.name}").exists()


def test_an_odd_file_in_the_spool_is_kept_not_deleted(tmp_path, capfd):
    path = tmp_path / "runs.duckdb"
    with nbtrack.run("a", store=path):
        pass
    odd = Store(path).spool.dir / "my-notes.txt"
    odd.write_text("notes the user left here")
    assert len(nbtrack.runs(store=path)) == 1
    kept = odd.with_name(".unreadable.my-notes.txt")
    assert not odd.exists() and kept.read_text() == "notes the user left here"
    err = capfd.readouterr().err
    assert err.count("nbtrack warning:") == 1 and "my-notes.txt" in err and str(kept) in err


def test_a_deleted_spool_folder_is_made_again_and_later_cells_record(ip, store_path, capsys):
    import shutil

    ip.run_cell("%%track first\nx = 1")
    nbtrack.runs()
    shutil.rmtree(store_path.parent)                  # the whole store folder, spool and all
    result = ip.run_cell("%%track second\ny = 2")
    assert result.success and ip.user_ns["y"] == 2
    assert "nbtrack warning" not in capsys.readouterr().err
    assert nbtrack.runs()["name"].tolist() == ["second"]


def _spooled_run(path: Path, points: int, monkeypatch) -> tuple[str, list[Path]]:
    from nbtrack.recorder.sync import syncer

    syncer.flush()
    monkeypatch.setattr(syncer, "request", lambda store: None)   # keep the spool as the run left it
    with nbtrack.run("curves", store=path) as r:
        for step in range(points):
            r.log(step=step, loss=1.0 / (step + 1), api_token=123456789)
        r.log(step=points, odd=float("nan"), neg=-0.0, big=float("inf"))
    return r.run_id, Store(path).spool.pending()


def test_a_short_runs_last_points_ride_in_its_final_record_and_read_back_exactly(tmp_path, monkeypatch):
    from nbtrack.recorder.run import EMBED_POINTS

    run_id, files = _spooled_run(tmp_path / "runs.duckdb", 10, monkeypatch)
    assert [f for f in files if f.name.startswith("pts.")] == []   # no points file of its own
    final = json.loads(sorted(f for f in files if f.name.startswith("run."))[-1].read_text())
    assert "api_token" not in final["points"]["keys"]              # a secret name's points are dropped
    history = nbtrack.get(run_id, store=tmp_path / "runs.duckdb").history()
    loss = history[history.key == "loss"]
    assert loss.step.tolist() == list(range(10)) and loss.value.tolist() == [1.0 / (s + 1) for s in range(10)]
    odd = dict(zip(history.key, history.value))
    assert odd["odd"] != odd["odd"] and odd["big"] == float("inf") and "api_token" not in odd
    # a longer remainder is a points file, as every chunk before it
    run_id, files = _spooled_run(tmp_path / "long.duckdb", EMBED_POINTS + 1, monkeypatch)
    assert [f for f in files if f.name.startswith("pts.")]
    assert len(nbtrack.get(run_id, store=tmp_path / "long.duckdb").history()) == EMBED_POINTS + 1 + 3


@given(damage=st.sampled_from([("key", [7]), ("step", ["1"]), ("value", ["x"]), ("keys", [1]), ("chunk", -1),
                               ("value", []), ("step", [2**70])]))
@settings(max_examples=7, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_damaged_points_in_a_final_record_leave_the_run_as_it_started(tmp_path, capfd, monkeypatch, damage):
    path = tmp_path / uuid.uuid4().hex / "runs.duckdb"
    run_id, files = _spooled_run(path, 3, monkeypatch)
    final = sorted(f for f in files if f.name.startswith("run."))[-1]
    record = json.loads(final.read_text())
    field, value = damage
    record["points"][field] = value if field in ("chunk",) else (value * len(record["points"][field]) or [])
    final.write_text(json.dumps(record))
    capfd.readouterr()
    run = nbtrack.get(run_id, store=path)
    assert run.status == "running" and run.history().empty       # its start record, nothing half-imported
    assert "set aside an unreadable spool file" in capfd.readouterr().err
    assert (final.parent / f".unreadable.{final.name}").exists()
