"""Per-process spool files: the only thing a tracked cell writes on its own path.

A cell never opens the DuckDB file (a held connection locks every other
process out; an open costs ~25 ms). It writes one JSON file per run event
and one Arrow file per chunk of logged points into ``<store>.spool/``: write
to a temporary name, then rename, so a reader sees whole files only and a
``kill -9`` leaves either nothing or a complete file. Anyone who reads the
store imports the spool first (see importer.py).
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import StoreError
from .records import POINTS_SCHEMA, to_json

RECORD_PREFIX, POINTS_PREFIX, BLOB_PREFIX = "run.", "pts.", "blob."


class Spool:
    """Write and list spool files of one store."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._ready = True

    def _atomic_write(self, name: str, data: bytes) -> None:
        tmp = self.dir / f".tmp.{uuid.uuid4().hex}"
        try:
            self._ensure()
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.dir / name)
        except BaseException as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            if isinstance(e, OSError):
                raise StoreError(_os_message(e, self.dir)) from None
            raise

    def write_record(self, run_id: str, seq: int, record: dict[str, Any]) -> None:
        data = json.dumps(record, default=to_json, allow_nan=True).encode()
        self._atomic_write(f"{RECORD_PREFIX}{run_id}.{seq:06d}.json", data)

    def write_points(self, run_id: str, chunk: int, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        with ipc.new_file(sink, POINTS_SCHEMA) as writer:
            writer.write_table(table)
        self._atomic_write(f"{POINTS_PREFIX}{run_id}.{chunk:06d}.arrow", sink.getvalue().to_pybytes())

    def write_blob(self, digest: str, data: bytes) -> None:
        name = f"{BLOB_PREFIX}{digest}"
        if not (self.dir / name).exists():
            self._atomic_write(name, data)

    def pending(self) -> list[Path]:
        try:
            return sorted(p for p in self.dir.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []


def read_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def read_points(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return ipc.open_file(source).read_all()


def parse_name(path: Path) -> tuple[str, str, int]:
    """(prefix, run_id or digest, seq or chunk) from a spool file name."""
    parts = path.name.split(".")
    if parts[0] + "." == BLOB_PREFIX:
        return BLOB_PREFIX, parts[1], 0
    return parts[0] + ".", parts[1], int(parts[2])


def _os_message(e: OSError, where: Path) -> str:
    import errno

    if e.errno == errno.ENOSPC:
        return f"the disk is full: cannot write {where}; free space or set NBTRACK_STORE to another disk"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {where}: {e.strerror.lower()}; make the folder writable or set NBTRACK_STORE "
                "to a writable path")
    return f"cannot write {where}: {e.strerror or e}"
