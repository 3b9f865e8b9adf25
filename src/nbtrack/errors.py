"""nbtrack's exceptions: each message names the problem and the fix."""
from __future__ import annotations

import sys


class NbtrackError(Exception):
    """Base class of every error nbtrack raises on purpose."""


class StoreError(NbtrackError):
    """The store cannot be opened or written (not a store, locked, read-only, full)."""


class NotAStoreError(StoreError):
    """The file exists but is not an nbtrack store."""


class StoreVersionError(StoreError):
    """The store was written by a newer nbtrack."""


class CorruptStoreError(StoreError):
    """The store file is damaged (a checksum or a read failed)."""


class StoreBusyError(StoreError):
    """Another process held the store for too long."""


class FilterError(NbtrackError, ValueError):
    """A ``where=`` filter cannot be applied (a value of the wrong type for its field, a limit passed)."""


class FilterSyntaxError(FilterError):
    """A ``where=`` filter did not parse."""


class SqlError(NbtrackError, ValueError):
    """``nbtrack sql`` refuses a query: more than one statement, or one that is not a read."""


class RunNotFoundError(NbtrackError, LookupError):
    """No run (or more than one run) matches an id or prefix."""


class NoActiveRunError(NbtrackError, RuntimeError):
    """``nbtrack.log`` was called outside a tracked cell or ``nbtrack.run``."""


class UnhashableInputError(NbtrackError, TypeError):
    """An object could not be fingerprinted."""


class ParamValueError(NbtrackError, ValueError):
    """A ``-p KEY=VALUE`` override is malformed."""


def warn(message: str) -> None:
    """nbtrack's one line on stderr, for problems that must not raise into the user's code."""
    line = " ".join(str(message).split())
    try:
        print(f"nbtrack warning: {line}", file=sys.stderr if sys.stderr is not None else sys.__stderr__)
    except Exception:
        pass
