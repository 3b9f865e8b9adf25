"""Inputs that must not break a cell, and tracked == untracked for random cells (hypothesis)."""
from __future__ import annotations

import threading

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.recorder.capture import fingerprint, safe_fingerprint

HOSTILE = '''
class Hostile:
    def __repr__(self): raise RuntimeError("repr")
    def __eq__(self, other): raise RuntimeError("eq")
    def __hash__(self): raise RuntimeError("hash")
    def __len__(self): raise RuntimeError("len")
    def __getattr__(self, name): raise RuntimeError("getattr " + name)
    def __reduce_ex__(self, protocol): raise RuntimeError("pickle")
'''


def test_hostile_objects_generators_and_lazy_frames_do_not_break_a_cell(ip, capsys):
    ip.run_cell(HOSTILE)
    lazy_calls = []
    lf = pl.DataFrame({"a": [1, 2, 3]}).lazy().map_batches(lambda df: lazy_calls.append(1) or df)
    gen = (i for i in range(5))
    it = iter([1, 2, 3])
    recursive = [1]
    recursive.append(recursive)
    d = {}
    d["self"] = d
    ip.user_ns.update(h=ip.user_ns["Hostile"](), gen=gen, it=it, lf=lf, recursive=recursive, d=d,
                      lock=threading.Lock())
    result = ip.run_cell("%%track\nobjs = [h, gen, it, lf, recursive, d, lock]\nh2 = h\nn = len(objs)")
    assert result.success
    out = capsys.readouterr()
    assert "nbtrack warning" not in out.out + out.err
    run = nbtrack.last()
    assert run.status == "finished" and run.metrics == {"n": 7.0}
    assert run.inputs["h"]["hash"] is None and "cannot be hashed" in run.inputs["h"]["summary"]["error"]
    assert run.inputs["gen"]["hash_method"] == "iterator-not-consumed"
    assert run.inputs["it"]["hash_method"] == "iterator-not-consumed"
    assert list(gen) == [0, 1, 2, 3, 4] and list(it) == [1, 2, 3]      # never consumed
    assert run.inputs["lf"]["hash_method"] == "lazy-not-collected" and lazy_calls == []
    assert run.inputs["recursive"]["hash"] and run.inputs["d"]["hash"]
    assert run.inputs["lock"]["hash"] is None
    assert run.outputs["h2"]["hash"] is None


def test_unhashable_object_gets_a_clear_error():
    lock = threading.Lock()
    with pytest.raises(nbtrack.errors.UnhashableInputError, match=r"_thread.lock cannot be hashed .*--exclude NAME"):
        fingerprint(lock)
    assert safe_fingerprint(lock)["hash_method"] == "unhashable"


def test_huge_array_is_hashed_completely_and_a_change_anywhere_shows():
    big = np.zeros(10**8)        # 800 MB: fully hashed (the benchmark prints how long it takes)
    fp = fingerprint(big)
    assert fp["hash_method"] == "xxh3_128" and fp["shape"] == [10**8]
    big[5 * 10**7] = 1.0
    assert fingerprint(big)["hash"] != fp["hash"]


def test_strided_views_hash_like_their_contiguous_copy_content():
    a = np.arange(200.0).reshape(20, 10)
    view = a[:, ::2]
    assert fingerprint(view)["hash"] == fingerprint(np.ascontiguousarray(view))["hash"]


def test_names_shadowing_builtins_del_and_a_big_namespace(ip):
    ip.user_ns.update({f"v{i}": i for i in range(10_000)})
    ip.user_ns["list"] = [3, 1, 2]
    result = ip.run_cell("%%track\nlen = 5\nsorted_list = sorted(list)\ndel v17\ntotal = v1 + v9999")
    assert result.success
    run = nbtrack.last()
    assert ip.user_ns["len"] == 5 and "v17" not in ip.user_ns
    assert run.params == {"len": 5, "v1": 1, "v9999": 9999}
    assert run.inputs["list"]["shape"] == (3,)
    assert run.outputs["v17"]["change"] == "removed"
    assert run.metrics == {"total": 10000.0}
    ip.run_cell("del len, list")


# -- tracked and untracked cells leave identical namespaces -------------------------
names = st.sampled_from(["a", "b", "c", "lr", "n"])
exprs = st.one_of(
    st.integers(-5, 5).map(str), st.floats(-1e3, 1e3, allow_nan=False).map(repr),
    st.sampled_from(["'x'", "[1, 2]", "{'k': 1}", "None", "True", "(1, 'a')", "2**8"]),
    names.map(lambda n: f"{n} if '{n}' in dir() else 0"),
    st.tuples(names, names).map(lambda p: f"[{p[0]}, {p[1]}] if '{p[0]}' in dir() and '{p[1]}' in dir() else []"),
)
statements = st.one_of(
    st.tuples(names, exprs).map(lambda p: f"{p[0]} = {p[1]}"),
    st.tuples(names, st.integers(0, 3)).map(lambda p: f"for _i in range({p[1]}):\n    {p[0]} = _i"),
    names.map(lambda n: f"if '{n}' in dir():\n    del {n}"),
    names.map(lambda n: f"print({n} if '{n}' in dir() else None)"),
    st.just("raise ValueError('in the cell')"),
)


def _snapshot(ns: dict) -> dict:
    return {k: repr(v) for k, v in ns.items() if not k.startswith("_") and k not in ("In", "Out", "exit", "quit",
                                                                                        "get_ipython")}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(statements, min_size=1, max_size=6), st.dictionaries(names, st.integers(0, 9), max_size=3))
def test_random_cells_leave_identical_namespaces(ip, body, start):
    cell = "\n".join(body)
    results = []
    for prefix in ("", "%%track\n"):
        ip.reset(new_session=False)
        ip.user_ns.update(start)
        r = ip.run_cell(prefix + cell)
        results.append((_snapshot(ip.user_ns), type(r.error_in_exec).__name__, repr(r.result)))
    assert results[0] == results[1]


def test_a_failure_inside_nbtrack_leaves_the_cell_alone(ip, capsys, monkeypatch):
    from nbtrack.recorder.run import ActiveRun
    from nbtrack.recorder.session import session

    def broken(self):
        raise RuntimeError("simulated bug in nbtrack")

    monkeypatch.setattr(ActiveRun, "_record", broken)
    result = ip.run_cell("%%track\nimport nbtrack\nvalue = 6 * 7\nprint('visible')\nvalue")
    out = capsys.readouterr()
    assert result.success and result.result == 42 and ip.user_ns["value"] == 42
    assert "visible" in out.out
    lines = [line for line in out.err.splitlines() if line.startswith("nbtrack warning:")]
    assert len(lines) == 1 and "simulated bug in nbtrack" in lines[0]
    assert session.active == []
    import sys
    assert type(sys.stdout).__name__ != "_Tee"


def test_a_failure_at_the_end_of_a_run_leaves_the_cell_alone(ip, capsys, monkeypatch):
    from nbtrack.recorder.run import ActiveRun
    from nbtrack.recorder.session import session

    def broken(self, *args, **kwargs):
        raise OSError("simulated failure while finishing")

    monkeypatch.setattr(ActiveRun, "finish", broken)
    result = ip.run_cell("%%track\nvalue = 6 * 7\nvalue")
    out = capsys.readouterr()
    assert result.success and result.result == 42
    lines = [line for line in out.err.splitlines() if line.startswith("nbtrack warning:")]
    assert len(lines) == 1 and "simulated failure while finishing" in lines[0]
    assert session.active == []
    import sys
    assert type(sys.stdout).__name__ != "_Tee"
