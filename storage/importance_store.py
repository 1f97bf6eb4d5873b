"""The writer's side of importance jobs: seeds planned as runs, results recorded once.

Contract (see `storage.store.Store`): only the single writer calls it, inside
its open transaction. Planning reserves seeds as `pending` rows under PRIMARY
KEY (dataset_id, model, seed), so two jobs can never hold the same seed, and
planning a job id again answers the plan already made. A run moves pending ->
done once (done is final), so a redelivered result is dropped, and its
importance rows are written in the same transaction; a failure is only
recorded over a pending run. Bulk writes go through Arrow tables, never row
by row.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from genejobs import contract
from genejobs.catalog import MODELS
from genejobs.contract import PlanImportance
from genejobs.errors import InputError
from genejobs.storage import queries
from genejobs.storage.db import first
from genejobs.storage.schema import RunStatus
from genejobs.storage.seeds import (
    SEED_LIMIT,
    SMALL_LIST,
    check_explicit_seeds,
    check_job_size,
    check_split,
    draw_seeds,
)

DONE_FIELDS = (
    "accuracy", "precision", "recall", "f1", "n_train", "n_test", "n_selected",
    "fit_seconds", "worker",
)  # fmt: skip
RUN_KEY = ("dataset_id", "model", "seed", "job_id")


def _fits(message: dict) -> list[dict]:
    """A run's fits: itself, or for a `pairs` run its two halves (half 0 and 1)."""
    if message.get("importances_b") is None:
        return [{**message, "half": None}]
    return [{**message, "half": 0}, {**message, "half": 1, "importances": message["importances_b"]}]


def _done_update(value: Callable[[str], str], source: str = "") -> str:
    """The UPDATE that records runs as done; `value(field)` is its SQL.

    Only a pending or failed run becomes done: a repeat of a done run changes
    nothing, and a cancelled run stays cancelled whatever arrives later.
    """
    assignments = ", ".join(f"{field} = {value(field)}" for field in DONE_FIELDS)
    match = " AND ".join(f"runs.{key} = {value(key)}" for key in RUN_KEY)
    open_states = f"'{RunStatus.PENDING.value}', '{RunStatus.FAILED.value}'"
    return (
        f"UPDATE runs SET status = '{RunStatus.DONE.value}', {assignments}, error = NULL, "
        f"attempts = runs.attempts + 1, finished_at = now() {source} "
        f"WHERE {match} AND runs.status IN ({open_states}) "
        "RETURNING runs.dataset_id, runs.model, runs.seed"
    )


class ImportanceStore:
    """Plans importance jobs and records their runs, on the writer's connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, datasets: dict[str, dict]):
        self.con = con
        self._genes: dict[str, list[str]] = {}
        # Datasets a plan looked up, by the name or id it gave, shared with the
        # DatasetStore: only this writer adds datasets (and empties it then), and
        # none is ever changed.
        self._datasets = datasets
        # Importance jobs without rounds, or whose rounds stopped (storage.rounds).
        self.settled_rounds: set[str] = set()

    def plan_importance(self, request: PlanImportance) -> dict:
        """Create an importance job: reserve `runs` seeds never used for (dataset, model).

        `scheme` "pairs" fits both halves of each seed's stratified half split
        (test_size is then 0.5). With `until_stable` (the rule's values; see
        storage.rounds) `runs` is the round size and rounds follow until the
        rule holds. Planning the same job id again returns the plan already
        made, so a request the writer applies twice creates one job.
        """
        job_id, dataset_name, model = request.job_id, request.dataset, request.model
        runs, test_size, seed_max = request.runs, request.test_size, request.seed_max
        seeds, scheme, until_stable = request.seeds, request.scheme, request.until_stable
        known = first(self.con.execute("SELECT 1 FROM jobs WHERE job_id = ?", [job_id]).fetchall())
        existing = known and first(
            self.con.execute(
                "SELECT j.dataset_id, d.name, d.path, j.model, list(r.seed ORDER BY r.seed), "
                "any_value(r.test_size) FROM jobs j JOIN datasets d USING (dataset_id) "
                "JOIN runs r USING (job_id) WHERE job_id = ? GROUP BY ALL",
                [job_id],
            ).fetchall()
        )
        if existing:
            return {
                "job_id": job_id,
                "dataset_id": existing[0],
                "dataset": existing[1],
                "dataset_path": existing[2],
                "model": existing[3],
                "seeds": existing[4],
                "test_size": existing[5],
            }
        if model not in MODELS:
            raise InputError(f"unknown model '{model}'; choose from {', '.join(MODELS)}")
        if scheme not in ("split", "pairs"):
            raise InputError(f"unknown scheme '{scheme}'; choose split or pairs")
        if scheme == "pairs":
            test_size = 0.5
        if until_stable is not None and seeds:
            raise InputError("--until-stable draws its own seeds; give --runs, not --seeds")
        check_job_size(runs, until_stable, None if not seeds else len(seeds))
        # Not its gene list: that can be long, and a plan does not need it.
        found = self._datasets.get(dataset_name)
        if found is None:
            found = self._datasets[dataset_name] = queries.dataset(
                self.con, dataset_name, "dataset_id, name, path, n_samples, class_counts"
            )
        check_split(found["n_samples"], found["class_counts"], test_size)
        if not 1 <= seed_max <= SEED_LIMIT:
            raise InputError(f"--seed-max must be between 1 and {SEED_LIMIT}, got {seed_max}")
        if seeds:
            chosen = check_explicit_seeds(self.con, found, model, seeds)
        else:
            if runs < 1:
                raise InputError(f"--runs must be at least 1, got {runs}")
            chosen = draw_seeds(self.con, found, model, runs, seed_max)
        params = {
            "dataset": found["name"],
            "model": model,
            "runs": len(chosen),
            "test_size": test_size,
            "seed_max": seed_max,
            "explicit_seeds": bool(seeds),
            "scheme": scheme,
        }
        if until_stable is not None:
            from genejobs.storage import rounds

            params["until_stable"] = rounds.rule(until_stable, len(chosen))
        self.con.execute(
            "INSERT INTO jobs (job_id, kind, dataset_id, model, params, n_runs) "
            "VALUES (?, 'importance', ?, ?, ?, ?)",
            [job_id, found["dataset_id"], model, json.dumps(params), len(chosen)],
        )
        self.add_runs(job_id, found["dataset_id"], model, chosen, test_size)
        return {
            "job_id": job_id,
            "dataset_id": found["dataset_id"],
            "dataset": found["name"],
            "dataset_path": found["path"],
            "model": model,
            "test_size": test_size,
            "seeds": [int(s) for s in chosen],
            "scheme": scheme,
            "created": True,
            "rounds": until_stable is not None,
        }

    def add_runs(
        self, job_id: str, dataset_id: str, model: str, seeds: list[int], test_size: float
    ) -> None:
        """Add pending runs of `seeds` to a job."""
        if len(seeds) <= SMALL_LIST:  # a list parameter costs less than a registered frame
            self.con.execute(
                "INSERT INTO runs (dataset_id, model, seed, job_id, status, test_size) "
                "SELECT ?, ?, unnest(?::BIGINT[]), ?, ?, ?",
                [dataset_id, model, [int(s) for s in seeds], job_id, RunStatus.PENDING.value,
                 test_size],
            )  # fmt: skip
            return
        planned = pd.DataFrame({"seed": np.asarray(seeds, dtype=np.int64)})
        self.con.register("planned", planned)
        try:
            self.con.execute(
                "INSERT INTO runs (dataset_id, model, seed, job_id, status, test_size) "
                "SELECT ?, ?, seed, ?, ?, ? FROM planned",
                [dataset_id, model, job_id, RunStatus.PENDING.value, test_size],
            )
        finally:
            self.con.unregister("planned")

    # results ----------------------------------------------------------------

    def record_done(self, messages: list[dict]) -> set[str]:
        """Record finished runs and their importances; repeats and late copies are dropped.

        One UPDATE moves the batch's runs from any status but `done` to `done`
        and returns the runs it moved; only those runs get importance rows.
        """
        if not messages:
            return set()
        unique: dict[tuple, dict] = {}
        for message in messages:
            unique.setdefault((message["dataset_id"], message["model"], message["seed"]), message)
        moved = self._move_to_done(list(unique.values()))
        if not moved:
            return set()
        accepted = [unique[(d, m, int(s))] for d, m, s in moved]
        by_dataset: dict[str, list[dict]] = {}
        for message in accepted:
            by_dataset.setdefault(message["dataset_id"], []).extend(_fits(message))
        for dataset_id, group in by_dataset.items():
            rows = self._importance_rows(dataset_id, group)
            if rows is None:
                continue
            self.con.register("importance_rows", rows)
            try:
                self.con.execute(
                    "INSERT INTO importances (job_id, dataset_id, model, seed, gene, "
                    "importance, coef, rank, class_coefs, half) SELECT job_id, dataset_id, model, "
                    "seed, gene, importance, coef, rank, class_coefs, half FROM importance_rows"
                )
            finally:
                self.con.unregister("importance_rows")
        return {m["job_id"] for m in accepted}

    def _move_to_done(self, messages: list[dict]) -> list[tuple]:
        """Set the runs of `messages` to done unless they already are; return the runs moved.

        A lone result (the common case when runs trickle in) takes a statement
        with parameters, which costs about half of registering a one-row frame
        and joining it; a batch joins its frame.
        """
        if len(messages) == 1:
            m = messages[0]
            return self.con.execute(
                _done_update(lambda _: "?"), [m[field] for field in (*DONE_FIELDS, *RUN_KEY)]
            ).fetchall()
        import pyarrow as pa

        # An Arrow table of the fields the UPDATE reads (a third cheaper than a pandas frame).
        columns = {f: [m[f] for m in messages] for f in (*DONE_FIELDS, *RUN_KEY)}
        self.con.register("batch", pa.table(columns))
        try:
            return self.con.execute(
                _done_update(lambda field: f"b.{field}", "FROM batch b")
            ).fetchall()
        finally:
            self.con.unregister("batch")

    def _genes_of(self, dataset_id: str) -> list[str]:
        if dataset_id not in self._genes:
            row = first(
                self.con.execute(
                    "SELECT genes FROM datasets WHERE dataset_id = ?", [dataset_id]
                ).fetchall()
            )
            self._genes[dataset_id] = list(row[0])
        return self._genes[dataset_id]

    def _importance_rows(self, dataset_id: str, messages: list[dict]):
        """One Arrow table of importance rows for runs on one dataset, from their packed arrays.

        Names (job, dataset, model, gene) are dictionary-encoded over codes, so
        no string is made per row; a multiclass linear model's per-class
        coefficients are a list per row, in the order of the dataset's classes.
        """
        import pyarrow as pa

        packed = [m["importances"] for m in messages]
        gene_index = [contract.unpack(p["gene_index"]) for p in packed]
        sizes = np.asarray([len(g) for g in gene_index])
        if not sizes.sum():
            return None
        run = np.repeat(np.arange(len(messages)), sizes)
        genes = self._genes_of(dataset_id)
        coef = np.concatenate([contract.unpack(p["coef"]) for p in packed])
        widths = np.repeat(np.asarray([p["n_classes"] for p in packed]), sizes)
        offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)
        class_coefs = pa.ListArray.from_arrays(
            pa.array(offsets),
            pa.array(np.concatenate([contract.unpack(p["class_coefs"]) for p in packed])),
            mask=pa.array(widths == 0),
        )

        def names(key: str) -> pa.DictionaryArray:
            values = [m[key] for m in messages]
            categories = sorted(set(values))
            codes = np.asarray([categories.index(v) for v in values], dtype=np.int32)
            return pa.DictionaryArray.from_arrays(codes[run], categories)

        return pa.table(
            {
                "job_id": names("job_id"),
                "dataset_id": names("dataset_id"),
                "model": names("model"),
                "seed": np.asarray([m["seed"] for m in messages], dtype=np.int64)[run],
                "gene": pa.DictionaryArray.from_arrays(np.concatenate(gene_index), genes),
                "importance": np.concatenate([contract.unpack(p["importance"]) for p in packed]),
                "coef": pa.array(coef, mask=np.isnan(coef)),
                # rank 1 = most important: the selection travels in that order
                "rank": np.concatenate([np.arange(1, n + 1, dtype=np.int32) for n in sizes]),
                "class_coefs": class_coefs,
                "half": pa.array([m["half"] for m in messages], pa.int16()).take(pa.array(run)),
            }
        )

    def record_failed(self, messages: list[dict]) -> set[str]:
        """Record failed runs; a failure never overwrites a finished or cancelled run."""
        if not messages:
            return set()
        batch = pd.DataFrame(messages).drop_duplicates(["dataset_id", "model", "seed"], keep="last")
        self.con.register("failures", batch)
        try:
            self.con.execute(
                f"""UPDATE runs SET status = '{RunStatus.FAILED.value}', error = f.error,
                        worker = f.worker, attempts = runs.attempts + 1, finished_at = now()
                    FROM failures f
                    WHERE runs.dataset_id = f.dataset_id AND runs.model = f.model
                      AND runs.seed = f.seed AND runs.job_id = f.job_id
                      AND runs.status = '{RunStatus.PENDING.value}'"""
            )
        finally:
            self.con.unregister("failures")
        return set(batch["job_id"])
