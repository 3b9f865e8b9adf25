"""``nbtrack.charts``: the chart builders of plots.py (and chart_data.py's frame), and ``show``, which draws any of them with the
bundled Vega. A facade above the widgets, so that the builders (which the panel itself uses) import no
widget code, and ``show`` still sits beside them for the user."""
from __future__ import annotations

from .chart_data import chart_frame, defaults
from .plots import bars, curve_points, curves, field, lineage_chart, parallel, scatter
from .widgets.views import show

__all__ = ["scatter", "parallel", "curves", "bars", "curve_points", "lineage_chart", "chart_frame", "defaults", "field",
           "show"]
