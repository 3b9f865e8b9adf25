"""Tidying runs after the fact: tags, labels, notes, stars, soft delete, restore and gc, through the
real path (the call or the CLI -> an edits spool file -> the importer -> the DuckDB file -> every reader)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrack
from nbtrack.errors import NbtrackError, RunNotFoundError
from nbtrack.store import Store

from helpers import ROOT, run_py


def _runs(path, n=4, **extra):
    ids = []
    for i in range(n):
        with nbtrack.run("fit", params={"lr": 0.1 * (i + 1), "i": i}, tags=["recorded"], store=path, **extra) as r:
            r.log(acc=0.5 + i / 10)
        ids.append(r.run_id)
    return ids


def _cli(*args, cwd=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "nbtrack", *args], capture_output=True, text=True, cwd=cwd,
                          input=stdin, timeout=120)


def test_every_edit_reads_back_as_the_runs_state_and_its_history(tmp_path):
    path = tmp_path / "runs.duckdb"
    a, b, c, d = _runs(path)
    assert nbtrack.tag([a, b], "best", "v2", store=path) == 2
    assert nbtrack.tag([a, b], "best", store=path) == 0          # nothing to change: no edit written
    assert nbtrack.untag(a, "recorded", store=path) == 1         # a tag the run was recorded with, too
    assert nbtrack.rename(b, "  the good one ", store=path) == 1
    assert nbtrack.note(b, "# why\nlr *0.2* <b>was</b> best", store=path) == 1
    assert nbtrack.star("params.lr > 0.25", store=path) == 2     # a filter, as runs(where=...) takes
    frame = nbtrack.runs(store=path).set_index("run_id")
    assert frame.at[a, "tags"] == ["best", "v2"] and frame.at[b, "tags"] == ["recorded", "best", "v2"]
    assert frame.at[b, "label"] == "the good one" and frame.at[b, "note"] == "# why\nlr *0.2* <b>was</b> best"
    assert list(frame["starred"]) == [False, False, True, True]
    run = nbtrack.get(b, store=path)
    assert (run.label, run.starred, run.tags, run.deleted_at) == ("the good one", False, ["recorded", "best", "v2"], None)
    events = run.events
    assert [(e["field"], e["tag"], e["value"]) for e in events] == [
        ("tag", "best", True), ("tag", "v2", True), ("label", None, "the good one"),
        ("note", None, "# why\nlr *0.2* <b>was</b> best")]
    assert all(e["user"] and e["host"] and e["at"].tzinfo for e in events)
    assert events == sorted(events, key=lambda e: e["at"])
    # filters see the state: tags, label, note, starred
    assert list(nbtrack.runs(where="tags = 'best' and starred = false", store=path)["run_id"]) == [a, b]
    assert list(nbtrack.runs(where="label like '%good%'", store=path)["run_id"]) == [b]
    assert list(nbtrack.runs(where="starred = true and tags != 'best'", store=path)["run_id"]) == [c, d]
    # undoing: untag, a label and a note removed, unstar
    nbtrack.untag([a, b], "v2", store=path)
    nbtrack.rename(b, None, store=path)
    nbtrack.note(b, "", store=path)
    assert nbtrack.star([c, d], on=False, store=path) == 2
    run = nbtrack.get(b, store=path)
    assert (run.label, run.note, run.tags, run.starred) == (None, None, ["recorded", "best"], False)
    assert len(run.events) == 7


def test_deleted_runs_leave_every_list_and_come_back_with_restore(tmp_path, ip, store_path):
    a, b, c, d = _runs(store_path)
    assert nbtrack.delete([a, c], store=store_path) == 2
    assert nbtrack.delete(a, store=store_path) == 0
    assert list(nbtrack.runs(store=store_path)["run_id"]) == [b, d]
    every = nbtrack.runs(store=store_path, include_deleted=True)
    assert list(every["run_id"]) == [a, b, c, d]
    assert every["deleted_at"].notna().tolist() == [True, False, True, False]
    assert nbtrack.get(a, store=store_path).deleted_at is not None      # asked for by id, it is still there
    out = _cli("runs", "--store", str(store_path), "--json")
    assert [r["run_id"] for r in json.loads(out.stdout)] == [b, d]
    from nbtrack.widgets import ComparePanel
    panel = ComparePanel(store=store_path)
    assert sorted(panel.runs["run_id"]) == sorted([b, d])
    panel.close()
    # a check does not take a deleted run as its reference
    ip.run_cell("%%track sq --check\nn = 3\ntotal = n * 2")
    first = nbtrack.last().run_id
    nbtrack.delete(first, store=store_path)
    ip.run_cell("%%track sq --check\nn = 3\ntotal = n * 2")
    assert nbtrack.last().info["checked_against"] is None
    ip.run_cell("%%track sq --check\nn = 3\ntotal = n * 2")
    assert nbtrack.last().info["checked_against"] not in (None, first)
    # restore: a filter here looks at the deleted runs
    assert nbtrack.restore("params.lr < 0.35", store=store_path) == 2
    assert list(nbtrack.runs(store=store_path, where="name = 'fit'")["run_id"]) == [a, b, c, d]


def test_runs_are_named_as_compare_takes_them_and_bad_requests_say_what_to_do(tmp_path):
    path = tmp_path / "runs.duckdb"
    ids = _runs(path)
    frame = nbtrack.runs(store=path)
    assert nbtrack.tag(frame[frame["params.i"] >= 2], "late", store=path) == 2      # a DataFrame of runs
    assert nbtrack.tag(nbtrack.get(ids[0], store=path), "first", store=path) == 1  # a Run
    assert nbtrack.tag([ids[1][:8]], "prefix", store=path) == 1                     # a prefix
    assert nbtrack.tag(None, "x", where="params.i = 1", store=path) == 1            # where=
    assert nbtrack.star(ids, store=path, dry_run=True) == 4                         # a dry run writes nothing
    assert not nbtrack.runs(store=path)["starred"].any()
    with pytest.raises(NbtrackError, match="name the runs to edit"):
        nbtrack.tag(None, "x", store=path)
    with pytest.raises(NbtrackError, match="name at least one tag"):
        nbtrack.tag(ids)
    with pytest.raises(NbtrackError, match="a tag is non-empty text, not ''"):
        nbtrack.tag(ids, "", store=path)
    with pytest.raises(NbtrackError, match="rename takes one run; 4 match"):
        nbtrack.rename(ids, "x", store=path)
    with pytest.raises(RunNotFoundError, match="no run matches 'zzzz'"):
        nbtrack.star("zzzz", store=path)
    with pytest.raises(NbtrackError, match="a note is at most 100,000 characters"):
        nbtrack.note(ids[0], "x" * 100_001, store=path)
    with pytest.raises(nbtrack.NbtrackError, match="unknown field 'nope'"):
        nbtrack.delete("nope > 1", store=path)
    with pytest.raises(NbtrackError, match="needs a run_id column"):
        nbtrack.tag(frame[["name"]], "x", store=path)
    assert len(nbtrack.runs(store=path)) == 4


def test_the_command_line_edits_with_counts_dry_runs_and_one_line_errors(tmp_path):
    path = tmp_path / "runs.duckdb"
    a, b, c, d = _runs(path)
    s = ["--store", str(path)]
    header = _cli("runs", *s).stdout.splitlines()[0].split()
    assert not {"label", "starred", "note"} & set(header)   # nothing edited yet: no empty columns
    assert _cli("tag", a[:8], b[:8], "-t", "best", "-t", "v2", *s).stdout == "tagged 2 runs\n"
    assert _cli("untag", a[:8], "-t", "v2", *s).stdout == "untagged 1 run\n"
    assert _cli("star", "--where", "params.lr > 0.25", "--dry-run", *s).stdout == \
        "would star 2 runs (dry run: nothing changed)\n"
    assert _cli("star", "--where", "params.lr > 0.25", *s).stdout == "starred 2 runs\n"
    assert _cli("star", c[:8], "--off", *s).stdout == "unstarred 1 run\n"
    assert _cli("rename", b[:8], "baseline", *s).stdout == "renamed 1 run\n"
    assert _cli("note", b[:8], "-", *s, stdin="# from stdin\nsecond line\n").stdout == "noted 1 run\n"
    assert _cli("rm", "--where", "params.i >= 2", *s).stdout == "deleted 2 runs\n"
    assert _cli("restore", c[:8], *s).stdout == "restored 1 run\n"
    listing = _cli("runs", *s).stdout.splitlines()
    assert {"label", "note"} <= set(listing[0].split()) and "starred" not in listing[0]   # c was unstarred
    assert "baseline" in listing[2] and listing[2].startswith(b[:8])
    assert _cli("star", a[:8], *s).stdout == "starred 1 run\n"
    listing = _cli("runs", *s).stdout.splitlines()
    assert "starred" in listing[0] and [("*" in line) for line in listing[1:]] == [True, False, False]
    nbtrack.star(a, on=False, store=path)
    frame = nbtrack.runs(store=path).set_index("run_id")
    assert list(frame.index) == [a, b, c]
    assert frame.at[a, "tags"] == ["recorded", "best"] and frame.at[b, "label"] == "baseline"
    assert frame.at[b, "note"] == "# from stdin\nsecond line\n"
    assert frame["starred"].tolist() == [False, False, False]
    for args, message in [(("tag", "-t", "x"), "name the runs: run ids or prefixes, or --where FILTER"),
                          (("tag", a[:8]), "Missing option '-t'"),
                          (("rename", "zzzz", "x"), "no run matches 'zzzz'"),
                          (("rm", "--where", "params.i >"), "could not parse filter"),
                          (("gc", "--older-than", "3x"), "'3x' is not an age: write 30d, 12h, 2w or 0")]:
        out = _cli(*args, *s)
        assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)


def test_gc_removes_deleted_runs_with_what_only_they_used_and_frees_the_space(ip, store_path):
    import numpy as np

    ip.user_ns.update(np=np, nbtrack=nbtrack)
    for i in range(3):   # each shows a shared table and a large unique one, and logs a long curve
        ip.run_cell(f"%%track fit\nfrom IPython.display import display\ni = {i}\n"
                    "display({'text/plain': 'shared', 'text/csv': 'shared by every run'}, raw=True)\n"
                    "display({'text/plain': 'big', 'text/csv': 'unique ' + str(i) + ' ' + 'x' * 500_000}, raw=True)\n"
                    "for s in range(50_000):\n    nbtrack.log(loss=float(np.sin(s * (i + 1))))")
    frame = nbtrack.runs(store=store_path)
    gone, kept = frame["run_id"][0], list(frame["run_id"][1:])
    nbtrack.delete(gone, store=store_path)
    s = ["--store", str(store_path)]
    dry = _cli("gc", "--dry-run", *s)
    assert dry.stdout == (f"would remove 1 deleted run from {store_path}: 50,000 curve points, "
                          "1 artifact no other run uses (488.3 KiB)\n")
    assert _cli("gc", "--older-than", "1d", *s).stdout == f"no deleted runs to remove in {store_path}\n"
    size = store_path.stat().st_size
    out = _cli("gc", *s)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first == dry.stdout.strip().replace("would remove", "removed")
    freed = size - store_path.stat().st_size
    assert freed > 300_000 and second.startswith(f"{store_path}: ") and second.endswith(" freed")
    assert list(nbtrack.runs(store=store_path, include_deleted=True)["run_id"]) == kept
    for run_id in kept:   # what the other runs use is all there: the shared display, curves, their own image
        run = nbtrack.get(run_id, store=store_path)
        texts = [d["data"] for d in run.displays if d["mime"] == "text/csv"]
        assert texts[0] == b"shared by every run" and texts[1].startswith(b"unique ")
        assert len(run.history("loss")) == 50_000
    with Store(store_path).connect() as con:
        assert con.execute("SELECT count(*) FROM metric_history WHERE run_id = ?", [gone]).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM run_edits WHERE run_id = ?", [gone]).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs_wide").fetchone()[0] == 2   # views survive the rewrite
    ip.run_cell("%%track after\nx = 1")                                             # and the store takes runs
    assert nbtrack.last().status == "finished"


def test_edits_from_several_processes_at_once_all_land(tmp_path):
    path = tmp_path / "runs.duckdb"
    ids = _runs(path, n=3)
    code = ("import nbtrack, sys\n"
            "for k in range(40):\n"
            f"    nbtrack.tag({ids!r}, f'{{sys.argv[1]}}-{{k}}', store={str(path)!r})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, who], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
             for who in ("p1", "p2", "p3")]
    cli = [_cli("star", *ids, "--store", str(path)), _cli("note", ids[0][:8], "from the CLI", "--store", str(path))]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0], [p.stderr.read() for p in procs]
    assert [c.returncode for c in cli] == [0, 0], [c.stderr for c in cli]
    frame = nbtrack.runs(store=path)
    want = {"recorded", *(f"{who}-{k}" for who in ("p1", "p2", "p3") for k in range(40))}
    assert all(set(tags) == want and len(tags) == len(want) for tags in frame["tags"])
    assert frame["starred"].all() and frame["note"][0] == "from the CLI"
    assert len(nbtrack.get(ids[1], store=path).events) == 121


def test_the_latest_edit_of_a_field_wins_whatever_order_edits_arrive_in(tmp_path):
    """Edits made on two machines arrive out of order (a pull, a late spool): the state is the one the
    latest edit says, per field and per tag, and an edit that arrives before its run waits for it."""
    path = tmp_path / "runs.duckdb"
    (a,) = _runs(path, n=1)
    store = Store(path)

    def edit(field, value, at, run=a, tag=None):
        return {"edit_id": os.urandom(16).hex(), "run_id": run, "at": at, "user": "u", "host": "h",
                "field": field, "tag": tag, "value": value}

    now = time.time()
    store.spool.write_edits([edit("label", "newest", now + 2), edit("tag", True, now + 1, tag="x")])
    store.sync()
    store.spool.write_edits([edit("label", "older", now), edit("tag", False, now, tag="x"),
                             edit("starred", True, now)])
    store.sync()
    run = nbtrack.get(a, store=path)
    assert (run.label, run.tags, run.starred) == ("newest", ["recorded", "x"], True)
    # edits of a run not in the store yet, then the run itself
    from nbtrack.recorder.run import ActiveRun
    later = ActiveRun(store, name="late", experiment="e", kind="script", tags=["t0"])
    store.spool.write_edits([edit("tag", False, now, run=later.run_id, tag="t0"),
                             edit("note", "came first", now, run=later.run_id)])
    store.sync()
    later.start().finish()
    run = nbtrack.get(later.run_id, store=path)
    assert (run.tags, run.note) == ([], "came first")


def test_a_run_tagged_while_it_runs_keeps_the_tag_when_it_ends(tmp_path):
    path = tmp_path / "runs.duckdb"
    out = run_py("import nbtrack\n"
                 f"with nbtrack.run('long', tags=['a'], store={str(path)!r}) as r:\n"
                 f"    nbtrack.tag(r.run_id, 'watched', store={str(path)!r})\n"
                 f"    nbtrack.star(r.run_id, store={str(path)!r})\n"
                 "    r.log(loss=1.0)\n", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = nbtrack.runs(store=path).iloc[0]
    assert run["status"] == "finished" and run["tags"] == ["a", "watched"] and run["starred"]


def test_a_secret_in_a_note_or_tag_never_reaches_the_store(tmp_path, monkeypatch):
    path = tmp_path / "runs.duckdb"
    (a,) = _runs(path, n=1)
    token = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
    monkeypatch.setenv("SERVICE_TOKEN", "hunter2-but-longer")
    nbtrack.note(a, f"called the API with {token} and hunter2-but-longer", store=path)
    nbtrack.tag(a, token, store=path)
    nbtrack.runs(store=path)
    data = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert token.encode() not in data and b"hunter2-but-longer" not in data
    run = nbtrack.get(a, store=path)
    assert run.note == "called the API with *** and ***" and run.tags == ["recorded", "***"]


def test_a_damaged_edits_file_is_set_aside_and_the_rest_import(tmp_path, capfd):
    path = tmp_path / "runs.duckdb"
    (a,) = _runs(path, n=1)
    spool = Store(path).spool
    (spool.dir / f"edit.{'0' * 32}.json").write_text('{"edits": [{"edit_id": "x", "run_id": "r", "field": "mood"}]}')
    (spool.dir / f"edit.{'1' * 32}.json").write_text('{"edits": [')
    nbtrack.tag(a, "fine", store=path)
    assert nbtrack.get(a, store=path).tags == ["recorded", "fine"]
    err = capfd.readouterr().err
    assert "an edit of an unknown field 'mood'" in err and "not a readable edits record" in err
    assert sorted(p.name for p in spool.dir.iterdir() if "edit." in p.name) == [   # kept, never deleted
        f".unreadable.edit.{'0' * 32}.json", f".unreadable.edit.{'1' * 32}.json"]


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(lambda t: t.strip())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tag=TEXT, label=TEXT, note=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_odd_text_in_tags_labels_and_notes_reads_back_exactly(tmp_path_factory, tag, label, note):
    """Exactly, as every text column holds text: NUL as the four characters \\x00 (codec.text_safe)."""
    from nbtrack.store.codec import text_safe

    path = tmp_path_factory.getbasetemp() / "odd-text" / "runs.duckdb"   # one store, a run per example
    (a,) = _runs(path, n=1)
    nbtrack.tag(a, tag, store=path)
    nbtrack.rename(a, label, store=path)
    nbtrack.note(a, note, store=path)
    run = nbtrack.get(a, store=path)
    assert run.tags == list(dict.fromkeys(["recorded", text_safe(tag.strip())]))
    assert run.label == text_safe(label.strip()) and run.note == (text_safe(note) if note else None)
    frame = nbtrack.runs(store=path, where=f"run_id = '{a}'")
    assert frame["label"][0] == run.label and frame["tags"][0] == run.tags and frame["note"][0] == run.note


def test_the_readmes_tidy_examples_run_as_written(tmp_path, monkeypatch):
    import re

    from nbtrack.recorder.run import ActiveRun

    text = (ROOT / "README.md").read_text()
    tour = text[text.index("**Tidy.**"):]
    python = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    shell = re.search(r"```sh\n(.*?)```", tour, re.S).group(1)
    monkeypatch.delenv("NBTRACK_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ".nbtrack" / "runs.duckdb"   # the default store, as in the README
    nbtrack.connect(path)
    store = Store(path)
    for i, (run_id, acc, status) in enumerate([("6348db58aa", 0.97, "finished"), ("71aa", 0.96, "finished"),
                                               ("8000", 0.5, "finished"), ("9001", None, "failed"),
                                               ("9002", None, "failed"), ("9003", None, "failed")]):
        run = ActiveRun(store, name="baseline", experiment="e", kind="script")
        run.run_id = run_id
        if acc is not None:
            run.metrics["acc"] = (acc, None, "cell")
        run.start()
        run.end(RuntimeError("boom") if status == "failed" else None)
    env = {k: v for k, v in os.environ.items() if k != "NBTRACK_STORE"}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"
    for line in shell.strip().splitlines():
        command, _, comment = line.partition("#")
        out = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        assert out.returncode == 0, (line, out.stderr)
        if comment.strip().startswith("would"):   # the output the README shows
            assert out.stdout.strip() == comment.strip(), line
    exec(compile(python, "README.md", "exec"), {"nbtrack": nbtrack})
    runs = nbtrack.runs().set_index("run_id")
    assert list(runs.index) == ["6348db58aa", "71aa", "8000"]
    assert runs.at["6348db58aa", "tags"] == ["shortlist"] and runs.at["71aa", "tags"] == ["shortlist"]
    assert runs.at["8000", "tags"] == []
    best = nbtrack.get("6348db")
    assert (best.label, best.note, best.starred) == ("baseline, 200 trees", "Best so far. **Overfits** past depth 8.",
                                                     True)
    assert len(nbtrack.runs(include_deleted=True)) == 6
