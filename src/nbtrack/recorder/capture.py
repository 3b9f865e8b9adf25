"""Values to params, metrics and fingerprints; the registry of fingerprinters.

A fingerprint is type, shape/length, dtype and a content hash computed
without copying large buffers where the type allows (numpy, pandas, polars,
pyarrow: their fingerprinters live in dataframes.py, the ML frameworks' in
frameworks.py); huge objects are hashed from evenly spread samples so the time
stays bounded, and the method says so. Nothing here imports numpy, pandas or
polars: a fingerprinter is looked up by the value's type name, so only
libraries the user already imported are touched. Nothing here may raise into
the user's cell: every fingerprint is taken under ``safe_fingerprint``.

Watching must not run the user's code: types with an exact path (buffers, frames, tables) are hashed
from their memory; only objects of unknown types are pickled (their ``__reduce__``/``__getstate__``
run), at most once per cell through a ``Budget``; lazy objects are described, never executed; mocks
are never probed. The slow paths (item by item, pickling) share the cell's time budget, and what
does not fit is recorded as ``skipped: budget`` with the reason.
"""
from __future__ import annotations

import datetime
import decimal
import pickle
import sys
import types
from collections.abc import Callable
from typing import Any

import xxhash

from ..errors import UnhashableInputError
from .budget import UNLIMITED, Budget, OverBudget, current

FULL_HASH_BYTES = 1 << 30       # beyond 1 GiB a buffer is hashed from samples
SAMPLE_BLOCKS, SAMPLE_BLOCK_BYTES = 256, 1 << 20
PICKLE_HASH_LIMIT = 64 << 20
CONTAINER_BUDGET = 100_000
MAX_SCALAR_STR = 10_000
TEXT_CHUNK = 1 << 22            # characters of a str encoded at a time: never a full UTF-8 copy

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
def hash_buffer(h: "xxhash.xxh3_128", buf: Any, nbytes: int) -> bool:
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
    if type(arr) is not np.ndarray:   # a subclass (a masked array): its data and its mask, as plain arrays
        ma = sys.modules.get("numpy.ma")
        if ma is not None and isinstance(arr, ma.MaskedArray) and arr.mask is not ma.nomask:
            hash_ndarray(h, np.asarray(ma.getmaskarray(arr)))
        arr = np.asarray(arr)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype.hasobject:
        sampled = arr.size > CONTAINER_BUDGET
        budget = current.get()
        with budget.slow(f"an object array of {arr.size} items, hashed item by item"):
            for i, item in enumerate(arr.reshape(-1)[:CONTAINER_BUDGET]):
                if not i & 63:
                    budget.check()
                try:
                    _canonical(h, item, [CONTAINER_BUDGET], set())
                except _TooMany:
                    h.update(b"<too-large>")
        return sampled
    if arr.size == 0:
        return False
    if arr.flags.c_contiguous:
        return hash_buffer(h, arr.reshape(-1).view(np.uint8), arr.nbytes)
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


def fingerprint_dict(value: Any, digest: str | None, method: str, shape: tuple[int, ...] | None = None,
        length: int | None = None, dtype: str | None = None, **summary: Any) -> Fingerprint:
    return {"type": type_name(value), "hash": digest, "hash_method": method,
            "shape": list(shape) if shape is not None else None, "length": length,
            "dtype": dtype, "summary": summary}


def _fp_ndarray(arr: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    sampled = hash_ndarray(h, arr)
    return fingerprint_dict(arr, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), tuple(arr.shape),
               int(arr.shape[0]) if arr.ndim else None, str(arr.dtype))


def _fp_mock(value: Any) -> Fingerprint:
    return fingerprint_dict(value, None, "mock-not-probed", note="a unittest.mock object: nothing on it is called")


def _fp_iterator(it: Any) -> Fingerprint:
    return fingerprint_dict(it, None, "iterator-not-consumed", note="iterator or generator: not consumed, not hashed")


def _canonical(h: "xxhash.xxh3_128", value: Any, budget: list[int], path: set[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooMany
    if not budget[0] & 7:
        current.get().check()
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


def hash_state(h: "xxhash.xxh3_128", value: Any) -> None:
    """Feed ``value`` (nested containers of anything) into ``h`` as containers are fingerprinted;
    raises UnhashableInputError or OverBudget."""
    try:
        _canonical(h, value, [CONTAINER_BUDGET], set())
    except _TooMany:
        raise UnhashableInputError(f"more than {CONTAINER_BUDGET} items to hash; leave it out with "
                                   "%%track --exclude NAME") from None


class _TooMany(Exception):
    """More items than CONTAINER_BUDGET to hash."""


def _fp_container(value: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    try:
        with current.get().slow(f"a {type(value).__name__} of {len(value)} items, hashed item by item"):
            _canonical(h, value, [CONTAINER_BUDGET], set())
        digest, method = h.hexdigest(), "xxh3_128"
    except _TooMany:
        digest, method = None, "too-large"
    length = len(value)
    return fingerprint_dict(value, digest, method, (length,), length, None)


def _fp_text(value: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    if not isinstance(value, str):   # bytes, bytearray: hashed in place
        sampled = hash_buffer(h, value, len(value))
        return fingerprint_dict(value, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), (len(value),), len(value))
    # a str has no buffer to read: its UTF-8 is made a chunk at a time (equal to hashing the whole
    # encoding, without a second copy of a big string); past 1 Gi characters, spread chunks only
    n = len(value)
    sampled = n > FULL_HASH_BYTES
    if sampled:
        step = n // SAMPLE_BLOCKS
        spans = [(i * step, i * step + SAMPLE_BLOCK_BYTES) for i in range(SAMPLE_BLOCKS)] + [(n - SAMPLE_BLOCK_BYTES, n)]
    else:
        spans = [(i, i + TEXT_CHUNK) for i in range(0, n, TEXT_CHUNK)]
    for start, stop in spans:
        h.update(value[start:stop].encode("utf-8", "surrogatepass"))
    return fingerprint_dict(value, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), (n,), n)


class _TooBig(Exception):
    pass


class _HashWriter:
    def __init__(self, h: "xxhash.xxh3_128") -> None:
        self.h, self.size = h, 0

    def write(self, data: bytes) -> int:
        if self.size:   # a pickle streamed in frames: its later frames are checked (one write is done work)
            current.get().check()
        self.size += len(data)
        if self.size > PICKLE_HASH_LIMIT:
            raise _TooBig
        self.h.update(data)
        return len(data)


def _fp_pickled(value: Any) -> Fingerprint:
    """Hash an arbitrary object by streaming its pickle (protocol 5, buffers out of band, no copy).

    Pickling is only a way to read the object's state: nothing is stored, nothing is ever loaded.
    It runs the object's own ``__reduce__``/``__getstate__``: once per cell (``Budget.pickled``).
    """
    budget = current.get()
    seen = budget.pickled.get(id(value))
    if seen is None or seen[0] is not value:
        try:
            seen = (value, _pickle_fingerprint(value, budget))
        except UnhashableInputError as e:   # a failure is kept too: its __reduce__ ran already
            seen = (value, e)
        if budget is not UNLIMITED:
            budget.pickled[id(value)] = seen
    if isinstance(seen[1], Exception):
        raise UnhashableInputError(str(seen[1]))
    return {**seen[1], "summary": dict(seen[1]["summary"])}


def _pickle_fingerprint(value: Any, budget: Budget) -> Fingerprint:
    h = xxhash.xxh3_128()

    def buffers(pb: pickle.PickleBuffer) -> bool:
        raw = pb.raw()
        hash_buffer(h, raw, raw.nbytes)
        return False

    try:
        with budget.slow(f"pickling a {type_name(value)} to hash it"):
            pickle.Pickler(_HashWriter(h), protocol=5, buffer_callback=buffers).dump(value)
    except OverBudget:
        raise
    except _TooBig:
        msg = (f"{type_name(value)} pickles to more than {PICKLE_HASH_LIMIT >> 20} MiB, too large to hash; "
               "leave it out with %%track --exclude NAME")
        raise UnhashableInputError(msg) from None
    except Exception as e:
        reason = f"{type(e).__name__}: {e}"[:200]
        msg = f"{type_name(value)} cannot be hashed ({reason}); leave it out with %%track --exclude NAME"
        raise UnhashableInputError(msg) from None
    return fingerprint_dict(value, h.hexdigest(), "pickle5+xxh3_128")


def _is_iterator(value: Any) -> bool:
    t = type(value)
    return isinstance(value, types.GeneratorType) or (
        hasattr(t, "__next__") and hasattr(t, "__iter__"))


registry.register("numpy.ndarray", _fp_ndarray)
for _t in (list, tuple, dict, set, frozenset):
    registry.register(_t, _fp_container)
for _t in (str, bytes, bytearray):
    registry.register(_t, _fp_text)
registry.register(_is_iterator, _fp_iterator)


def fingerprint(value: Any) -> Fingerprint:
    """Fingerprint any object; raise UnhashableInputError when it cannot be hashed."""
    if not frameworks.entry_points_loaded:
        frameworks.load_entry_points()
    mock = sys.modules.get("unittest.mock")
    if mock is not None and issubclass(type(value), mock.NonCallableMock):
        return _fp_mock(value)   # before any capturer's predicate could touch it
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


def safe_fingerprint(value: Any, budget: Budget | None = None) -> Fingerprint:
    """A fingerprint that never raises: failures are recorded in it instead. With a ``budget`` (one
    per cell) the slow paths share its time and each pickled object is pickled once."""
    token = current.set(budget) if budget is not None else None
    try:
        if budget is not None and id(value) in budget.skipped and budget.skipped[id(value)][0] is value:
            raise OverBudget(budget.skipped[id(value)][1])   # `out = big`: not a second try
        return fingerprint(value)
    except OverBudget as e:
        if budget is not None:
            budget.skipped[id(value)] = (value, str(e))
        return fingerprint_dict(value, None, "skipped: budget", skipped="budget", reason=str(e))
    except UnhashableInputError as e:
        return fingerprint_dict(value, None, "unhashable", error=str(e))
    except Exception as e:
        try:
            name = type_name(value)
        except Exception:
            name = "?"
        return {"type": name, "hash": None, "hash_method": "error", "shape": None, "length": None,
                "dtype": None, "summary": {"error": f"{type(e).__name__}: {e}"[:300]}}
    finally:
        if token is not None:
            current.reset(token)


from . import dataframes, frameworks  # noqa: E402,F401  (the built-in capturers register there)
