"""The writer's side of holdout evaluation: one pending test per split seed, recorded once.

Contract (see `storage.store.Store`): only the single writer calls it, inside
its open transaction. A test (test id) moves pending -> done/failed once;
planning the same job id twice returns the first plan.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from genejobs.contract import (
    TEST_DONE,
    TEST_FAILED,
    PlanEvaluate,
)
from genejobs.errors import InputError, NotFoundError
from genejobs.storage import queries
from genejobs.storage.db import first, insert_frame
from genejobs.storage.seeds import SEED_LIMIT, check_job_size

RESULT_OPS = {TEST_DONE, TEST_FAILED}
PENDING, DONE, FAILED = "pending", "done", "failed"


class EvaluationStore:
    """Plans evaluations of searched models and records their holdout tests."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def plan_evaluate(self, request: PlanEvaluate) -> dict:
        """Create an evaluation job: one pending test per split seed (new ones unless given)."""
        job_id, model_id, dataset_name = request.job_id, request.model_id, request.dataset
        split_seeds, runs, hyper_seed = request.split_seeds, request.runs, request.hyper_seed
        if first(self.con.execute("SELECT 1 FROM jobs WHERE job_id = ?", [job_id]).fetchall()):
            return self._evaluate_plan(job_id)
        found = first(
            self.con.execute(
                "SELECT m.dataset_id, d.name, m.estimator, m.session_id, m.split, m.status "
                "FROM model_runs m JOIN datasets d USING (dataset_id) WHERE model_id = ?",
                [model_id],
            ).fetchall()
        )
        if found is None:
            raise NotFoundError(f"unknown model '{model_id}'; see `genejobs models list`")
        dataset_id, name, estimator, session_id, split, status = found
        if dataset_name is not None:
            asked = queries.dataset(self.con, dataset_name)
            if asked["dataset_id"] != dataset_id:
                raise InputError(
                    f"model {model_id} was searched on dataset '{name}', not '{asked['name']}'"
                )
        if estimator is None:
            raise InputError(
                f"model {model_id} has no estimator recorded yet (search {status}); "
                "wait for its search to finish"
            )
        hyper = session_id if hyper_seed is None else hyper_seed
        if not 0 <= hyper <= SEED_LIMIT:
            raise InputError(f"--hyper-seed must be between 0 and {SEED_LIMIT}, got {hyper}")
        if split_seeds:
            bad = [s for s in split_seeds if not 0 <= s <= SEED_LIMIT]
            if bad:
                raise InputError(f"split seeds must be between 0 and {SEED_LIMIT}: {bad[:5]}")
            done = self.con.execute(
                "SELECT test_id, split_seed FROM test_results WHERE model_id = ? AND "
                f"hyper_seed = ? AND split_seed IN ({', '.join('?' * len(split_seeds))})",
                [model_id, hyper, *split_seeds],
            ).fetchall()
            if done:
                raise InputError(
                    f"model {model_id} was already evaluated with split seed {done[0][1]} and "
                    f"hyper seed {hyper} (test {done[0][0]}); the result would be the same"
                )
            seeds = list(split_seeds)
        else:
            if runs < 1:
                raise InputError(f"--split-seeds must be at least 1, got {runs}")
            check_job_size(runs, option="--split-seeds")
            used = {
                r[0]
                for r in self.con.execute(
                    "SELECT split_seed FROM test_results WHERE model_id = ?", [model_id]
                ).fetchall()
            }
            rng = np.random.default_rng()
            seeds: list[int] = []
            while len(seeds) < runs:
                seed = int(rng.integers(1, SEED_LIMIT, endpoint=True))
                if seed not in used:
                    used.add(seed)
                    seeds.append(seed)
        test_size = round(1 - split, 12)
        params = {"model_id": model_id, "hyper_seed": hyper, "split_seeds": seeds}
        self.con.execute(
            "INSERT INTO jobs (job_id, kind, dataset_id, model, params, n_runs) "
            "VALUES (?, 'evaluate', ?, ?, ?, ?)",
            [job_id, dataset_id, model_id, json.dumps(params), len(seeds)],
        )
        tests = pd.DataFrame(
            {
                "test_id": [f"{job_id}-{i + 1}" for i in range(len(seeds))],
                "split_seed": np.asarray(seeds, dtype=np.int64),
            }
        )
        insert_frame(
            self.con,
            "tests",
            tests,
            "INSERT INTO test_results (test_id, model_id, job_id, dataset_id, split_seed, "
            "hyper_seed, test_size, status) SELECT test_id, ?, ?, ?, split_seed, ?, ?, ? "
            "FROM tests",
            [model_id, job_id, dataset_id, hyper, test_size, PENDING],
        )
        return self._evaluate_plan(job_id)

    def _evaluate_plan(self, job_id: str) -> dict:
        rows = self.con.execute(
            "SELECT t.test_id, t.split_seed, t.hyper_seed, t.test_size, t.model_id, "
            "m.estimator, m.params, d.path, d.name FROM test_results t "
            "JOIN model_runs m USING (model_id) JOIN datasets d ON d.dataset_id = t.dataset_id "
            "WHERE t.job_id = ? ORDER BY t.test_id",
            [job_id],
        ).fetchall()
        if not rows:
            raise InputError(f"job '{job_id}' exists and is not an evaluation")
        return {
            "job_id": job_id,
            "model_id": rows[0][4],
            "estimator": rows[0][5],
            "params": rows[0][6],
            "dataset_path": rows[0][7],
            "dataset": rows[0][8],
            "test_size": rows[0][3],
            "tests": [
                {"test_id": r[0], "split_seed": int(r[1]), "hyper_seed": int(r[2])} for r in rows
            ],
        }

    def record(self, messages: list[dict]) -> set[str]:
        """Apply a batch of test results; return the jobs they touched."""
        done = [m for m in messages if m["op"] == TEST_DONE]
        failed = [m for m in messages if m["op"] == TEST_FAILED]
        return self._record_tests(done, failed)

    def _record_tests(self, done: list[dict], failed: list[dict]) -> set[str]:
        touched: set[str] = set()
        if done:
            rows = pd.DataFrame(
                [
                    {
                        **{k: m[k] for k in ("test_id", "job_id", "worker")},
                        **{k: m["result"][k] for k in ("accuracy", "precision", "recall", "f1")},
                        "roc_auc": m["result"]["roc_auc"],
                        "confusion": m["result"]["confusion"],
                        "n_train": m["result"]["n_train"],
                        "n_test": m["result"]["n_test"],
                        "fit_seconds": m["result"]["fit_seconds"],
                    }
                    for m in done
                ]
            ).drop_duplicates("test_id")
            rows["roc_auc"] = rows["roc_auc"].astype(float)
            insert_frame(
                self.con,
                "test_rows",
                rows,
                f"""UPDATE test_results SET status = '{DONE}', accuracy = r.accuracy,
                        precision = r.precision, recall = r.recall, f1 = r.f1,
                        roc_auc = r.roc_auc, confusion = r.confusion::INTEGER[][],
                        n_train = r.n_train, n_test = r.n_test, fit_seconds = r.fit_seconds,
                        worker = r.worker, error = NULL, finished_at = now()
                    FROM test_rows r
                    WHERE test_results.test_id = r.test_id
                      AND test_results.status = '{PENDING}'""",
                [],
            )
            touched |= set(rows["job_id"])
        if failed:
            rows = pd.DataFrame(
                [{k: m[k] for k in ("test_id", "job_id", "error", "worker")} for m in failed]
            ).drop_duplicates("test_id")
            insert_frame(
                self.con,
                "test_rows",
                rows,
                f"""UPDATE test_results SET status = '{FAILED}', error = r.error,
                        worker = r.worker, finished_at = now()
                    FROM test_rows r
                    WHERE test_results.test_id = r.test_id
                      AND test_results.status = '{PENDING}'""",
                [],
            )
            touched |= set(rows["job_id"])
        return touched
