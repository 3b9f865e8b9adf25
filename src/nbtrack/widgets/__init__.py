"""anywidget panels; each class is paired with one bundle built from js/."""
from .compare import ComparePanel, compare

__all__ = ["ComparePanel", "compare"]
