"""The writer's side of model search: folds scored, models ranked once, the best saved.

Contract (see `storage.store.Store`): only the single writer calls it, inside
its open transaction, and every write is idempotent, keyed by what the task
did. A fold (job, model, fold) moves pending -> done/failed once; a search is
ranked once, when its last fold is recorded and its models are still
pending; a model's artifact is recorded once. Planning the same job id twice
returns the first plan.

Follow-up work (finalizing a search's best model) is not kept here: a best
model without an artifact is a pending unit, which `storage.units` finds and
the writer sends after the commit, and again after any crash.
"""

from __future__ import annotations

import json
import os

import duckdb
import numpy as np
import pandas as pd

from genejobs.candidates import CANDIDATES, METRIC_COLUMNS, choose, metric, train_class_counts
from genejobs.config import settings
from genejobs.contract import (
    FOLD_SCORED,
    MODEL_FINALIZE_FAILED,
    MODEL_FINALIZED,
    FinalizeModel,
    PlanSearch,
)
from genejobs.errors import InputError, NotFoundError
from genejobs.storage import queries
from genejobs.storage.artifacts import MODELS_DIR, sha256_of
from genejobs.storage.db import first, insert_frame
from genejobs.storage.leaderboard import leaderboard
from genejobs.storage.seeds import SEED_LIMIT

RESULT_OPS = {FOLD_SCORED, MODEL_FINALIZED, MODEL_FINALIZE_FAILED}
PENDING, DONE, FAILED = "pending", "done", "failed"


class SearchStore:
    """Plans searches and records their folds, rankings and saved models."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def plan_search(self, request: PlanSearch) -> dict:
        """Create a search job: one pending row per candidate and per (candidate, fold)."""
        job_id, dataset_name, folds = request.job_id, request.dataset, request.folds
        include, exclude, sort = request.include, request.exclude, request.sort
        session_id, train_size = request.session_id, request.train_size
        if first(self.con.execute("SELECT 1 FROM jobs WHERE job_id = ?", [job_id]).fetchall()):
            return self._search_plan(job_id)
        found = queries.dataset(self.con, dataset_name)
        try:
            models = choose(include, exclude)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        sort_metric = metric(sort)
        if sort_metric is None:
            raise InputError(
                f"unknown --sort metric '{sort}'; choose from "
                "Accuracy, AUC, Recall, Prec., F1, Kappa, MCC"
            )
        if not 0 < train_size < 1:
            raise InputError(f"--train-size must be between 0 and 1, got {train_size}")
        if folds < 2:
            raise InputError(f"--folds must be at least 2, got {folds}")
        if session_id is None:
            session_id = int(np.random.default_rng().integers(150, 9000))
        if not 0 <= session_id <= SEED_LIMIT:
            raise InputError(f"--session-id must be between 0 and {SEED_LIMIT}, got {session_id}")
        if min(found["class_counts"]) < 2:
            raise InputError("a class has a single sample; a stratified split needs 2 per class")
        # StratifiedKFold refuses more folds than the largest class has training
        # samples; fewer in a small class only leaves some validation folds
        # without it, which PyCaret accepts (its default 10 folds on the tissue
        # data give placenta 4 training samples).
        in_train = train_class_counts(found["class_counts"], train_size, session_id)
        if folds > max(in_train):
            klass = found["classes"][int(np.argmax(in_train))]
            raise InputError(
                f"--folds {folds} is more than the classes allow: even the largest class, "
                f"'{klass}', has {max(in_train)} samples in the training split "
                f"(train size {train_size})"
            )
        setup = {"session_id": session_id, "train_size": train_size, "folds": folds}
        params = {
            "dataset": found["name"],
            "models": models,
            "sort": sort_metric.display,
            **setup,
        }
        self.con.execute(
            "INSERT INTO jobs (job_id, kind, dataset_id, model, params, n_runs) "
            "VALUES (?, 'search', ?, NULL, ?, ?)",
            [job_id, found["dataset_id"], json.dumps(params), len(models) * folds],
        )
        planned = pd.DataFrame(
            {
                "model_id": [f"{job_id}-{m}" for m in models],
                "model": models,
                "name": [CANDIDATES[m].name for m in models],
                "position": np.arange(len(models), dtype=np.int32),
            }
        )
        insert_frame(
            self.con,
            "planned",
            planned,
            "INSERT INTO model_runs (model_id, job_id, dataset_id, model, name, position, status, "
            "split, setup, session_id, folds) SELECT model_id, ?, ?, model, name, position, ?, ?, "
            "?, ?, ? FROM planned",
            [
                job_id,
                found["dataset_id"],
                PENDING,
                train_size,
                json.dumps(setup),
                session_id,
                folds,
            ],
        )
        units = pd.DataFrame(
            [(m, f) for m in models for f in range(folds)], columns=["model", "fold"]
        ).astype({"fold": np.int32})
        insert_frame(
            self.con,
            "units",
            units,
            "INSERT INTO search_folds (job_id, model, fold, status) "
            "SELECT ?, model, fold, ? FROM units",
            [job_id, PENDING],
        )
        return self._search_plan(job_id)

    def _search_plan(self, job_id: str) -> dict:
        row = first(
            self.con.execute(
                "SELECT j.kind, j.params, j.dataset_id, d.name, d.path FROM jobs j "
                "JOIN datasets d USING (dataset_id) WHERE job_id = ?",
                [job_id],
            ).fetchall()
        )
        if row is None or row[0] != "search":
            raise InputError(f"job '{job_id}' exists and is not a search")
        params = json.loads(row[1])
        return {
            "job_id": job_id,
            "dataset_id": row[2],
            "dataset": row[3],
            "dataset_path": row[4],
            "models": params["models"],
            "sort": params["sort"],
            "setup": {k: params[k] for k in ("session_id", "train_size", "folds")},
        }

    def record(self, messages: list[dict]) -> set[str]:
        """Apply a batch of search results; return the jobs they touched."""
        by_op: dict[str, list[dict]] = {}
        for message in messages:
            by_op.setdefault(message["op"], []).append(message)
        touched = self._record_folds(by_op.get(FOLD_SCORED, []))
        for message in by_op.get(MODEL_FINALIZED, []):
            touched |= self._record_artifact(message)
        for message in by_op.get(MODEL_FINALIZE_FAILED, []):
            self.con.execute(
                "UPDATE model_runs SET finalize_error = ? "
                "WHERE model_id = ? AND artifact_sha256 IS NULL",
                [message["error"], message["model_id"]],
            )
            touched.add(message["job_id"])
        return touched

    def _record_folds(self, messages: list[dict]) -> set[str]:
        if not messages:
            return set()
        rows = pd.DataFrame(
            [
                {
                    "job_id": m["job_id"],
                    "model": m["model"],
                    "fold": m["fold"],
                    "status": FAILED if m["failed"] else DONE,
                    **{c: m["scores"][c] for c in METRIC_COLUMNS},
                    "fit_seconds": m["fit_seconds"],
                    "score_seconds": m["score_seconds"],
                    "error": m["error"],
                    "worker": m["worker"],
                    "estimator": m["estimator"] or None,
                    "params": m["params"],
                }
                for m in messages
            ]
        ).drop_duplicates(["job_id", "model", "fold"], keep="first")
        metrics = ", ".join(f"{c} = r.{c}" for c in METRIC_COLUMNS)
        insert_frame(
            self.con,
            "fold_rows",
            rows,
            f"""UPDATE search_folds SET status = r.status, {metrics},
                    fit_seconds = r.fit_seconds, score_seconds = r.score_seconds,
                    error = r.error, worker = r.worker, finished_at = now()
                FROM fold_rows r
                WHERE search_folds.job_id = r.job_id AND search_folds.model = r.model
                  AND search_folds.fold = r.fold AND search_folds.status = '{PENDING}'""",
            [],
        )
        insert_frame(
            self.con,
            "fold_rows",
            rows[rows["estimator"].notna()].drop_duplicates(["job_id", "model"]),
            """UPDATE model_runs SET estimator = r.estimator, params = r.params
               FROM fold_rows r
               WHERE model_runs.job_id = r.job_id AND model_runs.model = r.model
                 AND model_runs.estimator IS NULL""",
            [],
        )
        jobs = sorted(set(rows["job_id"]))
        for job_id in jobs:
            self._rank_if_complete(job_id)
        return set(jobs)

    def _rank_if_complete(self, job_id: str) -> None:
        """Rank a search's models once, when no fold is pending and no model is ranked yet."""
        waiting = first(
            self.con.execute(
                f"""SELECT
                      (SELECT count(*) FROM search_folds WHERE job_id = ? AND status = '{PENDING}'),
                      (SELECT count(*) FROM model_runs WHERE job_id = ?
                         AND status = '{PENDING}')""",
                [job_id, job_id],
            ).fetchall()
        )
        if waiting[0] > 0 or waiting[1] == 0:
            return
        plan = self._search_plan(job_id)
        folds = self.con.execute(
            f"SELECT model, fold, status = '{FAILED}' AS failed, "
            f"coalesce(fit_seconds, 0) + coalesce(score_seconds, 0) AS seconds, "
            f"{', '.join(METRIC_COLUMNS)} FROM search_folds WHERE job_id = ?",
            [job_id],
        ).df()
        ranked = leaderboard(folds, plan["models"], metric(plan["sort"]))
        ranked["model_id"] = job_id + "-" + ranked["model"]
        ranked["best"] = ranked["rank"] == 1
        columns = [*METRIC_COLUMNS, *(c + "_sd" for c in METRIC_COLUMNS), "fit_seconds"]
        insert_frame(
            self.con,
            "ranked",
            ranked[["model_id", "rank", "best", *columns]],
            f"""UPDATE model_runs SET status = '{DONE}', rank = r.rank, best = r.best,
                    {", ".join(f"{c} = r.{c}" for c in columns)}, finished_at = now()
                FROM ranked r WHERE model_runs.model_id = r.model_id""",
            [],
        )
        self.con.execute(
            f"""UPDATE model_runs SET status = '{FAILED}', finished_at = now(),
                    error = coalesce(
                        (SELECT first(f.error ORDER BY f.fold) FROM search_folds f
                          WHERE f.job_id = model_runs.job_id AND f.model = model_runs.model
                            AND f.status = '{FAILED}'),
                        'scored 0 on every metric in its first fold')
                WHERE job_id = ? AND status = '{PENDING}'""",
            [job_id],
        )

    def _record_artifact(self, message: dict) -> set[str]:
        home = settings().home
        spooled = home / message["spool_path"]
        try:
            row = first(
                self.con.execute(
                    "SELECT artifact_sha256 FROM model_runs "
                    "WHERE model_id = ? AND (best OR finalize_requested)",
                    [message["model_id"]],
                ).fetchall()
            )
            if row is None or row[0] is not None or not spooled.exists():
                return set()
            if sha256_of(spooled) != message["sha256"]:
                raise InputError(f"{spooled} does not match the hash its task reported")
            relative = f"{MODELS_DIR}/{message['model_id']}.joblib"
            (home / MODELS_DIR).mkdir(parents=True, exist_ok=True)
            self.con.execute(
                """UPDATE model_runs SET artifact_path = ?, artifact_sha256 = ?,
                       pred_accuracy = ?, finalize_error = NULL WHERE model_id = ?""",
                [relative, message["sha256"], message["pred_accuracy"], message["model_id"]],
            )
            os.replace(spooled, home / relative)
            return {message["job_id"]}
        finally:
            spooled.unlink(missing_ok=True)

    def request_finalize(self, request: FinalizeModel) -> dict:
        """Ask for a ranked model to be saved as the best one is (`models finalize`)."""
        model_id = request.model_id
        row = first(
            self.con.execute(
                "SELECT job_id, status, artifact_path FROM model_runs WHERE model_id = ?",
                [model_id],
            ).fetchall()
        )
        if row is None:
            raise NotFoundError(f"unknown model '{model_id}'; see `genejobs models list`")
        job_id, status, artifact = row
        if artifact is not None:
            return {"job_id": job_id, "model_id": model_id, "artifact_path": artifact}
        if status != DONE:
            raise InputError(f"model {model_id} is {status}, not ranked: only ranked models save")
        self.con.execute(
            "UPDATE model_runs SET finalize_requested = true, finalize_error = NULL "
            "WHERE model_id = ?",
            [model_id],
        )
        return {"job_id": job_id, "model_id": model_id, "artifact_path": None}

    def job_counts(self, job_ids: set[str]) -> dict[str, dict[str, int]]:
        """Counts by status for the searches and evaluations among `job_ids`.

        A search counts its folds plus one unit for finalizing its best model,
        which is pending until the artifact is recorded (failed when finalizing
        failed or no model could be ranked, cancelled with its job).
        """
        if not job_ids:
            return {}
        ids = sorted(job_ids)
        marks = ", ".join("?" * len(ids))
        counts: dict[str, dict[str, int]] = {}
        for job_id, status, n in self.con.execute(
            f"""SELECT job_id, status, count(*) FROM search_folds WHERE job_id IN ({marks})
                GROUP BY ALL
                UNION ALL
                SELECT job_id, status, count(*) FROM test_results WHERE job_id IN ({marks})
                GROUP BY ALL""",
            [*ids, *ids],
        ).fetchall():
            counts.setdefault(job_id, {PENDING: 0, DONE: 0, FAILED: 0, "cancelled": 0})
            counts[job_id][status] = n
        for job_id, pending, cancelled, best, artifact, finalize_error in self.con.execute(
            f"""SELECT m.job_id, count(*) FILTER (WHERE m.status = '{PENDING}'),
                       bool_or(j.cancelled), count(*) FILTER (WHERE m.best),
                       count(m.artifact_sha256), count(m.finalize_error)
                FROM model_runs m JOIN jobs j USING (job_id)
                WHERE m.job_id IN ({marks}) GROUP BY m.job_id""",
            ids,
        ).fetchall():
            unit = (
                DONE
                if artifact
                else "cancelled"
                if cancelled
                else PENDING
                if pending or (best and not finalize_error)
                else FAILED
            )
            counts[job_id][unit] += 1
        for job_counts in counts.values():
            job_counts["total"] = sum(job_counts[s] for s in (PENDING, DONE, FAILED, "cancelled"))
        return counts
