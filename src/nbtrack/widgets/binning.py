"""The binned scatter of a big panel: how many runs fall in each cell of a grid over the two axes,
counted in numpy from the axis values the kernel holds (paged_view.py), so the page gets cells, not runs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

BINS = 40   # per axis


def bins(values: pa.Table, x: str, y: str, n: int = BINS) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Counts of runs per cell of an n × n grid over the two axes (log-spaced where the scatter would
    use a log axis), as rows of cell edges and counts; and which axes are log."""
    xs = values.column(x).to_numpy(zero_copy_only=False).astype("float64")
    ys = values.column(y).to_numpy(zero_copy_only=False).astype("float64")
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    logs, edges = {}, []
    for name, v in ((x, xs), (y, ys)):
        log = bool(len(v) > 1 and (v > 0).all() and v.max() / v.min() >= 100)
        logs[name] = log
        lo, hi = (v.min(), v.max()) if len(v) else (0.0, 1.0)
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges.append(np.geomspace(lo, hi, n + 1) if log else np.linspace(lo, hi, n + 1))
    counts, ex, ey = np.histogram2d(xs, ys, bins=edges)
    i, j = np.nonzero(counts)
    frame = pd.DataFrame({x: ex[i], f"{x} (end)": ex[i + 1], y: ey[j], f"{y} (end)": ey[j + 1],
                          "runs": counts[i, j].astype("int64")})
    return frame, logs

