"""Fingerprints of the data libraries' objects: pandas, polars, Arrow, dask, xarray.

Registered by type name (every name each type has been seen under: libraries move classes between
modules and re-export them, pandas 3 reports ``pandas.DataFrame``), so nothing here imports these
libraries. Buffers are hashed from memory; lazy objects are described, never computed or loaded.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import xxhash

from .budget import current
from .capture import CONTAINER_BUDGET, Fingerprint, fingerprint_dict, hash_buffer, hash_ndarray, registry, type_name


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
    budget = current.get()
    with budget.slow(f"a {dtype} column of {len(series)} rows"):
        for start in range(0, len(sample), 50_000):
            budget.check()
            hashed = pd.util.hash_pandas_object(sample.iloc[start:start + 50_000], index=False).to_numpy()
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
    return fingerprint_dict(df, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), tuple(df.shape),
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
    return fingerprint_dict(s, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), (len(s),), len(s),
               str(s.dtype), name=str(s.name))


def _hash_polars_column(h: "xxhash.xxh3_128", s: Any) -> None:
    """Numbers without nulls from their memory (polars' to_numpy is then a view); anything else by
    polars' own per-value hash, which is ten times slower than reading memory."""
    if s.dtype.is_numeric() and not s.null_count() and s.n_chunks() == 1:
        hash_ndarray(h, s.to_numpy())
    elif len(s):
        hash_ndarray(h, s.hash(seed=0).to_numpy())


def _fp_polars_frame(df: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    schema = {k: str(v) for k, v in df.schema.items()}
    h.update(json.dumps([list(df.shape), list(schema.items())]).encode())
    for column in df.get_columns():
        _hash_polars_column(h, column)
    return fingerprint_dict(df, h.hexdigest(), "polars.columns+xxh3_128", tuple(df.shape), df.height, None,
               schema=dict(list(schema.items())[:50]), n_columns=df.width)


def _fp_polars_series(s: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    h.update(json.dumps([len(s), str(s.dtype), s.name]).encode())
    _hash_polars_column(h, s)
    return fingerprint_dict(s, h.hexdigest(), "polars.columns+xxh3_128", (len(s),), len(s), str(s.dtype), name=s.name)


def _fp_polars_lazy(lf: Any) -> Fingerprint:
    # Not even the schema: resolving it reads a scan's files and runs schema callbacks, and serialising
    # the plan pickles its Python UDFs (their __reduce__ runs).
    return fingerprint_dict(lf, None, "lazy-not-collected",
               note="lazy frame: not collected, not hashed, its plan not resolved")


def _fp_dask(value: Any) -> Fingerprint:
    """A dask collection's name is a token of its whole task graph: equal names mean the same
    computation, known without computing anything."""
    shape = getattr(value, "shape", None)
    known = shape is not None and all(isinstance(n, int) for n in shape)
    dtype = getattr(value, "dtype", None)
    return fingerprint_dict(value, str(value._name), "dask-graph-token", tuple(shape) if known else None,
               int(shape[0]) if known and shape else None, str(dtype) if dtype is not None else None,
               npartitions=getattr(value, "npartitions", None), note="lazy: not computed")


def _fp_xarray(value: Any) -> Fingerprint:
    """In memory (numpy): hashed like an array, with its dims and coordinates' names; lazy (dask,
    or a file's lazily indexed backend): described by dims, shape and dtype, never loaded."""
    variable = value.variable if hasattr(value, "variable") else value
    data = variable._data
    np = sys.modules.get("numpy")
    summary = {"dims": [str(d) for d in variable.dims], "coords": [str(c) for c in getattr(value, "coords", {})][:50]}
    if np is not None and type(data) is np.ndarray:
        h = xxhash.xxh3_128(json.dumps(summary).encode())
        sampled = hash_ndarray(h, data)
        return fingerprint_dict(value, h.hexdigest(), "xxh3_128" + ("-sampled" if sampled else ""), tuple(variable.shape),
                   int(variable.shape[0]) if variable.shape else None, str(variable.dtype), **summary)
    shape, length = tuple(variable.shape), int(variable.shape[0]) if variable.shape else None
    if type_name(data) == "dask.array.core.Array":   # the graph's token names the computation
        token = xxhash.xxh3_128(json.dumps([summary, data._name]).encode()).hexdigest()
        return fingerprint_dict(value, token, "dask-graph-token", shape, length, str(variable.dtype), **summary,
                   note="lazy (dask): not computed")
    return fingerprint_dict(value, None, "lazy-not-loaded", shape, length, str(variable.dtype), **summary,
               note=f"lazy ({type(data).__name__}): not loaded, not hashed")


def _fp_arrow_table(t: Any) -> Fingerprint:
    h = xxhash.xxh3_128()
    h.update(str(t.schema).encode())
    for column in t.columns:
        for chunk in column.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    hash_buffer(h, buf, buf.size)
    return fingerprint_dict(t, h.hexdigest(), "xxh3_128", (t.num_rows, t.num_columns), t.num_rows, None,
               columns=t.column_names[:50])


for _names, _fn in [
    (("pandas.DataFrame", "pandas.core.frame.DataFrame"), _fp_pandas_frame),
    (("pandas.Series", "pandas.core.series.Series"), _fp_pandas_series),
    (("polars.DataFrame", "polars.dataframe.frame.DataFrame"), _fp_polars_frame),
    (("polars.Series", "polars.series.series.Series"), _fp_polars_series),
    (("polars.LazyFrame", "polars.lazyframe.frame.LazyFrame"), _fp_polars_lazy),
    (("pyarrow.Table", "pyarrow.lib.Table"), _fp_arrow_table),
    (("dask.array.core.Array", "dask.dataframe.core._Frame", "dask.dataframe.dask_expr._collection.FrameBase",
      "dask.dataframe.dask_expr._collection.DataFrame", "dask.dataframe.dask_expr._collection.Series"), _fp_dask),
    (("xarray.core.dataarray.DataArray", "xarray.DataArray", "xarray.core.variable.Variable"), _fp_xarray),
]:
    for _name in _names:
        registry.register(_name, _fn)
