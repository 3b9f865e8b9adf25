"""Watching a cell runs none of the user's code: user hooks are counted during real tracked cells in a
real IPython shell (``__reduce__``, UDFs, schema callbacks, generators, mocks), and the slow paths of
fingerprinting stop at the cell's budget with the reason recorded."""
from __future__ import annotations

import time
import tracemalloc

import pytest

import nbtrack
from nbtrack.recorder.budget import Budget
from nbtrack.recorder.capture import safe_fingerprint

class Reduced:
    """Its __reduce__ has a side effect, as one that writes a file would. (Defined in an importable
    module: pickle finds a class by its module and name, which a test shell's own classes lack.)"""
    calls: list[int] = []

    def __init__(self, n: int) -> None:
        self.n = n

    def __reduce__(self):
        Reduced.calls.append(self.n)
        return (Reduced, (self.n,))


class Slow:
    calls: list[int] = []

    def __reduce__(self):
        Slow.calls.append(1)
        time.sleep(0.02)
        return (Slow, ())


def test_an_object_read_and_bound_is_serialised_once_per_cell(ip):
    Reduced.calls = ip.user_ns["calls"] = []
    ip.user_ns["obj"] = Reduced(1)
    assert ip.run_cell("%%track alias\ny = obj\nz = obj\nw = [obj, obj]").success
    assert ip.user_ns["calls"] == [1]
    run = nbtrack.last()
    assert run.inputs["obj"]["hash"] == run.outputs["y"]["hash"] == run.outputs["z"]["hash"] is not None
    # each cell is a new look: the next tracked cell serialises it once again
    assert ip.run_cell("%%track again\nv = obj").success
    assert ip.user_ns["calls"] == [1, 1]


def test_mocks_are_never_probed(ip):
    ip.run_cell("from unittest import mock\nfrom sklearn.ensemble import RandomForestClassifier\n"
                "m = mock.MagicMock()\nspecced = mock.create_autospec(RandomForestClassifier, instance=True)")
    before = {name: set(ip.user_ns[name]._mock_children) for name in ("m", "specced")}
    assert ip.run_cell("%%track mocks\nm2 = m\nout = mock.MagicMock()\nboth = [m, specced]").success
    for name, children in before.items():
        mock_ = ip.user_ns[name]
        # an attribute looked up (get_params, fit, __reduce_ex__) would have made a child or a call
        assert mock_.mock_calls == [] and set(mock_._mock_children) == children, name
    run = nbtrack.last()
    assert run.inputs["m"]["hash_method"] == "mock-not-probed"
    assert run.outputs["out"]["hash_method"] == "mock-not-probed"
    assert ip.user_ns["out"]._mock_children == {}
    assert "m.max_depth" not in run.params and not any(k.startswith("specced.") for k in run.params)


def test_duck_typed_estimators_are_not_called(ip):
    """A user's class with get_params and fit is not a scikit-learn estimator: neither is called."""
    ip.run_cell("seen = []\nclass Duck:\n    def get_params(self, deep=True):\n        seen.append('get_params')\n"
                "        return {'depth': 3}\n    def fit(self, X):\n        seen.append('fit')\nduck = Duck()")
    assert ip.run_cell("%%track duck\nd = duck").success
    assert ip.user_ns["seen"] == []
    assert "d.depth" not in nbtrack.last().params


def test_a_refit_estimator_bound_at_the_end_shows_its_fitted_state(ip):
    ip.run_cell("from sklearn.linear_model import LogisticRegression\nfrom sklearn.datasets import load_iris\n"
                "X, y = load_iris(return_X_y=True)\nmodel = LogisticRegression(max_iter=300)")
    assert ip.run_cell("%%track fit\nmodel.fit(X, y)\nfitted = model").success
    run = nbtrack.last()
    assert run.inputs["model"]["summary"]["fitted"] is False
    assert run.outputs["fitted"]["summary"]["fitted"] is True
    assert run.outputs["fitted"]["hash"] != run.inputs["model"]["hash"]
    assert run.params["fitted.max_iter"] == 300


def test_lazy_frames_are_neither_collected_nor_resolved(ip, tmp_path):
    """A polars plan with a UDF, a scan whose schema comes from a callback and an IO source whose reads
    are counted: none runs when the plan is read and bound by a tracked cell."""
    ip.run_cell(
        "import polars as pl\nfrom polars.io.plugins import register_io_source\nhooks = []\n"
        "def udf(batch):\n    hooks.append('udf')\n    return batch\n"
        "def schema():\n    hooks.append('schema')\n    return pl.Schema({'a': pl.Int64})\n"
        "def source(with_columns, predicate, n_rows, batch_size):\n    hooks.append('read')\n"
        "    yield pl.DataFrame({'a': [1, 2]})\n"
        "scan = register_io_source(source, schema=schema)\n"
        "pl.DataFrame({'a': [1]}).write_csv('data.csv')\ncsv = pl.scan_csv('data.csv')")
    ip.user_ns["hooks"].clear()
    assert ip.run_cell("%%track lazy\nplan = scan.map_batches(udf).with_columns(b=pl.col('a') * 2)\n"
                       "plan2 = csv.select(pl.col('a').map_elements(udf, return_dtype=pl.Int64))").success
    assert ip.user_ns["hooks"] == []
    run = nbtrack.last()
    for name in ("plan", "plan2"):
        assert run.outputs[name]["hash"] is None and run.outputs[name]["hash_method"] == "lazy-not-collected"
    assert run.inputs["scan"]["hash_method"] == "lazy-not-collected"
    # the plans still work afterwards: nothing was consumed
    assert ip.run_cell("result = plan.collect()").success and ip.user_ns["result"]["b"].to_list() == [2, 4]


def test_generators_and_iterators_are_not_consumed(ip):
    ip.run_cell("pulled = []\ndef gen():\n    for i in range(3):\n        pulled.append(i)\n        yield i\n"
                "g = gen()\nit = iter([1, 2, 3])")
    assert ip.run_cell("%%track gens\ng2 = g\nit2 = it\nm = map(pulled.append, range(3))").success
    assert ip.user_ns["pulled"] == []
    assert list(ip.user_ns["it"]) == [1, 2, 3]
    run = nbtrack.last()
    assert run.outputs["g2"]["hash_method"] == run.outputs["m"]["hash_method"] == "iterator-not-consumed"


def test_dask_and_xarray_are_not_computed(ip):
    pytest.importorskip("dask.array")
    pytest.importorskip("xarray")
    ip.run_cell("import dask, dask.array as da, numpy as np, xarray as xr\ncomputed = []\n"
                "def load():\n    computed.append(1)\n    return np.ones(4)\n"
                "lazy = da.from_delayed(dask.delayed(load, pure=True)(), shape=(4,), dtype=float)\n"
                "arr = xr.DataArray(lazy, dims=['t'])")
    assert ip.run_cell("%%track dask\ndoubled = lazy * 2\nlabelled = arr + 1\n"
                       "eager = xr.DataArray(np.arange(4.0), dims=['t'])").success
    assert ip.user_ns["computed"] == []
    run = nbtrack.last()
    assert run.outputs["doubled"]["hash_method"] == "dask-graph-token"
    assert run.outputs["doubled"]["shape"] == (4,) and run.outputs["doubled"]["dtype"] == "float64"
    assert run.outputs["labelled"]["hash_method"] == "dask-graph-token"
    assert run.outputs["eager"]["hash_method"] == "xxh3_128"
    # the graph's token is the same for the same computation, so lineage still links
    assert ip.run_cell("%%track dask2\ndoubled = lazy * 2").success
    assert nbtrack.last().outputs["doubled"]["hash"] == run.outputs["doubled"]["hash"]
    assert ip.user_ns["computed"] == []


def test_slow_hooks_stop_at_the_cell_budget_with_the_reason(ip):
    """2,000 objects whose serialisation takes 20 ms each would take 40 s: the cell's budget stops the
    fingerprint early, recorded as skipped with the reason; the other values are still recorded."""
    Slow.calls = []
    ip.user_ns["many"] = [Slow() for _ in range(2000)]
    assert ip.run_cell("%%track slow\nout = many\nsmall = list(range(3))\nscore = len(small) / 6").success
    assert len(Slow.calls) < 200
    run = nbtrack.last()
    fp = run.inputs["many"]
    assert fp["hash"] is None and fp["hash_method"] == "skipped: budget"
    assert "200 ms" in fp["summary"]["reason"] and "--exclude" in fp["summary"]["reason"]
    assert run.outputs["small"]["hash"] is not None and run.metrics["score"] == 0.5
    # a bigger budget, asked for, is used
    ip.run_line_magic("nbtrack", "budget 1000")
    assert ip.run_cell("%%track slow2 --exclude many\nfew = many[:20]").success
    assert nbtrack.last().outputs["few"]["hash"] is not None
    ip.run_line_magic("nbtrack", "budget 0.2")


def test_a_bad_budget_is_refused_with_the_fix(ip):
    from IPython.core.error import UsageError
    with pytest.raises(UsageError, match="not a number of seconds"):
        ip.run_line_magic("nbtrack", "budget soon")


def test_big_strings_and_buffers_are_hashed_without_a_copy():
    size = 200 << 20
    text = "é" * (size // 2)          # 200 MB of UTF-8
    buf = bytearray(size)
    tracemalloc.start()
    try:
        for value in (text, buf, bytes(16)):
            tracemalloc.reset_peak()
            fp = safe_fingerprint(value, Budget())
            assert fp["hash"] and fp["length"] == len(value)
            assert tracemalloc.get_traced_memory()[1] < 32 << 20   # far below one copy
    finally:
        tracemalloc.stop()
    # chunked hashing is the hash of the whole encoding
    import xxhash
    small = "naïve ☃ " * 1_000_000
    assert safe_fingerprint(small)["hash"] == xxhash.xxh3_128(small.encode()).hexdigest()
