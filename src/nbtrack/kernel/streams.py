"""Copy what a cell prints and displays, without changing what the user sees.

stdout/stderr are teed (every write still goes to the original stream) and
capped, keeping the head and the tail; rich displays are copied from the
display publisher and the display hook as MIME bundles.
"""
from __future__ import annotations

import sys
from collections import deque
from typing import Any

STREAM_CAP = 64 << 10      # per stream: first 32 KiB and last 32 KiB are kept
# Redaction happens when the run is written (store/seal.py) and must see a secret whole even where the
# kept head or tail cuts the text: each side keeps this much more, scrubbed and then cut away.
MARGIN = 16 << 10


class CappedText:
    def __init__(self, cap: int = STREAM_CAP) -> None:
        self.half = cap // 2
        self.keep = self.half + MARGIN
        self.head: list[str] = []
        self.head_len = 0
        self.tail: deque[str] = deque()
        self.tail_len = 0
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        if self.head_len < self.keep:
            room = self.keep - self.head_len
            self.head.append(text[:room])
            self.head_len += min(len(text), room)
            text = text[room:]
            if not text:
                return
        self.tail.append(text)
        self.tail_len += len(text)
        while self.tail_len - len(self.tail[0]) >= self.keep:
            self.tail_len -= len(self.tail.popleft())

    def parts(self) -> dict[str, Any]:
        """What was kept: the head and the tail with their margins, the total length and where to cut."""
        tail = "".join(self.tail)
        return {"head": "".join(self.head), "tail": tail[-self.keep:] if self.total > self.head_len + len(tail)
                else tail, "total": self.total, "half": self.half}


class _Tee:
    """Stands in for sys.stdout/sys.stderr: writes go through, a copy is kept."""

    def __init__(self, target: Any, sink: CappedText) -> None:
        self._nbtrack_target = target
        self._nbtrack_sink = sink

    def write(self, text: Any) -> Any:
        n = self._nbtrack_target.write(text)
        if isinstance(text, str):
            self._nbtrack_sink.add(text)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nbtrack_target, name)


class OutputCapture:
    """Installed for the duration of one tracked cell."""

    def __init__(self, shell: Any | None) -> None:
        self.shell = shell
        self.stdout = CappedText()
        self.stderr = CappedText()
        self.displays: list[tuple[str, dict[str, Any]]] = []
        self._saved: dict[str, Any] = {}
        self._patches: list[tuple[Any, str, Any]] = []
        self._specs: dict[int, tuple[str, dict[str, Any]]] = {}   # id(format data) -> Vega-Lite spec
        self._clear_mark: tuple[int, int, int] | None = None

    @property
    def clear_pending(self) -> bool:
        """The cell's last output call was ``clear_output(wait=True)``: the front end clears the
        output area at the next output, so anything nbtrack showed would wipe what the user sees."""
        return self._clear_mark is not None and self._clear_mark == self._marks()

    def _marks(self) -> tuple[int, int, int]:
        return self.stdout.total, self.stderr.total, len(self.displays)

    def install(self) -> None:
        self._saved["stdout"], self._saved["stderr"] = sys.stdout, sys.stderr
        sys.stdout = _Tee(sys.stdout, self.stdout)
        sys.stderr = _Tee(sys.stderr, self.stderr)
        shell = self.shell
        if shell is None:
            return
        formatter = getattr(shell, "display_formatter", None)
        if formatter is not None and hasattr(formatter, "format"):
            original_format = formatter.format

            def format(obj: Any, *args: Any, **kwargs: Any) -> Any:
                result = original_format(obj, *args, **kwargs)
                spec = _vegalite(obj)
                if spec is not None and isinstance(result, tuple) and isinstance(result[0], dict):
                    self._specs[id(result[0])] = spec
                return result

            self._patch(formatter, "format", format)
        pub = getattr(shell, "display_pub", None)
        if pub is not None:
            original = pub.publish

            def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
                if isinstance(data, dict):
                    self.displays.append(("display", self._with_spec(data)))
                return original(data, *args, **kwargs)

            self._patch(pub, "publish", publish)
            original_clear = getattr(pub, "clear_output", None)
            if original_clear is not None:
                def clear_output(wait: bool = False, *args: Any, **kwargs: Any) -> Any:
                    self._clear_mark = self._marks() if wait else None
                    return original_clear(wait, *args, **kwargs)

                self._patch(pub, "clear_output", clear_output)
        hook = getattr(shell, "displayhook", None)
        if hook is not None and hasattr(hook, "write_format_data"):
            original_write = hook.write_format_data

            def write_format_data(format_dict: Any, *args: Any, **kwargs: Any) -> Any:
                if isinstance(format_dict, dict):
                    self.displays.append(("result", self._with_spec(format_dict)))
                return original_write(format_dict, *args, **kwargs)

            self._patch(hook, "write_format_data", write_format_data)

    def _with_spec(self, data: dict[str, Any]) -> dict[str, Any]:
        """What the front end got, plus the chart's Vega-Lite spec when it was an Altair chart (Altair's
        HTML output needs a CDN to be seen again; the spec is the chart)."""
        found = self._specs.pop(id(data), None)
        return {**data, found[0]: found[1]} if found else data

    def uninstall(self) -> None:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            # restore only our own tee: a cell that replaced the stream for good keeps its choice
            if isinstance(current, _Tee) and current._nbtrack_sink is getattr(self, name):
                setattr(sys, name, self._saved[name])
        for obj, attr, previous in reversed(self._patches):
            if previous is not None:
                setattr(obj, attr, previous)
            else:
                obj.__dict__.pop(attr, None)
        self._patches.clear()
        self._saved.clear()

    def _patch(self, obj: Any, attr: str, wrapper: Any) -> None:
        """Put ``wrapper`` on this instance in place of ``attr``; uninstall() puts back what was there
        (the instance's own attribute, or none, so the class's method shows through again)."""
        self._patches.append((obj, attr, obj.__dict__.get(attr)))
        setattr(obj, attr, wrapper)


def _vegalite(obj: Any) -> tuple[str, dict[str, Any]] | None:
    """``(mime type, spec)`` of an Altair chart; nothing for anything else (no import of Altair)."""
    module = type(obj).__module__ or ""
    if not module.startswith("altair") or not callable(getattr(obj, "to_dict", None)):
        return None
    try:
        spec = obj.to_dict()
    except Exception:
        return None
    schema = str(spec.get("$schema", ""))
    version = schema.split("/v")[-1].split(".")[0] if "/v" in schema else "5"
    return f"application/vnd.vegalite.v{version}+json", spec
