"""The ``nbtrack`` command: the Python API plus formatting."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import api, formats
from .version import __version__
from .diff import diff_runs
from .store import DEFAULT_RELATIVE as DEFAULT_LOCAL
from .store import Store, codec, objectstore
from .store.queries import resolve_run_id, user_sql
from .cli_common import one_line, open_store, print_frame, store_option
from .cli_edit import COMMANDS


@click.group()
@click.version_option(__version__, prog_name="nbtrack")
def main() -> None:
    """Query the runs recorded by %%track and nbtrack.run."""


@main.command("runs")
@store_option
@click.option("--where", help="Filter, e.g. \"metrics.acc > 0.9 and params.model = 'rf'\".")
@click.option("--experiment", "-e", help="Only runs of this experiment.")
@click.option("--limit", "-n", type=int, default=None, help="Only the latest N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records.")
@click.option("--all-columns", is_flag=True,
              help="Also the params capturers found in objects (model.max_depth) and sys.* metrics.")
@one_line
def runs_cmd(store_path: str | None, where: str | None, experiment: str | None, limit: int | None,
             as_json: bool, all_columns: bool) -> None:
    """List runs, oldest first."""
    frame = api.runs(experiment=experiment, where=where, store=open_store(store_path), limit=limit)
    if as_json:
        click.echo(formats.dumps_records(frame))
        return
    if frame.empty:
        click.echo("no runs match")
        return
    # columns that say nothing here (one experiment, one person on one host) are left out
    view = frame.drop(columns=["ended_at"] + [c for c in ("experiment", "user", "host") if frame[c].nunique() <= 1])
    if not all_columns:   # the cell's own params and metrics; a capturer's keys hold a dot
        view = view[[c for c in view.columns if not (c.startswith("params.") and "." in c[len("params."):])
                     and not c.startswith("metrics.sys.")]]
    view["run_id"] = view["run_id"].str[:8]
    view["started_at"] = view["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    view["duration_s"] = view["duration_s"].round(3)
    view["tags"] = view["tags"].map(lambda t: ",".join(t))
    if view["sweep_id"].isna().all():
        view = view.drop(columns=["sweep_id"])
    else:
        view["sweep_id"] = view["sweep_id"].str[:8]
    # what nobody has edited yet (no label, no note, no star) is left out too
    view = view.drop(columns=[c for c in ("label", "note") if view[c].isna().all()]
                     + (["starred"] if not view["starred"].any() else []))
    if "starred" in view:
        view["starred"] = view["starred"].map({True: "*", False: ""})
    print_frame(view)


def _section(title: str, items: dict[str, Any]) -> None:
    if items:
        click.echo(f"\n{title}:")
        for k, v in items.items():
            click.echo(f"  {k} = {v!r}" if not isinstance(v, str) or title != "source" else v)


@main.command("show")
@store_option
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@one_line
def show_cmd(store_path: str | None, run_id: str, as_json: bool) -> None:
    """Everything recorded about one run (id or unique prefix)."""
    run = api.get(run_id, store=open_store(store_path))
    if as_json:
        data = {k: getattr(run, k) for k in ("run_id", "name", "experiment", "status", "duration_s", "tags",
                                             "params", "metrics", "values", "inputs", "outputs", "source", "env",
                                             "error")}
        data.update({k: None if getattr(run, k) is None else getattr(run, k).isoformat()
                     for k in ("started_at", "ended_at")})
        click.echo(json.dumps(codec.encode(data), indent=1, ensure_ascii=False, allow_nan=False))
        return
    click.echo(f"run {run.run_id}  {run.name}  [{run.status}]  experiment {run.experiment}")
    click.echo(f"started {run.started_at}  duration {run.duration_s or 0:.3f} s  tags {', '.join(run.tags) or '-'}")
    _section("params", run.params)
    _section("metrics", run.metrics)
    _section("values", run.values)
    _section("inputs", {k: f"{v.get('type')} {v.get('shape') or ''} {str(v.get('hash') or '')[:12]}"
                        for k, v in run.inputs.items()})
    _section("outputs", {k: f"{v.get('change')} {v.get('type')} {v.get('shape') or ''} "
                            f"{str(v.get('hash') or '')[:12]}" for k, v in run.outputs.items()})
    if run.error:
        click.echo(f"\nerror: {run.error['type']}: {run.error['message']}")
    env = run.env
    click.echo(f"\nenv: Python {env.get('python')} on {env.get('platform')}, host {env.get('host')}, "
               f"git {str(env.get('git_commit') or '-')[:10]}{' (dirty)' if env.get('git_dirty') else ''}")
    if run.source is not None:
        click.echo("\nsource:")
        click.echo(run.source)


@main.command("diff")
@store_option
@click.argument("run_a")
@click.argument("run_b")
@one_line
def diff_cmd(store_path: str | None, run_a: str, run_b: str) -> None:
    """What differs between two runs: params, metrics, source, environment."""
    store = open_store(store_path)
    a, b = api.get(run_a, store=store), api.get(run_b, store=store)
    d = diff_runs(a, b)
    click.echo(f"--- {a.run_id[:8]} {a.name}\n+++ {b.run_id[:8]} {b.name}")
    for section in ("params", "metrics", "values", "inputs", "env", "packages"):
        if d[section]:
            click.echo(f"\n{section}:")
            for key, (x, y) in d[section].items():
                click.echo(f"  {key}: {x!r} -> {y!r}")
    if d["source"]:
        click.echo("\nsource:")
        for line in d["source"]:
            click.echo(line)
    if not any(d.values()):
        click.echo("\nno differences in params, metrics, values, inputs, source or environment")


@main.command("sql")
@store_option
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records.")
@click.option("--allow-files", is_flag=True,
              help="Let the query read other files (read_csv, read_parquet); it still cannot write any.")
@one_line
def sql_cmd(store_path: str | None, query: str, as_json: bool, allow_files: bool) -> None:
    """Run one reading SQL query on a read-only connection (tables: runs, params, metrics, metric_history, ...).

    The connection cannot write, copy out, attach, install or load anything, nor read other files
    unless --allow-files is given."""
    import duckdb

    store = open_store(store_path)
    store.sync()
    with store.connect(read_only=True, allow_files=allow_files) as con:
        try:
            frame = user_sql(con, query)
        except duckdb.Error as e:   # the query's own error, unless the object store refused to serve it
            raise click.ClickException(objectstore.explain(str(e)) or f"SQL error: {e}") from None
    if as_json:
        click.echo(formats.dumps_records(frame))
    else:
        print_frame(frame)


@main.command("export")
@store_option
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@click.option("--where", help="Filter, as for `nbtrack runs`.")
@click.option("--experiment", "-e")
@one_line
def export_cmd(store_path: str | None, fmt: str, output: str, where: str | None, experiment: str | None) -> None:
    """Write the runs table (one row per run) to a file."""
    frame = api.runs(experiment=experiment, where=where, store=open_store(store_path))
    path = Path(output)
    if fmt == "csv":
        formats.write_csv(frame, path)
    elif fmt == "parquet":
        formats.write_parquet(frame, path)
    else:
        path.write_text(formats.dumps_records(frame), encoding="utf-8")
    click.echo(f"wrote {len(frame)} runs to {path}")


@main.command("check")
@store_option
@click.argument("run_a")
@click.argument("run_b")
@click.option("--rtol", type=float, default=None, help="Relative tolerance for metrics (default 1e-9).")
@click.option("--atol", type=float, default=None, help="Absolute tolerance for metrics (default 0).")
@click.option("--markdown", is_flag=True, help="Print the report as Markdown.")
@one_line
def check_cmd(store_path: str | None, run_a: str, run_b: str, rtol: float | None, atol: float | None,
              markdown: bool) -> None:
    """Compare RUN_B with RUN_A: verdict per output and overall, and the likely causes.

    Exits 0 when identical or within tolerance, 1 when they differ.
    """
    from .repro import check as repro

    report = repro.check(run_a, run_b, store=open_store(store_path),
                         rtol=repro.RTOL if rtol is None else rtol, atol=repro.ATOL if atol is None else atol)
    click.echo(report._repr_markdown_() if markdown else str(report))
    sys.exit(1 if report.verdict == "differs" else 0)


@main.command("lineage")
@store_option
@click.argument("run")
@one_line
def lineage_cmd(store_path: str | None, run: str) -> None:
    """Print the runs RUN depends on (upstream) and those built on it (downstream)."""
    from .repro.graph import lineage

    click.echo(str(lineage(run, open_store(store_path))))


@main.command("export-script")
@store_option
@click.argument("run")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the script here (default: print it).")
@one_line
def export_script_cmd(store_path: str | None, run: str, output: str | None) -> None:
    """Write a standalone Python script that reproduces RUN and its upstream chain."""
    from .repro.export import export_script

    text = export_script(run, output, open_store(store_path))
    if output:
        click.echo(f"wrote {output}: run it with python {output}")
    else:
        click.echo(text, nl=False)


@main.command("report")
@store_option
@click.argument("runs", nargs=-1, metavar="[RUN]...")
@click.option("--experiment", "-e", help="Only runs of this experiment.")
@click.option("--where", help="Only the runs a filter selects.")
@click.option("-o", "--output", required=True, metavar="FILE", help="The file to write.")
@click.option("--title", help="The title (default: the number of runs).")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]), default="html", show_default=True,
              help="html: the interactive panel in one file; md: a table, what differs and PNG charts.")
@one_line
def report_cmd(store_path: str | None, runs: tuple[str, ...], experiment: str | None, where: str | None,
               output: str, title: str | None, fmt: str) -> None:
    """Write a comparison anyone can open without Python: ONE self-contained HTML file (the panel, its
    data and its code inside; no server, no network), or Markdown with PNG charts for a pull request."""
    store = open_store(store_path)
    ids = None
    if runs:
        with store.connect() as con:
            ids = [resolve_run_id(con, ref, str(store.path)) for ref in runs]
    if fmt == "md":
        from . import markdown

        frame = api.runs(experiment=experiment, where=where, store=store)
        if ids is not None:
            frame = frame[frame["run_id"].isin(ids)].reset_index(drop=True)
        files = markdown.write(frame, output, title=title, store=store, where=where)
        images = files[1:]
        click.echo(f"wrote {files[0].resolve()}: {len(frame)} run{'s' if len(frame) != 1 else ''}"
                   + (f", {len(images)} charts in {images[0].parent.name}/" if images else ""))
        return
    from .widgets import ComparePanel

    # a saved page has no kernel to page from: it carries every run, however many
    panel = ComparePanel(ids, experiment=experiment, where=where, store=store, paged=False)
    try:
        path = panel.save(output, title)
        n = len(panel.runs)
    finally:
        panel.close()
    click.echo(f"wrote {path.resolve()}: {n} run{'s' if n != 1 else ''}, {path.stat().st_size / 1e6:.1f} MB; "
               "open it in a browser")


def _team(url: str | None, data_path: str | None, flag: str) -> Store:
    from .store import is_team_url

    url = url or os.environ.get("NBTRACK_STORE")
    if not is_team_url(url):
        raise click.ClickException(f"name the team store with {flag} ducklake:postgres:... or set NBTRACK_STORE "
                                   "to its URL")
    return Store(url, data_path=data_path)


def _local(path: str | None) -> Store:
    from .store import is_team_url

    env = os.environ.get("NBTRACK_STORE")
    return Store(path or (env if env and not is_team_url(env) else DEFAULT_LOCAL))


def _transfer(source: Store, target: Store, since: str | None, experiment: str | None) -> None:
    from .store.transfer import BATCH, copy_runs

    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not sys.stderr.isatty():   # a notebook's !nbtrack push or a log: a line per batch
            if total > BATCH and done:
                click.echo(f"{done:,}/{total:,} runs", err=True)
            return
        if bar is None and total:
            bar = click.progressbar(length=total, label=f"{source.path} -> {target.path}", file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            bar.update(done - bar.pos)

    try:
        result = copy_runs(source, target, since=since, experiment=experiment, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(f"{source.path} -> {target.path}: {result}")
    if result.failed:
        sys.exit(1)


@main.command("push")
@click.option("--to", "url", metavar="URL", help="The team store (default: $NBTRACK_STORE when it is a URL).")
@click.option("--data-path", envvar="NBTRACK_DATA_PATH", help="The team store's data folder (to create it).")
@click.option("--store", "store_path", metavar="PATH", help="The local store (default ./.nbtrack/runs.duckdb).")
@click.option("--since", metavar="DATE|RUN", help="Only runs started at/after DATE, or after run RUN.")
@click.option("--experiment", "-e", help="Only runs of this experiment.")
@one_line
def push_cmd(url: str | None, data_path: str | None, store_path: str | None, since: str | None,
             experiment: str | None) -> None:
    """Copy local runs (curves, displays, artifacts) to the team store; runs already there are skipped."""
    target = _team(url, data_path, "--to")
    source = _local(store_path)
    if not source.exists():
        raise click.ClickException(f"no local store at {source.path}; pass --store PATH")
    _transfer(source, target, since, experiment)


@main.command("pull")
@click.option("--from", "url", metavar="URL", help="The team store (default: $NBTRACK_STORE when it is a URL).")
@click.option("--store", "store_path", metavar="PATH", help="The local store (default ./.nbtrack/runs.duckdb).")
@click.option("--since", metavar="DATE|RUN", help="Only runs started at/after DATE, or after run RUN.")
@click.option("--experiment", "-e", help="Only runs of this experiment.")
@one_line
def pull_cmd(url: str | None, store_path: str | None, since: str | None, experiment: str | None) -> None:
    """Copy the team store's runs into the local store, to compare them offline."""
    _transfer(_team(url, None, "--from"), _local(store_path), since, experiment)


@main.command("maintain")
@store_option
@click.option("--keep-days", type=float, default=7.0, show_default=True,
              help="Keep snapshots (time travel) this many days.")
@one_line
def maintain_cmd(store_path: str | None, keep_days: float) -> None:
    """Tidy a store. A team store: inlined rows to Parquet, small files merged, old snapshots and orphans
    removed. A file store: its metrics and params copied again in key order (after SQL of your own)."""
    store = Store(store_path)
    for line in store.maintain(keep_days):
        click.echo(line)


for _command in COMMANDS:   # tag, untag, rename, note, star, rm, restore, gc
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
