"""Rich displays that need a front end: a widget's view when a kernel can show one, nothing else."""
from __future__ import annotations

from typing import Any, Callable


def in_kernel() -> bool:
    """True inside a Jupyter kernel (a front end that may draw widgets), False in a terminal or script."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and getattr(shell, "kernel", None) is not None
    except Exception:
        return False


def widget_bundle(make: Callable[[], Any]) -> dict[str, Any]:
    """The MIME entries of ``make()``'s widget view, to add to an object's text and Markdown; empty
    outside a kernel or when the widget cannot be made (ipywidgets returns ``(data, metadata)`` in
    some versions)."""
    if not in_kernel():
        return {}
    try:
        bundle = make()._repr_mimebundle_()
    except Exception:
        return {}
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    return {k: v for k, v in data.items() if k != "text/plain"}
