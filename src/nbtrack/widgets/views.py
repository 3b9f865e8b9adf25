"""Small single-purpose widgets: one chart, one check report."""
from __future__ import annotations

from typing import Any

import anywidget
import traitlets

from .bundles import STATIC, require_bundle, vega_code


class ChartView(anywidget.AnyWidget):
    """An Altair chart (or Vega-Lite dict) drawn with nbtrack's bundled Vega: works offline."""

    _esm = STATIC / "chart.js"
    _css = STATIC / "chart.css"
    # synced to the page; js/chart.js documents each one (typedef ChartModel)
    spec = traitlets.Dict().tag(sync=True)
    renderer = traitlets.Unicode("svg").tag(sync=True)
    _vega = traitlets.Unicode().tag(sync=True)   # vega-embed, evaluated once a page (js/vega_loader.js)

    def __init__(self, chart: Any) -> None:
        require_bundle("chart", "vega")
        spec = chart if isinstance(chart, dict) else chart.to_dict()
        super().__init__(spec=spec, _vega=vega_code())

    def __repr__(self) -> str:
        return f"ChartView({self.spec.get('title', 'chart')!r})" if isinstance(self.spec.get("title"), str) \
            else "ChartView()"


def show(chart: Any) -> ChartView:
    """Draw any Altair chart (or Vega-Lite dict) in the notebook with nbtrack's bundled Vega, which
    needs no internet (Altair's own renderers load Vega from a CDN). Public as ``nbtrack.charts.show``."""
    return ChartView(chart)


class ReportView(anywidget.AnyWidget):
    """A reproducibility check report (``nbtrack.check``), drawn as a table of differences and causes."""

    _esm = STATIC / "report.js"
    _css = STATIC / "report.css"
    # synced to the page; js/report.js documents it (typedef ReportModel)
    report = traitlets.Dict().tag(sync=True)

    def __init__(self, report: Any) -> None:
        require_bundle("report")
        data = report.to_dict()
        data["a_label"] = f"{report.a.run_id[:8]} ({report.a.name})"
        data["b_label"] = f"{report.b.run_id[:8]} ({report.b.name})"
        super().__init__(report=_jsonable(data))
        self._text = str(report)

    def __repr__(self) -> str:
        return self._text


def _jsonable(value: Any) -> Any:
    from ..store.codec import for_display

    return for_display(value)
