"""Values to params, metrics and fingerprints; the registry of fingerprinters.

A fingerprint is type, shape/length, dtype and a content hash computed
without copying large buffers where the type allows (numpy, pandas, polars,
pyarrow); huge objects are hashed from evenly spread samples so the time
stays bounded, and the method says so. Nothing here imports numpy, pandas or
polars: a fingerprinter is looked up by the value's type name, so only
libraries the user already imported are touched. Nothing here may raise into
the user's cell: every fingerprint is taken under ``safe_fingerprint``.
"""
from __future__ import annotations

import datetime
import decimal
import json
import pickle
import sys
import types
from collections.abc import Callable
from typing import Any

import xxhash

from ..errors import UnhashableInputError

FULL_HASH_BYTES = 1 << 30       # beyond 1 GiB a buffer is hashed from samples
SAMPLE_BLOCKS, SAMPLE_BLOCK_BYTES = 256, 1 << 20
PICKLE_HASH_LIMIT = 64 << 20
CONTAINER_BUDGET = 100_000
MAX_SCALAR_STR = 10_000

Fingerprint = dict[str, Any]
Fingerprinter = Callable[[Any], Fingerprint]


def type_name(value: Any) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


class CapturerRegistry:
    """Fingerprinters by type name (no import needed), by type, or by predicate; last registered wins."""

    def __init__(self) -> None:
        self._entries: list[tuple[str | type | Callable[[Any], bool], Fingerprinter]] = []

    def register(self, type_or_predicate: str | type | Callable[[Any], bool], fn: Fingerprinter) -> None:
        self._entries.insert(0, (type_or_predicate, fn))

    def find(self, value: Any) -> Fingerprinter | None:
        mro = type(value).__mro__
        names = None
        for matcher, fn in self._entries:
            if isinstance(matcher, str):
                if names is None:
                    names = {f"{c.__module__}.{c.__qualname__}" for c in mro}
                if matcher in names:
                    return fn
            elif isinstance(matcher, type):
                if matcher in mro:
                    return fn
            else:
                try:
                    if matcher(value):
                        return fn
                except Exception:
                    continue
        return None


registry = CapturerRegistry()


# -- scalars ----------------------------------------------------------------
_PLAIN = (bool, int, float, type(None))
_VALUE_TYPES = (decimal.Decimal, datetime.datetime, datetime.date, datetime.time, datetime.timedelta, complex)


def as_scalar(value: Any) -> tuple[bool, Any]:
    """(True, plain Python value) for numbers, bools, None, short strings and numpy scalars."""
    t = type(value)
    if t in _PLAIN:
        return True, value
    if t is str:
        return len(value) <= MAX_SCALAR_STR, value
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        if isinstance(value, np.bool_):
            return True, bool(value)
        if isinstance(value, np.integer):
            return True, int(value)
        if isinstance(value, np.floating):
            return True, float(value)
        if isinstance(value, np.str_):
            return len(value) <= MAX_SCALAR_STR, str(value)
        return False, None
    if isinstance(value, (bool, int, float)) and t.__module__ in ("builtins", "enum"):
        return True, value
    if t in _VALUE_TYPES:   # kept exactly as values (store/codec.py), not fingerprinted
        return True, value
    if t is bytes:
        return len(value) <= MAX_SCALAR_STR, value
    return False, None


def is_number(value: Any) -> bool:
    """A metric: an int or float that a float holds (an int past 1e308 is a value, kept exactly)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def is_data(value: Any) -> bool:
    """Modules, functions, classes and IPython plumbing are code, not data: never captured."""
    return not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                                  types.MethodType, type))


# -- hashing helpers ----------------------------------------------------------
def _hash_buffer(h: "xxhash.xxh3_128", buf: Any, nbytes: int) -> bool:
    """Hash a contiguous byte buffer; return True when it was sampled."""
    if nbytes <= FULL_HASH_BYTES:
        h.update(buf)
        return False
    mv = memoryview(buf).cast("B")
    step = nbytes // SAMPLE_BLOCKS
    for i in range(SAMPLE_BLOCKS):
        h.update(mv[i * step: i * step + SAMPLE_BLOCK_BYTES])
    h.update(mv[-SAMPLE_BLOCK_BYTES:])
    return True


def hash_ndarray(h: "xxhash.xxh3_128", arr: Any) -> bool:
    np = sys.modules["numpy"]
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype.hasobject:
        sampled = arr.size > CONTAINER_BUDGET
        flat = arr.reshape(-1)
        for item in flat[:CONTAINER_BUDGET]:
            h.update(repr(item).encode()[:256])
        return sampled
    if arr.size == 0:
        return False
    if arr.flags.c_contiguous:
        return _hash_buffer(h, arr.reshape(-1).view(np.uint8), arr.nbytes)
    # strided views: copy bounded slabs instead of the whole array
    rows = max(1, (64 << 20) // max(1, arr[0:1].nbytes))
    sampled = False
    if arr.nbytes > FULL_HASH_BYTES:
        picks = np.linspace(0, arr.shape[0] - 1, SAMPLE_BLOCKS).astype(int)
        arr, sampled = arr[np.unique(picks)], True
    for start in range(0, arr.shape[0], rows):
        slab = np.ascontiguousarray(arr[start:start + rows])
        h.update(slab.reshape(-1).view(np.uint8))
    return sampled


def _fp(value: Any, digest: str | None, method: str, shape: tuple[int, ...] | None = None,
        length: int | None = None, dtype: str | None = None, **summary: Any) -> Fingerprint:
    return {"type": type_name(value), "hash": digest, "hash_method": method,
            "shape": list(shape) if shape is not None else None, "length": length,
            "dtype": dtype, "summary": summary}


def _fp_ndarray(arr: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    sampled = hash_ndarray(h, arr)
    return _fp(arr, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), tuple(arr.shape),
               int(arr.shape[0]) if arr.ndim else None, str(arr.dtype))


def _hash_series_values(h: "xxhash.xxh3_128", series: Any) -> bool:
    pd = sys.modules["pandas"]
    dtype = series.dtype
    if getattr(dtype, "kind", "O") in "biufcmM" and type(dtype).__module__ == "numpy":
        return hash_ndarray(h, series.to_numpy(copy=False))
    sample = series
    sampled = len(series) > 4 * CONTAINER_BUDGET * 10
    if sampled:  # object columns of millions of rows: hash spread rows, in bounded time
        step = len(series) // (CONTAINER_BUDGET * 10)
        sample = series.iloc[::step]
    hashed = pd.util.hash_pandas_object(sample, index=False).to_numpy()
    hash_ndarray(h, hashed)
    return sampled


def _fp_pandas_frame(df: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    columns = [str(c) for c in df.columns]
    dtypes = [str(t) for t in df.dtypes]
    h.update(json.dumps([list(df.shape), columns, dtypes]).encode())
    sampled = _hash_index(h, df.index)
    for i in range(df.shape[1]):
        sampled |= _hash_series_values(h, df.iloc[:, i])
    return _fp(df, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), tuple(df.shape),
               int(df.shape[0]), None, columns=columns[:50], dtypes=dict(zip(columns[:50], dtypes[:50])),
               n_columns=len(columns))


def _hash_index(h: "xxhash.xxh3_128", index: Any) -> bool:
    pd = sys.modules["pandas"]
    if isinstance(index, pd.RangeIndex):
        h.update(repr((index.start, index.stop, index.step)).encode())
        return False
    return _hash_series_values(h, pd.Series(index, copy=False)) if len(index) else False


def _fp_pandas_series(s: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    h.update(json.dumps([len(s), str(s.dtype), str(s.name)]).encode())
    sampled = _hash_index(h, s.index) | _hash_series_values(h, s)
    return _fp(s, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), (len(s),), len(s),
               str(s.dtype), name=str(s.name))


def _fp_polars_frame(df: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    schema = {k: str(v) for k, v in df.schema.items()}
    h.update(json.dumps([list(df.shape), list(schema.items())]).encode())
    if df.height and df.width:
        hash_ndarray(h, df.hash_rows(seed=0).to_numpy())
    return _fp(df, h.hexdigest(), "polars.hash_rows+xxh3_128", tuple(df.shape), df.height, None,
               schema=dict(list(schema.items())[:50]), n_columns=df.width)


def _fp_polars_series(s: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    h.update(json.dumps([len(s), str(s.dtype), s.name]).encode())
    if len(s):
        hash_ndarray(h, s.hash(seed=0).to_numpy())
    return _fp(s, h.hexdigest(), "polars.hash+xxh3_128", (len(s),), len(s), str(s.dtype), name=s.name)


def _fp_polars_lazy(lf: Any) -> Fingerprint:
    schema = None
    try:  # resolves the schema; never runs the query
        schema = {k: str(v) for k, v in lf.collect_schema().items()}
    except Exception:
        pass
    return _fp(lf, None, "lazy-not-collected", schema=schema, note="lazy frame: not collected, not hashed")


def _fp_arrow_table(t: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    h.update(str(t.schema).encode())
    for column in t.columns:
        for chunk in column.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    _hash_buffer(h, buf, buf.size)
    return _fp(t, h.hexdigest(), "xxh3_128", (t.num_rows, t.num_columns), t.num_rows, None,
               columns=t.column_names[:50])


def _fp_iterator(it: Any) -> Fingerprint:
    return _fp(it, None, "iterator-not-consumed", note="iterator or generator: not consumed, not hashed")


def _canonical(h: "xxhash.xxh3_128", value: Any, budget: list[int], path: set[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Budget
    t = type(value)
    if t in _PLAIN or t is str:
        h.update(f"{t.__name__}:{value!r};".encode())
        return
    if t in (bytes, bytearray):
        h.update(b"b:")
        h.update(value)
        return
    if t in (list, tuple, dict, set, frozenset):
        if id(value) in path:
            h.update(b"<recursion>")
            return
        path.add(id(value))
        h.update(f"{t.__name__}[{len(value)}](".encode())
        if t is dict:
            for k, v in value.items():
                _canonical(h, k, budget, path)
                _canonical(h, v, budget, path)
        elif t in (set, frozenset):
            for item in sorted(value, key=repr):
                _canonical(h, item, budget, path)
        else:
            for item in value:
                _canonical(h, item, budget, path)
        path.discard(id(value))
        h.update(b")")
        return
    fp = fingerprint(value)
    h.update(f"{fp['type']}:{fp['hash']};".encode())


class _Budget(Exception):
    pass


def _fp_container(value: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    try:
        _canonical(h, value, [CONTAINER_BUDGET], set())
        digest, method = h.hexdigest(), "xxh3_128"
    except _Budget:
        digest, method = None, "too-large"
    length = len(value)
    return _fp(value, digest, method, (length,), length, None)


def _fp_text(value: Any) -> Fingerprint:
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
    h = xxhash.xxh3_128()
    sampled = _hash_buffer(h, data, len(data))
    return _fp(value, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), (len(value),), len(value))


class _TooBig(Exception):
    pass


class _HashWriter:
    def __init__(self, h: "xxhash.xxh3_128") -> None:
        self.h, self.size = h, 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > PICKLE_HASH_LIMIT:
            raise _TooBig
        self.h.update(data)
        return len(data)


def _fp_pickled(value: Any) -> Fingerprint:
    """Hash an arbitrary object by streaming its pickle (protocol 5, buffers out of band, no copy).

    Pickling is only a way to read the object's state: nothing is stored, nothing is ever loaded.
    """
    h = xxhash.xxh3_128()

    def buffers(pb: pickle.PickleBuffer) -> bool:
        raw = pb.raw()
        _hash_buffer(h, raw, raw.nbytes)
        return False

    try:
        pickle.Pickler(_HashWriter(h), protocol=5, buffer_callback=buffers).dump(value)
    except _TooBig:
        msg = (f"{type_name(value)} pickles to more than {PICKLE_HASH_LIMIT >> 20} MiB, too large to hash; "
               "leave it out with %%track --exclude NAME")
        raise UnhashableInputError(msg) from None
    except Exception as e:
        reason = f"{type(e).__name__}: {e}"[:200]
        msg = f"{type_name(value)} cannot be hashed ({reason}); leave it out with %%track --exclude NAME"
        raise UnhashableInputError(msg) from None
    return _fp(value, h.hexdigest(), "pickle5+xxh3_128")


def _is_iterator(value: Any) -> bool:
    t = type(value)
    return isinstance(value, types.GeneratorType) or (
        hasattr(t, "__next__") and hasattr(t, "__iter__"))


# libraries move classes between modules and re-export them (pandas 3 reports ``pandas.DataFrame``),
# so each type is known by every name it has been seen under
for _names, _fn in [
    (("numpy.ndarray",), _fp_ndarray),
    (("pandas.DataFrame", "pandas.core.frame.DataFrame"), _fp_pandas_frame),
    (("pandas.Series", "pandas.core.series.Series"), _fp_pandas_series),
    (("polars.DataFrame", "polars.dataframe.frame.DataFrame"), _fp_polars_frame),
    (("polars.Series", "polars.series.series.Series"), _fp_polars_series),
    (("polars.LazyFrame", "polars.lazyframe.frame.LazyFrame"), _fp_polars_lazy),
    (("pyarrow.Table", "pyarrow.lib.Table"), _fp_arrow_table),
]:
    for _name in _names:
        registry.register(_name, _fn)
for _t in (list, tuple, dict, set, frozenset):
    registry.register(_t, _fp_container)
for _t in (str, bytes, bytearray):
    registry.register(_t, _fp_text)
registry.register(_is_iterator, _fp_iterator)


def fingerprint(value: Any) -> Fingerprint:
    """Fingerprint any object; raise UnhashableInputError when it cannot be hashed."""
    if not frameworks.entry_points_loaded:
        frameworks.load_entry_points()
    fn = registry.find(value)
    if fn is None:
        return _fp_pickled(value)
    fp = fn(value)
    if not isinstance(fp, dict):
        raise TypeError(f"the capturer for {type_name(value)} returned {type(fp).__name__}, not a dict")
    fp.setdefault("type", type_name(value))
    fp.setdefault("hash_method", "capturer")
    for key in ("shape", "length", "dtype"):
        fp.setdefault(key, None)
    fp.setdefault("summary", {})
    return fp


def safe_fingerprint(value: Any) -> Fingerprint:
    """A fingerprint that never raises: failures are recorded in it instead."""
    try:
        return fingerprint(value)
    except UnhashableInputError as e:
        return _fp(value, None, "unhashable", error=str(e))
    except Exception as e:
        try:
            name = type_name(value)
        except Exception:
            name = "?"
        return {"type": name, "hash": None, "hash_method": "error", "shape": None, "length": None,
                "dtype": None, "summary": {"error": f"{type(e).__name__}: {e}"[:300]}}


from . import frameworks  # noqa: E402  (the built-in capturers and the plugin API live there)
