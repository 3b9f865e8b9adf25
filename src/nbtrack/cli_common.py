"""What every ``nbtrack`` command shares: the --store option, opening the store, errors as one line."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click
import pandas as pd

from .errors import NbtrackError
from .secrets import redact_passwords
from .store import Store


def open_store(path: str | None) -> Store:
    store = Store(path)
    if not store.exists():
        hint = "pass --store PATH" if path is None else "check the path"
        raise click.ClickException(f"no nbtrack store at {store.path}; {hint} or set NBTRACK_STORE "
                                   "(a store is created by the first %%track cell)")
    return store


def one_line(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Store problems are one line and exit 1, never a traceback: nbtrack's own errors as they are, and
    what slipped past them (DuckDB, the file system) named by its first line."""
    import duckdb

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NbtrackError as e:
            raise click.ClickException(str(e)) from None
        except duckdb.Error as e:
            first = " ".join(str(e).strip().splitlines()[0].split()) if str(e).strip() else ""
            raise click.ClickException(f"the store failed: {redact_passwords(first) or type(e).__name__}") from None
        except OSError as e:
            raise click.ClickException(f"{e.strerror or e}: {e.filename or ''}".rstrip(": ")) from None
    return wrapper


store_option = click.option("--store", "store_path", envvar="NBTRACK_STORE", metavar="PATH|URL",
                            help="Store file or team store URL (ducklake:postgres:...); default: $NBTRACK_STORE "
                                 "or ./.nbtrack/runs.duckdb. A team store's data path: $NBTRACK_DATA_PATH.")


def print_frame(frame: pd.DataFrame) -> None:
    with pd.option_context("display.max_columns", 30, "display.width", 200, "display.max_colwidth", 40):
        click.echo(frame.to_string(index=False))
