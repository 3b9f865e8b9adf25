"""Per-process spool files: the only thing a tracked cell writes on its own path.

A cell never opens the DuckDB file (a held connection locks every other
process out; an open costs ~25 ms). It writes one JSON file per run event
and one Arrow file per chunk of logged points into ``<store>.spool/``: write
to a temporary name, fsync, then rename, so a reader sees whole files only, a
``kill -9`` leaves either nothing or a complete file, and a run acknowledged
(its cell ended) is on disk. Measured here: the fsyncs add about 1 ms per run
(``make bench``). Everything a record holds is redacted on its way in
(seal.py). Anyone who reads the store imports the spool first (importer.py).
"""
from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from . import records
from .seal import seal, seal_edits, seal_keys

if TYPE_CHECKING:   # pyarrow is imported where a table is made: `import nbtrack` stays light
    import pyarrow as pa

RECORD_PREFIX, POINTS_PREFIX, BLOB_PREFIX, EDITS_PREFIX = "run.", "pts.", "blob.", "edit."


class Spool:
    """Write and list spool files of one store."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _atomic_write(self, name: str, data: bytes, durable: bool = True) -> None:
        """Write, fsync, rename: once this returns, the file survives a crash (the folder's entry is made
        durable by ``sync_dir``). Without ``durable`` no fsync: the file survives the process, not a
        power cut. A folder removed meanwhile is made again."""
        for attempt in (1, 2):
            tmp = self.dir / f".tmp.{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    if durable:
                        f.flush()
                        os.fsync(f.fileno())
                os.replace(tmp, self.dir / name)
                return
            except FileNotFoundError as e:   # first write, or someone removed the spool folder
                if attempt == 2:
                    raise StoreError(os_message(e, self.dir)) from None
                try:
                    self.dir.mkdir(parents=True, exist_ok=True)
                except OSError as e2:
                    raise StoreError(os_message(e2, self.dir)) from None
            except BaseException as e:
                try:
                    tmp.unlink()
                except OSError:
                    pass
                if isinstance(e, OSError):
                    raise StoreError(os_message(e, self.dir)) from None
                raise

    def sync_dir(self) -> None:
        """fsync the folder, so the renames of the files just written survive a power cut too."""
        fsync_dir(self.dir)

    def write_record(self, run_id: str, seq: int, record: dict[str, Any], known: Iterable[str] = (),
                     durable: bool = True) -> dict[str, Any]:
        """Seal a run record (redact and encode every field: seal.py), write its display blobs and the
        record (durably unless told otherwise: a "running" record, which nothing acknowledges, need only
        outlive its process), and return the sealed record."""
        sealed = seal(record, known, self.write_blob)
        data = json.dumps(sealed, allow_nan=True).encode()
        self._atomic_write(f"{RECORD_PREFIX}{run_id}.{seq:06d}.json", data, durable)
        if durable:
            self.sync_dir()
        return sealed

    def write_points(self, run_id: str, chunk: int, table: pa.Table, known: Iterable[str] = ()) -> None:
        """One chunk of logged points; keys go through the same rules as every other text."""
        import pyarrow as pa
        import pyarrow.ipc as ipc

        table = seal_keys(table, known)
        sink = pa.BufferOutputStream()
        with ipc.new_file(sink, records.POINTS_SCHEMA) as writer:
            writer.write_table(table)
        self._atomic_write(f"{POINTS_PREFIX}{run_id}.{chunk:06d}.arrow", sink.getvalue().to_pybytes())

    def write_edits(self, edits: list[dict[str, Any]], known: Iterable[str] = ()) -> None:
        """Edits of runs (tags, labels, notes...: edits.py), in one file: they arrive together or not at all.
        Their text goes through the same rules as a run's."""
        sealed = seal_edits(edits, known)
        self._atomic_write(f"{EDITS_PREFIX}{uuid.uuid4().hex}.json", json.dumps({"edits": sealed}).encode())
        self.sync_dir()

    def write_blob(self, digest: str, data: bytes) -> None:
        name = f"{BLOB_PREFIX}{digest}"
        if not (self.dir / name).exists():
            self._atomic_write(name, data)

    def pending(self) -> list[Path]:
        try:
            return sorted(p for p in self.dir.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []


def fsync_dir(folder: Path) -> None:
    """fsync a folder, so the renames in it survive a power cut."""
    if os.name != "posix":   # Windows cannot open a folder; NTFS journals renames itself
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:   # some file systems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def read_record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_bytes())


def read_points(path: Path) -> pa.Table:
    # read, not memory-mapped: a file cut short under a mapping kills the process with SIGBUS
    import pyarrow as pa
    import pyarrow.ipc as ipc

    return ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()


_NAME = re.compile(r"^(?:(?P<rec>run)\.(?P<rid>[A-Za-z0-9_-]{1,64})\.(?P<seq>\d{1,9})\.json"
                   r"|(?P<pts>pts)\.(?P<pid>[A-Za-z0-9_-]{1,64})\.(?P<chunk>\d{1,9})\.arrow"
                   r"|(?P<blob>blob)\.(?P<digest>[0-9a-f]{64})"
                   r"|(?P<edit>edit)\.(?P<eid>[0-9a-f]{32})\.json)$")


def parse_name(path: Path) -> tuple[str, str, int] | None:
    """(prefix, run_id or digest, seq or chunk) from a spool file name; None for any other name."""
    m = _NAME.match(path.name)
    if m is None:
        return None
    if m["rec"]:
        return RECORD_PREFIX, m["rid"], int(m["seq"])
    if m["pts"]:
        return POINTS_PREFIX, m["pid"], int(m["chunk"])
    if m["edit"]:
        return EDITS_PREFIX, m["eid"], 0
    return BLOB_PREFIX, m["digest"], 0


def os_message(e: OSError, where: Path) -> str:
    import errno

    if e.errno == errno.ENOSPC:
        return f"the disk is full: cannot write {where}; free space or set NBTRACK_STORE to another disk"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {where}: {e.strerror.lower()}; make the folder writable or set NBTRACK_STORE "
                "to a writable path")
    return f"cannot write {where}: {e.strerror or e}"
