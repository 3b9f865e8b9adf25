"""The capture contract (DESIGN.md "Capture semantics"), one behaviour per test, in a real shell."""
from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import polars as pl
import pytest

import nbtrack
from nbtrack.errors import NoActiveRunError


def test_literal_params_including_constant_arithmetic_and_containers(ip):
    ip.run_cell("%%track\nlr = 1e-3\nbatch = 2**10\nneg = -1\nlayers = [64, 32]\n"
                "cfg = {'a': 1, 'b': [True, None]}\nname = 'rf'\nflag = False\nnothing = None\n"
                "computed = len(layers)")
    run = nbtrack.last()
    assert run.params == {"lr": 1e-3, "batch": 1024, "neg": -1, "layers": [64, 32],
                          "cfg": {"a": 1, "b": [True, None]}, "name": "rf", "flag": False, "nothing": None}
    assert set(run.param_kinds.values()) == {"literal"}
    assert run.metrics == {"computed": 2.0}


def test_a_literal_that_is_updated_later_is_a_metric_not_a_param(ip):
    ip.run_cell("%%track\nbest = 0.0\nfor acc in [0.2, 0.7, 0.5]:\n    best = max(best, acc)")
    run = nbtrack.last()
    assert "best" not in run.params and run.metrics == {"best": 0.7}
    assert "acc" not in run.metrics  # loop counters are not metrics


def test_scalar_inputs_are_params_and_other_inputs_are_fingerprinted(ip):
    ip.user_ns.update(dataset="digits", seed=7, X=np.arange(12.0).reshape(3, 4),
                      df=pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), pf=pl.DataFrame({"a": [1, 2]}))
    ip.run_cell("%%track\nn = X.shape[0] + len(df) + pf.height + seed\ntag = dataset.upper()")
    run = nbtrack.last()
    assert run.params == {"dataset": "digits", "seed": 7}
    assert run.param_kinds == {"dataset": "input", "seed": "input"}
    assert run.inputs["X"]["type"] == "numpy.ndarray" and run.inputs["X"]["shape"] == (3, 4)
    assert run.inputs["X"]["dtype"] == "float64" and len(run.inputs["X"]["hash"]) == 32
    assert run.inputs["df"]["shape"] == (2, 2) and run.inputs["df"]["summary"]["columns"] == ["a", "b"]
    assert run.inputs["pf"]["type"].startswith("polars.") and run.inputs["pf"]["hash"]
    assert run.metrics == {"n": 14.0} and run.values == {"tag": "DIGITS"}


def test_fingerprint_changes_with_content_and_matches_for_equal_data(ip):
    ip.user_ns["X"] = np.arange(1000.0)
    ip.run_cell("%%track\nm = float(X.mean())")
    h1 = nbtrack.last().inputs["X"]["hash"]
    ip.user_ns["X"] = np.arange(1000.0)
    ip.run_cell("%%track\nm = float(X.mean())")
    assert nbtrack.last().inputs["X"]["hash"] == h1
    ip.user_ns["X"][500] = -1
    ip.run_cell("%%track\nm = float(X.mean())")
    assert nbtrack.last().inputs["X"]["hash"] != h1


def test_outputs_new_rebound_removed(ip):
    ip.user_ns.update(old=[1, 2], gone=np.zeros(3), np=np)
    ip.run_cell("%%track\nold = old + [3]\narr = np.ones((2, 2))\ndel gone", )
    run = nbtrack.last()
    assert run.outputs["old"]["change"] == "rebound" and run.outputs["old"]["shape"] == (3,)
    assert run.outputs["arr"]["change"] == "new" and run.outputs["arr"]["shape"] == (2, 2)
    assert run.outputs["gone"]["change"] == "removed"
    assert "gone" not in ip.user_ns


def test_log_curves_with_auto_and_explicit_steps(ip):
    ip.user_ns["np"] = np
    ip.run_cell("%%track\nimport nbtrack\nfor i in range(3):\n    nbtrack.log(loss=1.0 / (i + 1), acc=i / 10)\n"
                "nbtrack.log(step=10, loss=0.1)\nnbtrack.log(loss=np.float32(0.05))")
    run = nbtrack.last()
    h = run.history("loss")
    assert h["step"].tolist() == [0, 1, 2, 10, 11]
    assert h["value"].tolist() == pytest.approx([1.0, 0.5, 1 / 3, 0.1, 0.05])
    assert run.history()["key"].unique().tolist() == ["acc", "loss"]
    assert run.metrics["loss"] == pytest.approx(0.05) and run.metrics["acc"] == pytest.approx(0.2)


def test_log_outside_a_run_and_with_a_non_number(ip, capsys):
    with pytest.raises(NoActiveRunError, match="outside a tracked run"):
        nbtrack.log(loss=1.0)
    ip.run_cell("%%track\nimport nbtrack\nnbtrack.log(loss='high')")
    out = capsys.readouterr()
    assert "loss='high' is not a number" in out.out + out.err
    assert nbtrack.last().status == "failed"


def test_displays_and_streams_are_recorded_and_capped(ip):
    ip.run_cell("%%track\nfrom IPython.display import display, HTML\nprint('to stdout')\n"
                "import sys; print('to stderr', file=sys.stderr)\n"
                "display({'text/html': '<b>bold</b>', 'text/plain': 'bold'}, raw=True)\n"
                "print('x' * 70_000)\n41 + 1")
    run = nbtrack.last()
    kinds = {(d["kind"], d["mime"]) for d in run.displays}
    assert {("display", "text/html"), ("result", "text/plain"), ("stdout", "text/plain"),
            ("stderr", "text/plain")} <= kinds
    stdout = next(d for d in run.displays if d["kind"] == "stdout")
    assert stdout["data"].startswith(b"to stdout") and stdout["truncated"]
    assert len(stdout["data"]) < 70_000 and b"characters not recorded" in stdout["data"]
    assert next(d for d in run.displays if d["kind"] == "result")["data"] == b"42"


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


def test_an_image_is_stored_as_the_image_whether_shown_as_bytes_or_as_a_kernels_base64(ip, store_path):
    """A kernel's display message carries images as base64 text; a plain shell as bytes. Both are
    stored as the image, and a store written before that (base64 text) is repaired when it opens."""
    import base64

    ip.user_ns.update(png=PNG, b64=base64.encodebytes(PNG).decode())
    ip.run_cell("%%track\nfrom IPython.display import display\n"
                "display({'image/png': png, 'text/plain': 'bytes'}, raw=True)\n"
                "display({'image/png': b64, 'text/plain': 'text'}, raw=True)")
    run = nbtrack.last()
    images = [d for d in run.displays if d["mime"] == "image/png"]
    assert [d["data"] for d in images] == [PNG, PNG] and [d["size"] for d in images] == [len(PNG)] * 2

    from nbtrack.store import Store
    import hashlib
    old = base64.encodebytes(PNG)   # what nbtrack before 0007 kept for a kernel's image
    with Store(store_path).connect() as con:
        con.execute("INSERT INTO artifacts VALUES (?, ?, ?)", [hashlib.sha256(old).hexdigest(), len(old), old])
        con.execute("UPDATE displays SET artifact = ?, size = ? WHERE mime = 'image/png' AND seq = 1",
                    [hashlib.sha256(old).hexdigest(), len(old)])
        con.execute("DELETE FROM schema_migrations WHERE name = '0007_binary_displays'")
    with Store(store_path).connect() as con:
        assert con.execute("SELECT count(*) FROM schema_migrations WHERE name = '0007_binary_displays'").fetchone()[0] == 1
    images = [d for d in nbtrack.get(run.run_id).displays if d["mime"] == "image/png"]
    assert [d["data"] for d in images] == [PNG, PNG] and [d["size"] for d in images] == [len(PNG)] * 2


def test_failed_run_records_error_and_traceback_without_nbtrack_frames(ip, capsys):
    ip.run_cell("%%track\nx = 1\ndef f():\n    raise ValueError('boom')\nf()")
    out = capsys.readouterr().out
    assert out.count("ValueError") >= 1 and "nbtrack" not in out.split("ValueError")[0]
    assert "----> 5 f()" in out  # the cell's own line numbers, the %%track line counted
    run = nbtrack.last()
    assert run.status == "failed" and run.error["type"] == "ValueError" and run.error["message"] == "boom"
    assert "raise ValueError('boom')" in run.error["traceback"]
    assert "nbtrack" not in run.error["traceback"] and "IPython" not in run.error["traceback"]
    assert ip.user_ns["x"] == 1


def test_syntax_error_and_keyboard_interrupt(ip):
    ip.run_cell("%%track\nx = (")
    assert nbtrack.last().status == "failed" and nbtrack.last().error["type"] == "SyntaxError"
    ip.run_cell("%%track\nraise KeyboardInterrupt")
    assert nbtrack.last().status == "interrupted"


def test_source_is_exact_and_environment_is_recorded(ip, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                    "--allow-empty", "-m", "init"], check=True)
    from nbtrack.recorder import environment
    environment._git.clear()
    cell = "import numpy as np\n# a comment stays\nv = float(np.pi)  \n"
    ip.run_cell("%%track\n" + cell)
    run = nbtrack.last()
    assert run.source == cell
    assert run.env["packages"]["numpy"] == np.__version__
    assert run.env["python"] and run.env["platform"] and run.env["host"]
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert run.env["git_commit"] == head and run.env["git_branch"] and run.env["git_dirty"] is False
    assert run.env["session_id"] and run.info["execution_count"]
    assert run.duration_s >= 0 and run.info["cpu_s"] >= 0 and run.info["peak_rss_mb"] > 0


def test_notebook_path_and_default_experiment_from_the_front_end(ip, tmp_path):
    ip.user_ns["__session__"] = str(tmp_path / "my_analysis.ipynb")
    ip.run_cell("%%track\nv = 1")
    run = nbtrack.last()
    assert run.experiment == "my_analysis" and run.env["notebook"].endswith("my_analysis.ipynb")


def test_script_runs_record_status_source_and_params(tmp_path, store_path):

    script = tmp_path / "train.py"
    script.write_text(
        "import nbtrack\n"
        f"with nbtrack.run('train', params={{'lr': 0.1}}, tags=['cli'], store={str(store_path)!r}) as run:\n"
        "    for i in range(5):\n"
        "        run.log(loss=1 / (i + 1))\n"
        f"with nbtrack.run('broken', store={str(store_path)!r}):\n"
        "    raise RuntimeError('nope')\n")
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert "RuntimeError: nope" in proc.stderr
    frame = nbtrack.runs(store=store_path)
    assert frame["name"].tolist() == ["train", "broken"]
    assert frame["status"].tolist() == ["finished", "failed"]
    train = nbtrack.get(frame.run_id[0], store=store_path)
    assert train.params == {"lr": 0.1} and train.metrics == {"loss": 0.2} and train.experiment == "train"
    assert train.source == script.read_text() and train.info["source_path"] == str(script)
    assert len(train.history("loss")) == 5


def test_the_environment_is_recorded_while_another_thread_imports(monkeypatch):
    """A run's environment record asks sys.modules which module came last; another thread importing at
    that moment makes the dict's iterator raise (seen: `with nbtrack.run(...)` failed with "dictionary
    changed size during iteration"). The record is made all the same."""
    import json
    import sys
    import types

    from nbtrack.recorder import environment

    class Importing(dict):   # sys.modules as another thread changes it under the first iterator
        asked = 0

        def __reversed__(self):
            Importing.asked += 1
            if Importing.asked == 1:
                raise RuntimeError("dictionary changed size during iteration")
            return super().__reversed__()

    monkeypatch.setattr(environment, "sys", types.SimpleNamespace(modules=Importing(sys.modules)))
    monkeypatch.setattr(environment, "_env_cache", None)
    env = environment.environment()
    assert Importing.asked == 2 and env["env_id"] and isinstance(json.loads(env["packages"]), dict)
