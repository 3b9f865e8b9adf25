"""The big stores of benchmarks/scale.py are made in bulk (benchmarks/bulk.py); here, a small one made that
way is compared row by row with the same runs recorded through nbtrack's own path (script runs, spool,
import), so that a figure measured on a bulk store holds for a real one."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import nbtrack
from nbtrack.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bulk  # noqa: E402

# every table's rows that nbtrack writes for a run, by run name; the spool's bookkeeping left out
TABLES = {
    "runs": "SELECT name, experiment, status, kind, tags, recorded_tags, label, note, starred, deleted_at FROM runs",
    "params": "SELECT r.name, p.key, p.kind, p.vtype, p.value_json, p.value_num, p.value_text FROM params p JOIN runs r USING (run_id)",
    "values": 'SELECT r.name, v.* EXCLUDE (run_id) FROM "values" v JOIN runs r USING (run_id)',
    "metrics": "SELECT r.name, m.key, m.value, m.step, m.source FROM metrics m JOIN runs r USING (run_id)",
    "metric_history": "SELECT r.name, h.key, h.step, h.value FROM metric_history h JOIN runs r USING (run_id)",
    "metric_curves": "SELECT r.name, c.key, c.step, c.value FROM metric_curves c JOIN runs r USING (run_id)",
    # metrics and params in key order (store/keyorder.py): their rows carry their run's start, not its id
    "metrics_by_key": "SELECT r.name, k.key, k.value FROM metrics_by_key k JOIN runs r ON k.started_us = epoch_us(r.started_at)",
    "params_by_key": "SELECT r.name, k.* EXCLUDE (started_us) FROM params_by_key k "
                     "JOIN runs r ON k.started_us = epoch_us(r.started_at)",
}


def _rows(path: Path) -> dict[str, list[tuple]]:
    with Store(path).connect(read_only=True) as con:   # as nbtrack opens it: one configuration per file
        for table in TABLES:   # every row says where its run is (store/locality.py)
            if table not in ("runs", "metrics_by_key", "params_by_key"):
                assert con.execute(f'SELECT count(*) FROM "{table}" t JOIN runs r USING (run_id) '
                                   "WHERE t.started_us IS DISTINCT FROM epoch_us(r.started_at)").fetchone()[0] == 0, table
        return {t: sorted(con.execute(q).fetchall(), key=repr) for t, q in TABLES.items()}


@pytest.mark.parametrize("mixed", [False, True], ids=["uniform", "mixed"])
def test_bulk_store_equals_the_import_path(tmp_path: Path, mixed: bool) -> None:
    n, plan = 12, [(2, 2500), (3, 40)]   # 2,500 steps: more points than one spool chunk and than a stored curve
    store = nbtrack.connect(tmp_path / "real.duckdb")
    steps = [s for count, s in plan for _ in range(count)] + [0] * (n - sum(c for c, _ in plan))
    for i in range(n):
        with nbtrack.run(f"run{i}", params=bulk.params(i, mixed), experiment=f"exp{i % 10}", store=store) as run:
            run.log(step=0, **bulk.metrics(i))
            for step in range(steps[i]):
                run.log(step=step, **bulk.curve(i, step))
    store.sync()
    bulk.build(tmp_path / "bulk.duckdb", n, plan, mixed=mixed)
    real, made = _rows(tmp_path / "real.duckdb"), _rows(tmp_path / "bulk.duckdb")
    for table in TABLES:
        assert made[table] == real[table], table
    assert len(real["metric_history"]) == n * bulk.N_METRICS + 2 * sum(steps)
