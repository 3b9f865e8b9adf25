"""The DuckDB store: where it is, how it is opened, and everything that speaks SQL.

Several writers at once (two notebooks, a script, the CLI) is the normal case,
and DuckDB allows one read-write process per file, refusing every other
opener at once. Measured here (DuckDB 2.0.1, 2 cores): a held connection
commits a run in ~2-4 ms but locks out every other process, even readers;
opening and closing the file around each write costs ~25 ms and, with four
writers, p99 waits of 1.6-2.5 s from lock fights; DuckDB 2.0.1 can also lose
commits when processes take turns opening a file without an outer lock.

So the write path never touches DuckDB: a run is written as spool files
(spool.py, ~0.3 ms, no lock), and whoever reads the store - the API, the CLI,
or the kernel's background thread after each run - takes a sidecar ``flock``
(lock.py), imports the spool in one transaction (importer.py), queries and
closes. Nobody holds the file between operations, so a plain DuckDB client
can open it too.
"""
from __future__ import annotations

from .base import Store, StoreInterface, is_team_url
from .file import DEFAULT_RELATIVE, FILE_CONFIG, FileStore, resolve_path
# imported eagerly: ducklake.py registers its exit clean-up before the recorder registers its last import
from . import ducklake  # noqa: F401

__all__ = ["DEFAULT_RELATIVE", "FILE_CONFIG", "FileStore", "Store", "StoreInterface", "is_team_url", "resolve_path"]
