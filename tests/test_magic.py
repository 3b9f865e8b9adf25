"""%%track and %nbtrack as a user types them in a real IPython shell."""
from __future__ import annotations

import nbtrack
from nbtrack.recorder.session import session


def test_tracked_cell_records_a_run_with_name_tags_and_experiment(ip):
    ip.run_cell("%%track baseline -e exp1 -t a -t b\nlr = 0.1\nacc = 0.5 + lr")
    run = nbtrack.last()
    assert (run.name, run.experiment, run.tags, run.status) == ("baseline", "exp1", ["a", "b"], "finished")
    assert run.params == {"lr": 0.1}
    assert run.metrics == {"acc": 0.6}
    assert ip.user_ns["acc"] == 0.6


def test_bad_option_is_a_usage_error_naming_it_and_the_cell_does_not_run(ip, capsys):
    result = ip.run_cell("%%track --bogus\nran = True")
    err = capsys.readouterr()
    assert "UsageError" in err.out + err.err and "--bogus" in err.out + err.err
    assert "ran" not in ip.user_ns
    assert not result.success
    assert nbtrack.runs().empty


def test_bad_param_value_and_unknown_param_are_usage_errors(ip, capsys):
    ip.run_cell("%%track -p lr=1e-3x\nlr = 0.1\nran = 1")
    out = capsys.readouterr()
    assert "1e-3x" in out.out + out.err and "not a Python literal" in out.out + out.err
    ip.run_cell("%%track -p lrr=0.5\nlr = 0.1\nran = 1")
    out = capsys.readouterr()
    assert "did you mean lr?" in out.out + out.err
    assert "ran" not in ip.user_ns


def test_param_override_replaces_the_literal_but_not_the_text(ip):
    ip.run_cell("%%track -p max_depth=4 -p model=rf\nmax_depth = 8\nmodel = 'gb'\nd = max_depth * 2")
    run = nbtrack.last()
    assert ip.user_ns["max_depth"] == 4 and ip.user_ns["d"] == 8 and ip.user_ns["model"] == "rf"
    assert run.params == {"max_depth": 4, "model": "rf"}
    assert run.info["command"] == "%%track -p max_depth=4 -p model=rf"
    assert "max_depth = 8" in run.source


def test_override_in_tuple_assignment_and_annotated(ip):
    ip.run_cell("%%track -p a=10 -p c=3.5\na, b = 1, 2\nc: float = 0.5\ns = a + b + c")
    assert ip.user_ns["s"] == 15.5
    assert nbtrack.last().params == {"a": 10, "b": 2, "c": 3.5}


def test_off_and_on(ip):
    ip.run_cell("%nbtrack off")
    ip.run_cell("%%track\nx = 1")
    assert ip.user_ns["x"] == 1
    assert nbtrack.runs().empty
    ip.run_cell("%nbtrack on")
    ip.run_cell("%%track\nx = 2")
    assert len(nbtrack.runs()) == 1


def test_store_switch(ip, tmp_path, capsys):
    other = tmp_path / "other.duckdb"
    ip.run_cell(f"%nbtrack store {other}")
    assert "recording into" in capsys.readouterr().out
    ip.run_cell("%%track\nx = 1")
    assert len(nbtrack.runs(store=other)) == 1


def test_line_magic_shows_store_and_last_runs(ip, capsys):
    ip.run_cell("%%track first\nlr = 0.5\nacc = lr / 2")
    capsys.readouterr()
    ip.run_cell("%nbtrack")
    out = capsys.readouterr().out
    assert str(session.tracker.store.path) in out
    assert "first" in out and "0.25" in out and "params.lr" in out


def test_unknown_line_magic_argument(ip, capsys):
    ip.run_cell("%nbtrack frobnicate")
    out = capsys.readouterr()
    assert "frobnicate" in out.out + out.err and "%nbtrack store PATH" in out.out + out.err


def test_summary_display_has_own_mime_and_can_be_turned_off(ip):
    published = []
    original = ip.display_pub.publish

    def spy(data, *a, **k):
        published.append(data)
        return original(data, *a, **k)

    ip.display_pub.publish = spy
    try:
        ip.run_cell("%%track demo\nlr = 0.1\nacc = round(lr * 9, 6)")
        bundles = [b for b in published if "application/vnd.nbtrack.run+json" in b]
        assert len(bundles) == 1
        data = bundles[0]["application/vnd.nbtrack.run+json"]
        assert data["params"] == {"lr": 0.1} and data["metrics"] == {"acc": 0.9}
        assert "lr=0.1 -> acc=0.9" in bundles[0]["text/plain"]
        ip.run_cell("%nbtrack summary off")
        published.clear()
        ip.run_cell("%%track demo\nlr = 0.1\nacc = round(lr * 9, 6)")
        assert not [b for b in published if "application/vnd.nbtrack.run+json" in b]
    finally:
        del ip.display_pub.publish


def test_name_falls_back_to_cell_id_then_to_stable_code_key(ip):
    ip.run_cell("%%track\nlr = 0.1\ny = lr * 2", cell_id="abcdef12-3456")
    assert nbtrack.last().name == "cell-abcdef12"
    assert nbtrack.last().info["cell_id"] == "abcdef12-3456"
    ip.run_cell("%%track\nlr = 0.1\ny = lr * 2")
    first = nbtrack.last().name
    ip.run_cell("%%track\nlr = 0.5   # another value, same cell\ny = lr * 2")
    assert nbtrack.last().name == first and first.startswith("cell-")
    ip.run_cell("%%track\nlr = 0.5\ny = lr * 3")
    assert nbtrack.last().name != first


def test_another_cell_magic_below_track(ip, capsys):
    ip.run_cell("%%track timed\n%%time\nz = sum(range(10))")
    assert ip.user_ns["z"] == 45
    assert "Wall time" in capsys.readouterr().out
    assert nbtrack.last().name == "timed"


def test_exclude_and_no_outputs(ip):
    ip.user_ns["big"] = list(range(100))
    ip.run_cell("%%track --exclude big --exclude secret_sauce --no-outputs\n"
                "n = len(big)\nsecret_sauce = 42\nprint('hello')\nn")
    run = nbtrack.last()
    assert "big" not in run.inputs and "secret_sauce" not in run.metrics
    assert run.metrics == {"n": 100.0}
    assert run.displays == []


def test_run_cell_magic_called_directly(ip):
    ip.run_cell("get_ipython().run_cell_magic('track', 'direct', 'q = 3')")
    assert ip.user_ns["q"] == 3
    assert nbtrack.last().name == "direct"


def test_empty_tracked_cell(ip):
    assert ip.run_cell("%%track\n").success
    assert ip.run_cell("%%track empty").success
    assert nbtrack.last().status == "finished" and nbtrack.last().name == "empty"


def test_summary_off_from_the_environment_and_a_bad_store_path(ip, tmp_path, monkeypatch, capsys):
    from nbtrack.kernel.cell import CellTracker
    monkeypatch.setenv("NBTRACK_SUMMARY", "0")
    assert CellTracker(ip).summary is False
    (tmp_path / "notes.txt").write_text("not a database")
    ip.run_cell(f"%nbtrack store {tmp_path / 'notes.txt'}")
    out = capsys.readouterr()
    assert "UsageError" in out.out + out.err and "not an nbtrack store" in out.out + out.err
    assert session.tracker.store.path != tmp_path / "notes.txt"


def test_track_help_lists_every_option_the_parser_accepts(ip, capsys):
    from nbtrack.kernel.options import PARSER

    ip.run_cell("%%track?")
    page = capsys.readouterr().out   # the help as IPython pages it
    options = [opt for action in PARSER._actions for opt in action.option_strings]
    assert len(options) > 15 and all(opt in page for opt in options), page
    assert "--check [RUN]" in page and "compare with RUN" in page


def test_unloading_the_extension_leaves_cells_untracked_and_loading_it_again_tracks(ip, store_path):
    ip.run_cell("%unload_ext nbtrack")
    try:
        assert session.tracker is None
        result = ip.run_cell("%%track after_unload\nx = 1")
        assert not result.success   # the magic is gone with the extension: IPython says so, nothing is recorded
        assert nbtrack.runs(store=store_path).empty
    finally:
        ip.run_cell("%load_ext nbtrack")
        session.reset(store=nbtrack.connect(store_path))
    assert ip.run_cell("%%track reloaded\ny = 2").success
    assert nbtrack.runs(store=store_path)["name"].tolist() == ["reloaded"]
