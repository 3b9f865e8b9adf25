"""Sweeps from the magic: --grid, --repeat, --seed, failures, --fail-fast, interrupts, last_sweep()."""
from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

import nbtrack
from nbtrack.cli import main
from nbtrack.kernel.options import parse_grid
from nbtrack.errors import ParamValueError

from test_kernel import _kernel

CELL = """%%track fit {opts}
lr = 0.1
model = 'rf'
seed = 0
if lr > 1:
    raise ValueError(f'lr={{lr}} diverged')
acc = round(1 - lr / 10 + seed / 1000, 6)
print('trained', model, lr)
"""


@pytest.fixture
def sweep_ip(ip):
    ip.run_cell("import nbtrack")
    return ip


def test_grid_runs_every_combination_with_one_sweep_id(sweep_ip, capfd, store_path):
    sweep_ip.run_cell(CELL.format(opts="--grid lr=1e-3,1e-2,1e-1 --grid model='rf','gb'"))
    out = capfd.readouterr().out
    runs = nbtrack.last_sweep()
    assert len(runs) == 6 and runs["status"].eq("finished").all()
    assert runs["sweep_id"].nunique() == 1 and runs["sweep_id"].notna().all()
    assert sorted(zip(runs["params.lr"], runs["params.model"])) == sorted(
        (lr, m) for lr in (1e-3, 1e-2, 1e-1) for m in ("rf", "gb"))
    assert set(runs["metrics.acc"]) == {0.9999, 0.999, 0.99}
    # the runs' own output is collected, not shown; one summary line is
    assert "trained" not in out
    assert "nbtrack sweep: 6 of 6 runs (6 finished, 0 failed) in " in out
    assert "best acc=0.9999 with lr=0.001, model='rf'" in out
    # each run still recorded its own output
    run = nbtrack.get(runs["run_id"].iloc[0])
    assert any("trained rf 0.001" in d["data"].decode() for d in run.displays if d["kind"] == "stdout")
    # the namespace holds the last combination's variables
    assert sweep_ip.user_ns["lr"] == 0.1 and sweep_ip.user_ns["model"] == "gb"
    # the sweep id shows in the CLI
    out = CliRunner().invoke(main, ["runs", "--store", str(store_path)])
    assert runs["sweep_id"].iloc[0][:8] in out.output


def test_range_logspace_repeat_and_seed(sweep_ip):
    sweep_ip.run_cell(CELL.format(opts="--grid lr=logspace(-3,-1,3) --repeat 2 --seed seed"))
    runs = nbtrack.last_sweep()
    assert len(runs) == 6
    assert sorted(set(runs["params.lr"])) == pytest.approx([1e-3, 1e-2, 1e-1])
    assert sorted(runs["params.seed"]) == [0, 0, 0, 1, 1, 1]      # each repeat its own seed, recorded
    kinds = nbtrack.get(runs["run_id"].iloc[0]).param_kinds
    assert kinds["lr"] == "override" and kinds["seed"] == "override"
    groups = [nbtrack.get(i).info["repeat_group"] for i in runs["run_id"]]
    assert len(set(groups)) == 3                                   # one repeat group per combination
    key, values = parse_grid("n=range(2, 8, 2)")
    assert key == "n" and list(values) == [2, 4, 6]


def test_a_failing_combination_is_recorded_and_the_sweep_goes_on(sweep_ip, capfd):
    sweep_ip.run_cell(CELL.format(opts="--grid lr=0.5,2,0.1"))
    out = capfd.readouterr().out
    runs = nbtrack.last_sweep()
    assert list(runs["status"]) == ["finished", "failed", "finished"]
    assert "nbtrack sweep: 3 of 3 runs (2 finished, 1 failed)" in out
    assert "failed: lr=2: ValueError: lr=2 diverged" in out
    sweep_ip.run_cell(CELL.format(opts="--grid lr=0.5,2,0.1 --fail-fast"))
    out = capfd.readouterr().out
    assert list(nbtrack.last_sweep()["status"]) == ["finished", "failed"]
    assert "stopped at the first failure (--fail-fast) after run 2" in out


def test_bad_grid_options_name_the_problem(sweep_ip):
    result = sweep_ip.run_cell(CELL.format(opts="--grid lrr=1,2"))
    assert "--grid lrr: the cell has no literal assignment `lrr = ...` to override (did you mean lr?)" in \
        str(result.error_in_exec)
    with pytest.raises(ParamValueError, match="logspace"):
        parse_grid("lr=logspace(1, 2)")
    with pytest.raises(ParamValueError, match="expected KEY=V1,V2"):
        parse_grid("lr=")
    result = sweep_ip.run_cell(CELL.format(opts="--grid lr=1,2 -p lr=3"))
    assert "given twice" in str(result.error_in_exec)
    assert nbtrack.runs().empty


def test_last_sweep_before_any_sweep(sweep_ip, monkeypatch):
    from nbtrack.recorder.session import session

    monkeypatch.setattr(session, "last_sweep_id", None)
    with pytest.raises(nbtrack.NbtrackError, match="no sweep has run"):
        nbtrack.last_sweep()


@pytest.mark.slow
def test_interrupting_a_sweep_in_a_real_kernel(tmp_path):
    km, kc = _kernel(tmp_path)
    try:
        kc.execute_interactive("import time", timeout=60)
        msg_id = kc.execute("%%track slow --grid step=range(20)\nstep = 0\nopen('ticks', 'a').write('x')\n"
                            "time.sleep(0.4)\ndone = step * 1.0\n")
        deadline = time.time() + 60
        ticks = tmp_path / "ticks"
        while (not ticks.exists() or len(ticks.read_text()) < 4) and time.time() < deadline:   # a few runs in
            time.sleep(0.02)
        time.sleep(0.1)
        km.interrupt_kernel()
        outputs = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id:
                outputs.append(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
        text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
        assert "; interrupted after run" in text, text
        printed = []
        kc.execute_interactive("import nbtrack\ns = nbtrack.last_sweep()\nprint(list(s.status))",
                               output_hook=printed.append, timeout=60)
        statuses = eval("".join(m["content"].get("text", "") for m in printed if m["msg_type"] == "stream"))
        assert 1 <= statuses.count("finished") < 20
        assert statuses[-1] == "interrupted" and statuses.count("interrupted") == 1
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_sweep_progress_counts_runs_and_shows_the_best_metric_then_clears(sweep_ip, capfd, monkeypatch):
    # outside a notebook tqdm draws one line on stderr, rewritten in place (at most every 0.1 s: the
    # runs sleep past that); the summary line stays. tqdm.auto picks its kind once per process, by how
    # the first importer's shell was configured: other tests make this shell look like a kernel's
    import tqdm.auto
    import tqdm.std

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.std.tqdm)
    sweep_ip.run_cell(CELL.format(opts="--grid lr=1e-3,5,1e-1").replace("lr = 0.1\n", "lr = 0.1\nimport time; time.sleep(0.15)\n"))
    captured = capfd.readouterr()
    frames = captured.err.split("\r")
    assert any("sweep:" in f and "3/3" in f for f in frames), captured.err
    assert any("1 failed" in f and "best acc=0.9999" in f for f in frames), captured.err
    assert frames[-1].strip() == ""          # cleared when the sweep ended (leave=False)
    assert "2 finished" in captured.out and "1 failed" in captured.out
