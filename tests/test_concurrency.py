"""Several real processes write one store at once: nothing is lost, readers see finished runs."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import nbtrack


def test_four_processes_two_hundred_runs_each_and_a_reader(tmp_path, store_path):
    writer = textwrap.dedent(f"""
        import sys, nbtrack
        w = int(sys.argv[1])
        for i in range(200):
            with nbtrack.run(f"w{{w}}", params={{"writer": w, "i": i}}, store={str(store_path)!r}) as r:
                r.log(loss=1.0 / (i + 1))
    """)
    reader = textwrap.dedent(f"""
        import time, nbtrack
        counts, deadline = [], time.monotonic() + 240
        while (not counts or counts[-1] < 800) and time.monotonic() < deadline:
            counts.append(len(nbtrack.runs(store={str(store_path)!r})))
            time.sleep(0.05)
        print(*counts)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(w)], cwd=tmp_path, stderr=subprocess.PIPE,
                              text=True) for w in range(4)]
    read = subprocess.Popen([sys.executable, "-c", reader], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    out, err = read.communicate(timeout=300)
    assert read.returncode == 0, err
    frame = nbtrack.runs(store=store_path)
    assert len(frame) == 800 and frame["run_id"].is_unique
    assert (frame["status"] == "finished").all()
    assert sorted(frame.groupby("params.writer")["params.i"].nunique().tolist()) == [200] * 4
    counts = [int(c) for c in out.split()]   # what the reader saw while the writers wrote, in order
    assert counts[-1] == 800 and counts == sorted(counts), counts   # every run arrives, none vanishes
    from nbtrack.store import Store
    with Store(store_path).connect() as con:
        assert con.execute("SELECT count(*) FROM metric_history").fetchall() == [(800,)]
