"""Where each name came from: the cell (and tracked run) that last bound it, noted after every cell,
and how to get functions and modules back outside the kernel. Checks name hidden state from it;
exported scripts take imports and definitions from it."""
from __future__ import annotations

import inspect
import types
from typing import Any, Callable

from .analysis import analyze
from ..secrets import is_secret_name, known_text


def definition_of(name: str, value: Any) -> dict[str, str] | None:
    """How to get ``name`` back outside this kernel: an import line for modules and for functions and
    classes of installed packages, the source of functions and classes defined in the notebook."""
    try:
        if isinstance(value, types.ModuleType):
            mod = value.__name__
            return {"import": f"import {mod}" if mod == name else f"import {mod} as {name}"}
        if not (inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value)):
            return None
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", "")
        if module and module != "__main__" and "<" not in qualname and "." not in qualname:
            line = f"from {module} import {qualname}"
            return {"import": line if qualname == name else f"{line} as {name}"}
        if module == "__main__":
            source = inspect.getsource(value)
            return {"definition": source} if len(source) < 20_000 else None
    except Exception:   # no source (defined by exec), odd objects: nothing to say
        return None
    return None


class Producers:
    """name -> the cell that last bound it, for every cell run since the extension was loaded."""

    def __init__(self, hidden: Callable[[str], bool]) -> None:
        self.by_name: dict[str, dict[str, Any]] = {}
        self.secret_names: set[str] = set()      # names that look secret, bound by any cell so far
        self._bound: dict[str, set[str]] = {}   # cell text -> names it binds (cells are re-run a lot)
        self._hidden = hidden

    def note(self, raw: str, transform: Callable[[str], str], cell_id: str | None, execution_count: int | None,
             run_id: str | None, bound: set[str] | None = None) -> None:
        names = self._bound.get(raw)
        if names is None:
            if bound is None:
                try:
                    bound = analyze(transform(raw)).bound
                except Exception:
                    bound = set()
            if len(self._bound) > 256:
                self._bound.clear()
            names = self._bound[raw] = set(bound)
            self.secret_names.update(n for n in names if is_secret_name(n))
        producer = {"cell_id": cell_id, "execution_count": execution_count, "run_id": run_id}
        for name in names:
            if not self._hidden(name):
                self.by_name[name] = producer

    def secret_values(self, namespace: dict[str, Any]) -> set[str]:
        """The current values of secret-named variables bound by earlier cells (``db_password = ...`` in an
        untracked cell, printed by a tracked one): scrubbed from everything a run writes."""
        found = set()
        for name in self.secret_names:
            text = known_text(namespace.get(name))
            if text:
                found.add(text)
        return found

    def of(self, name: str, value: Any, is_input: bool) -> dict[str, Any] | None:
        """What a run records about a name it read: its producer, plus an import line or a definition
        for modules and functions; nothing for other non-data names."""
        producer = self.by_name.get(name, {"cell_id": None})
        if is_input:
            return producer
        origin = definition_of(name, value)
        return {**producer, **origin} if origin else None
