"""Several real processes write one store at once: nothing is lost, readers see finished runs."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

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


def test_forked_children_record_and_read_runs_as_their_parent_does(tmp_path):
    """A process keeps one DuckDB instance that its writable opens attach the store to (store/attached.py);
    a forked child (a data loader's worker) must not inherit it: each child opens the store on its own,
    once forked while the parent's instance is idle, once while another thread of the parent has the
    store open (the fork waits for that thread to close it). The parent goes on using the store."""
    script = textwrap.dedent("""
        import multiprocessing, sys, threading, time, nbtrack
        from nbtrack.store import Store, attached
        path = sys.argv[1]

        def child(name):
            with nbtrack.run(name, store=path) as r:
                r.log(loss=0.5)
            assert nbtrack.get(r.run_id, store=path).history()["value"].tolist() == [0.5]

        def fork(name):
            p = multiprocessing.get_context("fork").Process(target=child, args=(name,))
            p.start()
            return p

        with nbtrack.run("parent", store=path) as r:
            r.log(loss=1.0)
        nbtrack.get(r.run_id, store=path)
        assert attached._dbs   # the parent's instance, idle
        idle = fork("idle")
        idle.join(60)
        opened, leaving = threading.Event(), []

        def holder():
            with Store(path).connect() as con:
                opened.set()
                time.sleep(1.0)
                leaving.append(time.monotonic())
        t = threading.Thread(target=holder)
        t.start()
        opened.wait(60)
        busy = fork("busy")
        forked = time.monotonic()   # after the holder let go of the store: the fork waited for it
        busy.join(60)
        t.join(60)
        print(idle.exitcode, busy.exitcode, forked > leaving[0], sorted(nbtrack.runs(store=path)["name"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "runs.duckdb")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "0 0 True ['busy', 'idle', 'parent']", proc.stdout + proc.stderr


def test_a_failed_operation_leaves_the_store_free_for_other_processes(tmp_path):
    """An open that fails inside a transaction still closes the file (store/attached.py detaches it), so
    another process can open it at once, and this one can open it again."""
    import duckdb
    import pytest

    from nbtrack.store import Store

    path = tmp_path / "runs.duckdb"
    with nbtrack.run("a", store=path):
        pass
    with pytest.raises(duckdb.CatalogException):
        with Store(path).connect() as con:
            con.execute("BEGIN")
            con.execute("SELECT * FROM no_such_table")
    other = subprocess.run([sys.executable, "-c", f"import duckdb; print(duckdb.connect({str(path)!r}, read_only=True)"
                            ".execute('SELECT count(*) FROM runs').fetchall()[0][0])"],
                           capture_output=True, text=True, timeout=60)
    assert other.stdout.strip() == "1", other.stderr
    assert len(nbtrack.runs(store=path)) == 1


def test_a_big_query_spills_beside_the_store_not_into_the_working_directory(tmp_path, monkeypatch):
    """DuckDB spills what does not fit in memory into its instance's temporary folder: ``.tmp`` in the
    working directory for an in-memory instance (a notebook's folder), so each store's kept instance
    (store/attached.py) spills to ``<store>.tmp``, as DuckDB does for a file it opens itself."""
    from nbtrack.store import Store

    work = tmp_path / "notebooks"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("a.duckdb", "b.duckdb"):   # two stores in one process: each its own folder
        path = tmp_path / name
        with Store(path).connect() as con:
            folder = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        assert folder == f"{path}.tmp"
    assert not (work / ".tmp").exists()


def test_a_process_that_opens_store_after_store_keeps_a_few_duckdb_instances(tmp_path):
    """Writable opens attach a store to a DuckDB instance kept for the process (store/attached.py), about
    3 MB and a thread each: a script that opens store after store keeps only the few it used last among
    those no open holds, and a store whose instance was closed opens again. One held open stays open."""
    from nbtrack.store import Store, attached

    paths = [tmp_path / f"s{i}.duckdb" for i in range(attached.KEEP + 4)]
    for i, path in enumerate(paths):
        with nbtrack.run(f"r{i}", store=path):
            pass
        assert list(nbtrack.runs(store=path)["name"]) == [f"r{i}"]
    with Store(paths[0]).connect() as held:   # in use: not closed, whatever the other stores do
        for i, path in enumerate(paths[1:], 1):   # the first ones' instances were closed, and are made again
            assert list(nbtrack.runs(store=path)["name"]) == [f"r{i}"]
        assert held.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]
    deadline = time.monotonic() + 20   # (a background import may still hold one)
    while len(attached._dbs) > attached.KEEP and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(attached._dbs) <= attached.KEEP
