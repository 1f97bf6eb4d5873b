"""The writer's SHAP ingest on a real DuckDB file: finished shards wait, then go in together.

Shard results are driven by hand here (the stack's tests run whole jobs), so
the order of arrival is fixed: which shard waits, which batch is ingested,
and what a repeated or failed copy does.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from genejobs.contract import PlanShap
from genejobs.storage.shap_store import DONE_OP, FAILED_OP, ShapStore
from genejobs.storage.store import Store, create_schema

JOB = "shap-ingest"
FEATURES = ["a", "b", "c"]
SHARD_ROWS = 4
N_ROWS = 10  # shards of 4, 4 and 2 rows


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GENEJOBS_HOME", str(tmp_path))
    con = duckdb.connect(str(tmp_path / "results.duckdb"))
    create_schema(con)
    # 24 values wait before they are ingested: two full shards (2 x 4 rows x 3 features).
    shap = ShapStore(con, ingest_values=24)
    shap.plan(
        PlanShap(
            job_id=JOB,
            source="table.parquet",
            input_path="shap/input.parquet",
            id_cols=["id"],
            partition_col=None,
            n_rows=N_ROWS,
            features=FEATURES,
            n_outputs=1,
            shard_rows=SHARD_ROWS,
            zero_is_present=False,
            engine="fast",
            models=[],
        )
    )
    yield con, shap, tmp_path
    con.close()


def spool_shard(home, shard: int) -> dict:
    """Write one shard's two spool files as a task would, and return its done message."""
    first = shard * SHARD_ROWS
    rows = np.arange(first, min(first + SHARD_ROWS, N_ROWS), dtype=np.int32)
    n, k = len(rows), len(FEATURES)
    folder = home / "spool" / "shap" / JOB
    folder.mkdir(parents=True, exist_ok=True)
    rows_path = f"spool/shap/{JOB}/{shard:06d}.rows.parquet"
    values_path = f"spool/shap/{JOB}/{shard:06d}.values.parquet"
    pd.DataFrame(
        {
            "row_id": rows,
            "class": np.int16(1),
            "row_key": [f"r{r}" for r in rows],
            "partition": None,
            "model_id": np.int16(0),
            "base_value": np.float32(0.5),
            "output": np.float32(1.0),
            "probability": np.float32(0.7),
            "additivity_error": np.float32(0),
            "top_feature": np.int16(0),
            "top_present": True,
        }
    ).to_parquet(home / rows_path)
    # Row-major, as a shard might come: the writer must sort it.
    value = np.where(np.arange(n * k) % 2 == 0, np.nan, 1.0).astype(np.float32)
    pd.DataFrame(
        {
            "row_id": np.repeat(rows, k),
            "class": np.int16(1),
            "model_id": np.int16(0),
            "feature_id": np.tile(np.arange(k, dtype=np.int16), n),
            "value": value,
            "present": ~np.isnan(value),
            "shap": np.arange(n * k, dtype=np.float32) / 100,
        }
    ).to_parquet(home / values_path)
    return {
        "op": DONE_OP,
        "job_id": JOB,
        "shard": shard,
        "rows_path": rows_path,
        "values_path": values_path,
        "n_rows": n,
        "engine": "fast",
        "additivity_failures": 0,
        "max_additivity_error": 0.0,
        "seconds": 0.1,
        "worker": "test",
    }


def apply(con, shap: ShapStore, *messages: dict) -> None:
    """One writer transaction over the messages, spool files removed after the commit."""
    con.execute("BEGIN")
    shap.record(list(messages))
    con.execute("COMMIT")
    shap.discard_spool()


def counts(con) -> dict:
    found = Store(con).job_counts({JOB}, "shap_shards")[JOB]
    return {k: v for k, v in found.items() if v}


def stored(con) -> int:
    return con.execute("SELECT count(*) FROM shap_values WHERE job_id = ?", [JOB]).fetchone()[0]


def test_finished_shards_wait_then_go_in_together_sorted(store):
    con, shap, home = store
    first = spool_shard(home, 0)
    apply(con, shap, first)
    assert counts(con) == {"pending": 2, "spooled": 1, "total": 3}
    assert stored(con) == 0 and (home / first["values_path"]).exists()

    second = spool_shard(home, 1)
    apply(con, shap, second)  # 24 values wait: both shards go in, in one transaction
    assert counts(con) == {"done": 2, "pending": 1, "total": 3}
    assert stored(con) == 2 * SHARD_ROWS * len(FEATURES)
    assert not (home / first["values_path"]).exists()
    assert not (home / second["rows_path"]).exists()
    order = con.execute(
        "SELECT feature_id, present, row_id FROM shap_values WHERE job_id = ? ORDER BY rowid",
        [JOB],
    ).fetchall()
    assert order == sorted(order, key=lambda r: (r[0], not r[1], r[2]))

    apply(con, shap, spool_shard(home, 2))  # the last shard goes in though few values wait
    assert counts(con) == {"done": 3, "total": 3}
    assert stored(con) == N_ROWS * len(FEATURES)
    rows = con.execute("SELECT row_id FROM shap_rows WHERE job_id = ? ORDER BY rowid", [JOB])
    assert [r[0] for r in rows.fetchall()] == list(range(N_ROWS))
    assert not list((home / "spool" / "shap" / JOB).glob("*.parquet"))


def test_repeats_and_failed_copies_change_nothing(store):
    con, shap, home = store
    waiting = spool_shard(home, 0)
    apply(con, shap, waiting)
    # A copy that failed elsewhere does not undo the copy that finished.
    failed = {"op": FAILED_OP, "job_id": JOB, "shard": 0, "error": "E", "worker": "w"}
    apply(con, shap, failed)
    assert counts(con) == {"pending": 2, "spooled": 1, "total": 3}

    apply(con, shap, spool_shard(home, 1), spool_shard(home, 2))
    assert counts(con) == {"done": 3, "total": 3}
    before = stored(con)
    repeat = spool_shard(home, 0)  # a redelivered task writes its files again
    apply(con, shap, repeat, repeat)
    assert stored(con) == before
    assert con.execute(
        "SELECT attempts FROM shap_shards WHERE job_id = ? AND shard = 0", [JOB]
    ).fetchone() == (4,)
    assert not (home / repeat["values_path"]).exists()
