"""Saving outputs (``%%track --save NAME``) in safe formats, and loading them back.

DataFrames and Arrow tables are saved as Parquet, NumPy arrays as ``.npy`` without pickle.
Anything else is refused with a reason: nbtrack never pickles, and never loads a pickle.
"""
from __future__ import annotations

import io
import sys
from typing import Any

from ..errors import NbtrackError

MAX_BYTES = 256 << 20


def serialize(value: Any) -> tuple[bytes, str]:
    """``(bytes, format)``; raise NbtrackError naming why the object cannot be saved safely."""
    module = type(value).__module__ or ""
    buf = io.BytesIO()
    if module.startswith("pandas"):
        frame = value.to_frame() if hasattr(value, "to_frame") and not hasattr(value, "columns") else value
        frame.to_parquet(buf)
        fmt = "parquet"
    elif module.startswith("polars") and hasattr(value, "write_parquet"):
        value.write_parquet(buf)
        fmt = "parquet-polars"
    elif module.startswith("pyarrow") and hasattr(value, "schema") and hasattr(value, "num_rows"):
        import pyarrow.parquet as pq

        pq.write_table(value, buf)
        fmt = "parquet-arrow"
    elif module == "numpy" and hasattr(value, "dtype"):
        np = sys.modules["numpy"]
        if value.dtype.hasobject:
            raise NbtrackError("an array of Python objects cannot be saved without pickle; nbtrack does not pickle")
        np.save(buf, value, allow_pickle=False)
        fmt = "npy"
    else:
        raise NbtrackError(f"{type(value).__name__} has no safe format (DataFrames and Arrow tables are saved as "
                           "Parquet, arrays as .npy); nbtrack does not pickle")
    data = buf.getvalue()
    if len(data) > MAX_BYTES:
        raise NbtrackError(f"{len(data) >> 20} MiB is over the {MAX_BYTES >> 20} MiB limit for a saved output")
    return data, fmt


def deserialize(data: bytes, fmt: str) -> Any:
    buf = io.BytesIO(data)
    if fmt == "npy":
        import numpy as np

        return np.load(buf, allow_pickle=False)
    import pyarrow.parquet as pq

    table = pq.read_table(buf)
    if fmt == "parquet-arrow":
        return table
    if fmt == "parquet-polars":
        import polars as pl

        return pl.from_arrow(table)
    return table.to_pandas()


def save(run: Any, name: str, value: Any, fp: dict[str, Any]) -> None:
    """``--save NAME``: the object as an artifact in a safe format, linked from its output row; one
    warning line when it cannot be saved."""
    import hashlib

    from ..errors import warn

    try:
        data, fmt = serialize(value)
    except Exception as e:
        warn(f"--save {name}: {e}")
        return
    digest = hashlib.sha256(data).hexdigest()
    run.store.spool.write_blob(digest, data)
    fp["artifact"], fp["artifact_format"] = digest, fmt
