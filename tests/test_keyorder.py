"""``metrics_by_key`` and ``params_by_key``, kept in key order for filters and sorts (store/keyorder.py):
mirrors that every write keeps, so what a filter or a sort reads from them must be what ``metrics`` and
``params`` themselves say."""
from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.recorder import run as recorder_run
from nbtrack.store import Store, keyorder, locality, paging, transfer
from nbtrack.store.filter_text import filter_literal, filter_name

from helpers import HeldClock, assert_kept_apart, same_start_runs

KEYS = ["m", "n", "a b,'\"`", "ключ"]
AT = 1_767_225_600.5
_VALUES = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 2.0 ** 64, 0.5]))
_METRICS = st.dictionaries(st.sampled_from(KEYS), _VALUES, max_size=3)
_TEXT = st.text(st.sampled_from("a'\",` \x00ü\U0001f600"), max_size=4)
_PARAM = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.integers(-3, 3), _VALUES, _TEXT, st.booleans(), st.none(),
                   st.lists(st.integers(0, 3), max_size=2))
_PARAMS = st.dictionaries(st.sampled_from(KEYS), _PARAM, max_size=3)
# a run: its start (runs of one slot share it), its params and metrics, and the metrics of a record
# imported while it ran (replaced by the final record)
_RUN = st.tuples(st.just("run"), st.integers(0, 12), _PARAMS, _METRICS, st.none() | _METRICS)
_STEPS = st.lists(st.one_of(
    _RUN, _RUN, _RUN,
    st.tuples(st.just("sync")),
    st.tuples(st.just("gc"), st.integers(0, 7)),   # the i-th run deleted, then removed for good
    st.tuples(st.just("pull")),                    # the store copied into a second one (again: replaced)
), min_size=1, max_size=12)
_FILTERS = st.lists(st.one_of(
    st.tuples(st.just("metrics"), st.sampled_from(KEYS), st.sampled_from(["<", ">=", "="]), _VALUES.filter(math.isfinite)),
    st.tuples(st.just("params"), st.sampled_from(KEYS), st.sampled_from(["<", ">=", "=", "!="]),
              st.one_of(st.integers(-3, 3), _VALUES.filter(math.isfinite), _TEXT)),
    st.tuples(st.just("params"), st.sampled_from(KEYS), st.sampled_from(["=", "!="]), st.booleans()),
    st.tuples(st.just("params"), st.sampled_from(KEYS), st.just("in"), st.lists(st.one_of(st.integers(-3, 3), _TEXT),
                                                                                  min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["metrics", "params"]), st.sampled_from(KEYS), st.just("is null"), st.none()),
), min_size=1, max_size=3)


def _record(store: Store, monkeypatch, name: str, when: float, params: dict, final: dict, mid: dict | None) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(recorder_run, "time", HeldClock(when))
        with nbtrack.run(name, params=params, store=store) as run:
            if mid is not None:   # imported while running: the final record replaces its rows
                if mid:
                    run.log(**mid)
                store.sync()
            if final:
                run.log(**final)


def _plain(store: Store, where: Path) -> Store:
    """A copy of ``store`` that reads ``metrics`` and ``params`` themselves: a store from before the
    copies, opened read-only."""
    with store.connect():
        pass   # imports the spool
    shutil.copy(store.path, where)
    wal = store.path.with_name(store.path.name + ".wal")
    if wal.exists():
        shutil.copy(wal, where.with_name(where.name + ".wal"))
    _from_before(where)   # opened read-only, the copies' stand-ins are views of the tables
    return Store(where, read_only=True)


def _term(group: str, key: str, op: str, value) -> str:
    if op == "in":
        return f"{filter_name(group + '.' + key)} in ({', '.join(filter_literal(v) for v in value)})"
    return f"{filter_name(group + '.' + key)} {op}" + ("" if value is None else f" {filter_literal(value)}")


def _reads(store: Store, filters: list[str], columns: list[str]) -> list:
    """What a user sees: the runs each filter picks, and the order of the panel's sort by each column."""
    seen = [sorted(nbtrack.runs(where=f, store=store).get("name", [])) for f in filters]
    with store.connect(read_only=True) as con:
        cond, args = paging.view_sql(con, None, None, None)
        names = dict(con.execute("SELECT run_id, name FROM runs").fetchall())
        for column in columns:
            for desc in (False, True):
                ids = paging.ordered_ids(con, cond, args, column, desc=desc).to_pylist()
                seen.append([names[i] for i in ids])
    return seen


def test_filters_and_sorts_read_from_the_copies_what_the_tables_hold_after_any_writes(monkeypatch):
    """Runs with odd values (NaN, infinities, -0.0, the largest and least floats, ints past 64 bits, text
    with quotes, commas, NUL and emoji, lists), some sharing a start, some re-imported with other metrics,
    some removed by gc, copied into a second store and again: in both stores the copies hold what their
    tables hold, and every filter and sort reads the same runs and order as a store that reads the tables
    themselves. The copies' ends are sorted every few rows, or never."""

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_STEPS, _FILTERS, st.sampled_from([2, 5, 10 ** 9]))
    @example([("run", 5, {"m": 1, "n": "x"}, {"m": 1.0, "n": 2.0}, None),
              ("run", 1, {"m": 2 ** 70}, {"m": 3.0}, {"m": -1.0, "n": 0.0}), ("sync",),
              ("run", 7, {"n": "it's"}, {"m": 0.5, "n": -0.0}, {"m": 9.0}), ("gc", 0), ("pull",),
              ("run", 2, {"m": float("nan")}, {"m": float("nan")}, None), ("run", 9, {}, {"m": 2.0, "n": 1.0}, None),
              ("run", 7, {"m": [1, 2]}, {"m": 4.0}, None), ("gc", 1), ("pull",)],
             [("metrics", "m", ">=", 1.0), ("params", "n", "in", ["x", 1]), ("metrics", "n", "is null", None)],
             2)   # sorted again and again, starts reused
    def same(steps, terms, sort_after):
        monkeypatch.setattr(keyorder, "SORT_AFTER", sort_after)
        with tempfile.TemporaryDirectory() as tmp:
            store, other = Store(Path(tmp) / "s.duckdb"), Store(Path(tmp) / "o.duckdb")
            names: list[str] = []
            pulled = False
            for step in steps:
                if step[0] == "run":
                    names.append(f"r{len(names)}")
                    _record(store, monkeypatch, names[-1], AT + step[1], *step[2:])
                elif step[0] == "sync":
                    store.sync()
                elif step[0] == "gc" and step[1] < len(names):
                    store.sync()
                    nbtrack.delete(where=f"name = '{names[step[1]]}'", store=store)
                    store.collect()
                elif step[0] == "pull":
                    transfer.copy_runs(store, other)
                    pulled = True
            filters = [" and ".join(_term(*t) for t in terms), *(_term(*t) for t in terms)]
            for made in (store, other) if pulled else (store,):
                with made.connect() as con:
                    assert keyorder.drift(con) == 0
                plain = _plain(made, Path(tmp) / f"plain-{made.path.name}")
                columns = [f"{group}.{key}" for group in ("metrics", "params") for key in KEYS]
                assert _reads(made, filters, columns) == _reads(plain, filters, columns), filters

    same()


def _from_before(path: Path) -> None:
    """Make the store at ``path`` one written before the copies in key order."""
    con = duckdb.connect(str(path))
    for table in keyorder.COLUMNS:
        con.execute(f"DROP TABLE {locality.BY_KEY[table]}")
    con.execute(f"DROP TABLE {keyorder.STATE}")
    con.execute("DELETE FROM schema_migrations WHERE name = '0014_by_key'")
    con.close()


def test_a_store_from_before_the_copies_builds_them_once_and_reads_the_same(tmp_path, monkeypatch):
    """A store written before the copies in key order: opened read-only, it reads ``metrics`` and
    ``params`` themselves; opened to write, it builds the copies, in key order, and reads as before. The
    runs of a shared start stay apart either way."""
    store = Store(tmp_path / "s.duckdb")
    for i in range(20):
        _record(store, monkeypatch, f"x{i}", AT + i, {"opt": "sgd" if i % 3 else "adam", "lr": i / 10},
                {"loss": 1 - i / 20, "acc": i / 20}, None)
    store.sync()
    filters = ["metrics.acc > 0.5", "metrics.acc < 0.6 and metrics.loss < 0.7", "metrics.acc is null",
               "params.opt = 'adam' and metrics.acc > 0.2", "params.lr in (0.3, 0.4, 1.5)"]
    columns = ["metrics.acc", "metrics.loss", "params.lr", "params.opt"]
    before = _reads(store, filters, columns)
    _from_before(store.path)
    assert _reads(Store(store.path, read_only=True), filters, columns) == before
    with store.connect() as con:   # migrates
        assert keyorder.drift(con) == 0
        for table in keyorder.COLUMNS:
            keys = [r[0] for r in con.execute(f"SELECT key FROM {locality.BY_KEY[table]}").fetchall()]
            assert keys == sorted(keys) and len(keys) == 40, table
    assert _reads(store, filters, columns) == before

    shared = Store(tmp_path / "shared.duckdb")
    same_start_runs(shared, monkeypatch)
    _from_before(shared.path)
    assert_kept_apart(Store(shared.path, read_only=True))
    assert_kept_apart(shared)


def test_maintain_copies_the_tables_again_after_sql_of_ones_own(tmp_path, monkeypatch):
    """Rows changed with SQL outside nbtrack are not copied; ``nbtrack maintain`` copies both tables
    again, and filters and sorts then read what the tables hold."""
    from click.testing import CliRunner

    from nbtrack.cli import main

    store = Store(tmp_path / "s.duckdb")
    for i in range(6):
        _record(store, monkeypatch, f"x{i}", AT + i, {"opt": "sgd"}, {"acc": i / 10}, None)
    store.sync()
    con = duckdb.connect(str(store.path))
    con.execute("UPDATE metrics SET value = 0.99 WHERE value = 0.0")
    con.execute("UPDATE params SET value_json = '\"adam\"', value_text = 'adam' WHERE started_us = "
                "(SELECT max(started_us) FROM params)")
    con.close()
    with store.connect() as con:
        assert keyorder.drift(con) == 4   # a row each way in each copy
    out = CliRunner().invoke(main, ["maintain", "--store", str(store.path)])
    assert out.exit_code == 0 and "copied again in key order: 12 rows" in out.output, out.output
    with store.connect() as con:
        assert keyorder.drift(con) == 0
    filters, columns = ["metrics.acc > 0.9", "params.opt = 'adam'"], ["metrics.acc", "params.opt"]
    assert _reads(store, filters, columns) == _reads(_plain(store, tmp_path / "plain.duckdb"), filters, columns)
    assert _reads(store, filters, columns)[:2] == [["x0"], ["x5"]]
