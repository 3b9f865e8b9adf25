"""nbtrack: put %%track on a notebook cell and get a queryable record of the run."""
from __future__ import annotations

from typing import Any

from .version import __version__
from .api import Run, connect, fingerprint, get, last, last_sweep, log, register_capturer, run, runs  # noqa: E402
from .curate import delete, note, rename, restore, star, tag, untag  # noqa: E402
from .errors import NbtrackError  # noqa: E402

__all__ = ["Run", "NbtrackError", "charts", "check", "compare", "connect", "delete", "export_script", "fingerprint",
           "get", "last", "last_check", "last_sweep", "lineage", "log", "note", "register_capturer", "rename",
           "reproduce", "restore", "run", "runs", "star", "tag", "untag", "__version__"]


def __getattr__(name: str) -> Any:
    # the panel and the charts import anywidget and Altair: only when first used, not on %load_ext
    if name in ("check", "last_check"):
        from .repro import check as repro

        return getattr(repro, name)
    if name in ("export_script", "reproduce"):
        from .repro import export

        return getattr(export, name)
    if name == "lineage":
        from .repro.graph import lineage

        return lineage
    if name == "compare":
        from .widgets import compare

        return compare
    if name == "charts":
        import importlib

        return importlib.import_module(".charts", __name__)
    raise AttributeError(f"module 'nbtrack' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbtrack``: register %%track and %nbtrack."""
    from .kernel.magic import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .kernel.magic import unload

    unload(ipython)
