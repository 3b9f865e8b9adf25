"""The commands that tidy runs: tag, untag, rename, note, star, rm, restore, and gc."""
from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import click

from . import curate
from .cli_common import one_line, open_store, store_option

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _selection(fn: Callable[..., Any]) -> Callable[..., Any]:
    """RUN... and --where, --dry-run and --store: how every edit command picks its runs."""
    fn = click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")(fn)
    fn = click.option("--where", help="The runs a filter selects, e.g. \"metrics.acc > 0.9\".")(fn)
    fn = store_option(fn)
    return click.argument("runs", nargs=-1, metavar="[RUN]...")(fn)


def _done(verb: str, n: int, dry_run: bool) -> None:
    runs = f"{n} run{'s' if n != 1 else ''}"
    click.echo(f"would {verb} {runs} (dry run: nothing changed)" if dry_run else f"{verb} {runs}")


def _refs(runs: tuple[str, ...], where: str | None) -> tuple[list[str] | None, str | None]:
    if not runs and not where:
        raise click.UsageError("name the runs: run ids or prefixes, or --where FILTER")
    return (list(runs) or None), where


def _edit_command(name: str, edit: Callable[..., int], verbs: tuple[str, str], help_text: str,
                  with_tags: bool = False) -> click.Command:
    """A command that applies ``edit`` to RUN... or --where and says how many runs it changed."""
    def command(runs: tuple[str, ...], where: str | None, dry_run: bool, store_path: str | None,
                tags: tuple[str, ...] = ()) -> None:
        ids, where = _refs(runs, where)
        n = edit(ids, *tags, where=where, store=open_store(store_path), dry_run=dry_run)
        _done(verbs[1] if dry_run else verbs[0], n, dry_run)

    command = one_line(command)
    if with_tags:
        command = click.option("-t", "--tag", "tags", multiple=True, required=True, metavar="TAG",
                               help="A tag; repeat for more.")(command)
    return click.command(name, help=help_text)(_selection(command))


tag_cmd = _edit_command("tag", curate.tag, ("tagged", "tag"), "Add tags to runs.", with_tags=True)
untag_cmd = _edit_command("untag", curate.untag, ("untagged", "untag"), "Remove tags from runs (recorded ones too).",
                          with_tags=True)
rm_cmd = _edit_command("rm", curate.delete, ("deleted", "delete"),
                       "Delete runs, softly: nbtrack restore brings them back, nbtrack gc removes them for good.")
restore_cmd = _edit_command("restore", curate.restore, ("restored", "restore"), "Bring deleted runs back (--where looks at deleted runs).")


@click.command("rename")
@store_option
@click.argument("run")
@click.argument("label")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@one_line
def rename_cmd(store_path: str | None, run: str, label: str, dry_run: bool) -> None:
    """Give a run a LABEL, shown instead of its name ("" removes it)."""
    n = curate.rename(run, label or None, store=open_store(store_path), dry_run=dry_run)
    _done("renamed" if not dry_run else "rename", n, dry_run)


@click.command("note")
@store_option
@click.argument("run")
@click.argument("text")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@one_line
def note_cmd(store_path: str | None, run: str, text: str, dry_run: bool) -> None:
    """Set a run's note (Markdown; - reads it from stdin; "" removes it)."""
    body = sys.stdin.read() if text == "-" else text
    n = curate.note(run, body or None, store=open_store(store_path), dry_run=dry_run)
    _done("noted" if not dry_run else "note", n, dry_run)


@click.command("star")
@_selection
@click.option("--off", is_flag=True, help="Unstar them instead.")
@one_line
def star_cmd(runs: tuple[str, ...], where: str | None, dry_run: bool, store_path: str | None, off: bool) -> None:
    """Star runs (--off: unstar them)."""
    ids, where = _refs(runs, where)
    verb = ("unstarred" if off else "starred") if not dry_run else ("unstar" if off else "star")
    _done(verb, curate.star(ids, not off, where=where, store=open_store(store_path), dry_run=dry_run), dry_run)


def _age(text: str) -> timedelta:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if m is None:
        raise click.BadParameter(f"{text!r} is not an age: write 30d, 12h, 2w or 0", param_hint="--older-than")
    return timedelta(seconds=float(m[1]) * _UNITS[m[2] or "d"])


@click.command("gc")
@store_option
@click.option("--older-than", "older_than", metavar="AGE", default="0",
              help="Only runs deleted longer ago than AGE (30d, 12h, 2w; default 0: every deleted run).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@one_line
def gc_cmd(store_path: str | None, older_than: str, dry_run: bool) -> None:
    """Remove deleted runs for good, with their curves and the artifacts no other run uses, and reclaim
    the space."""
    age = _age(older_than)
    before = datetime.now(timezone.utc) - age if age else None
    for line in open_store(store_path).collect(before, dry_run):
        click.echo(line)


COMMANDS = [tag_cmd, untag_cmd, rename_cmd, note_cmd, star_cmd, rm_cmd, restore_cmd, gc_cmd]
