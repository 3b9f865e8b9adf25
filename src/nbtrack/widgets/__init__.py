"""anywidget panels; each class is paired with one bundle built from js/."""
from .compare import ComparePanel, compare
from .views import ChartView, ReportView

__all__ = ["ChartView", "ComparePanel", "ReportView", "compare"]
