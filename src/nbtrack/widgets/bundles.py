"""The built front end (js/, bundled by esbuild into static/): where it lies, a clear error where it was
never built, and vega-embed's code, which the widgets that draw charts are sent apart from their own
module (js/vega_loader.js)."""
from __future__ import annotations

import functools
from pathlib import Path

from ..errors import NbtrackError

STATIC = Path(__file__).resolve().parent.parent / "static"


def require_bundle(*names: str) -> None:
    """A clear error, not a blank output, when the front end was never built (an install that
    skipped npm)."""
    for name in names:
        if not (STATIC / f"{name}.js").exists():
            raise NbtrackError(f"the {name} widget's front end is not built ({STATIC / (name + '.js')} is missing): "
                               "run `npm install && npm run build` in the nbtrack checkout, or reinstall with "
                               "`pip install -e .` with npm on PATH")


@functools.cache
def vega_code() -> str:
    """vega-embed's bundle (js/vega.js), read once a process."""
    return (STATIC / "vega.js").read_text(encoding="utf-8")
