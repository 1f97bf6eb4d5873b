"""The writer's side of the results file.

Contract: only the single writer process calls `ResultStore`; each method
runs inside the writer's open transaction and either applies all of its
change or raises. Every write is idempotent, keyed by what the task did:
a run moves pending -> done once (done is final), so a redelivered result is
dropped; a failure is only recorded over a pending run; planning reserves
seeds as `pending` rows under PRIMARY KEY (dataset_id, model, seed), so two
jobs can never hold the same seed. Bulk writes go through pandas frames,
never row by row.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from genejobs import contract
from genejobs.catalog import MODELS
from genejobs.config import settings
from genejobs.errors import InputError
from genejobs.storage import queries
from genejobs.storage.datasets import (
    PreparedDataset,
    check_name,
    load_frame,
    prepare,
    write_parquet,
)
from genejobs.storage.db import first
from genejobs.storage.schema import DDL, RunStatus

SEED_LIMIT = 2**32 - 1  # numpy and scikit-learn take random_state below 2**32


def check_job_size(
    runs: int,
    until_stable: dict | None = None,
    seeds: int | None = None,
    option: str = "--runs",
) -> None:
    """Refuse a job of more runs than GENEJOBS_MAX_RUNS (a round job: at most its
    --max-runs in all): a plan's memory and the results file grow with it."""
    limit = settings().max_runs
    asked = [(option, runs)] if seeds is None else [("--seeds", seeds)]
    if until_stable is not None:
        asked.append(("--max-runs", until_stable.get("max_runs") or 2000))
    for option, count in asked:
        if count > limit:
            raise InputError(
                f"{option} {count:,} is more than a job may plan ({limit:,} runs; "
                "GENEJOBS_MAX_RUNS sets the limit where the writer runs); split it into jobs"
            )


_EXHAUSTIVE_DRAW = 5_000_000  # below this many candidates, list the unused seeds outright
SMALL_LIST = 2_000  # seeds passed as a list parameter; more go in as a registered frame


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def check_split(n_samples: int, class_counts: list[int], test_size: float) -> None:
    """Refuse a test size that leaves too few samples for a stratified split."""
    if not 0 < test_size < 1:
        raise InputError(f"--test-size must be between 0 and 1, got {test_size}")
    n_test = math.ceil(test_size * n_samples)
    n_train = n_samples - n_test
    n_classes = len(class_counts)
    if min(class_counts) < 2:
        raise InputError("a class has a single sample; stratified splits need at least 2 per class")
    if n_test < n_classes or n_train < n_classes:
        raise InputError(
            f"--test-size {test_size} gives {n_train} training and {n_test} test samples; "
            f"a stratified split of {n_classes} classes needs at least {n_classes} in each"
        )


# A SHAP shard that finished and waits in the spool (see storage.shap_store).
SPOOLED = "spooled"

# What a finished run's message sets, and the key that finds its row.
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


class ResultStore:
    """Writer-side operations on an open read-write connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._genes: dict[str, list[str]] = {}
        # Datasets a plan looked up, by the name or id it gave. Only this writer adds
        # datasets (`register_dataset` empties it first), and none is ever changed.
        self._datasets: dict[str, dict] = {}
        # Importance jobs without rounds, or whose rounds stopped (storage.rounds).
        self.settled_rounds: set[str] = set()

    # datasets ---------------------------------------------------------------

    def register_dataset(
        self, meta: dict, temp_path: str, name: str, source: str, parent_id: str | None = None
    ) -> dict:
        """Register a validated dataset whose Parquet file waits at `temp_path` in the data dir.

        The same content under any name is the same dataset: the existing one is
        returned and the temporary file removed.
        """
        self._datasets.clear()
        temp = settings().home / temp_path
        try:
            check_name(name)  # the CLI and the API check first; a message may come from elsewhere
            existing = first(
                self.con.execute(
                    "SELECT name FROM datasets WHERE dataset_id = ?", [meta["dataset_id"]]
                ).fetchall()
            )
            if existing is not None:
                return {"dataset_id": meta["dataset_id"], "name": existing[0], "existing": True}
            clash = first(
                self.con.execute(
                    "SELECT dataset_id FROM datasets WHERE name = ?", [name]
                ).fetchall()
            )
            if clash is not None:
                raise InputError(
                    f"a different dataset is already registered as '{name}'; choose another --name"
                )
            relative = Path("datasets") / f"{meta['dataset_id']}.parquet"
            self.con.execute(
                """INSERT INTO datasets (dataset_id, name, path, label_col, id_col, n_samples,
                       n_genes, classes, class_counts, genes, source, parent_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    meta["dataset_id"],
                    name,
                    str(relative),
                    meta["label_col"],
                    meta["id_col"],
                    meta["n_samples"],
                    meta["n_genes"],
                    meta["classes"],
                    meta["class_counts"],
                    meta["genes"],
                    source,
                    parent_id,
                ],
            )
            os.replace(temp, settings().home / relative)
            return {"dataset_id": meta["dataset_id"], "name": name, "existing": False}
        finally:
            temp.unlink(missing_ok=True)

    def filter_dataset(
        self,
        job_id: str | None,
        dataset_name: str | None,
        model: str | None,
        min_count: int,
        top: int | None,
        name: str,
    ) -> dict:
        """Register a reduced dataset of the genes selected in at least `min_count` runs."""
        check_name(name)
        if min_count < 1:
            raise InputError(f"--min-count must be at least 1, got {min_count}")
        where = queries.scope(self.con, job_id, dataset_name, model)
        total, counts = queries.gene_counts(self.con, where, top=top)
        if total == 0:
            raise InputError(f"no finished runs for {where.label}")
        genes = counts.loc[counts["runs"] >= min_count, "gene"].tolist()
        if not genes:
            raise InputError(
                f"no gene was selected in {min_count} or more of the {total} runs for {where.label}"
            )
        if job_id is not None:
            source_id = first(
                self.con.execute(
                    "SELECT dataset_id FROM jobs WHERE job_id = ?", [job_id]
                ).fetchall()
            )[0]
            source = queries.dataset(self.con, source_id)
        else:
            source = queries.dataset(self.con, dataset_name)
        frame, label_col, id_col = load_frame(settings().home / source["path"])
        reduced = frame[[g for g in source["genes"] if g in set(genes)] + [label_col]]
        prepared: PreparedDataset = prepare(
            reduced.reset_index(), label_col, id_col=reduced.index.name
        )
        temp = write_parquet(prepared, settings().spool_dir)
        reply = self.register_dataset(
            prepared.metadata(),
            str(temp),
            name,
            source=f"genes selected in >= {min_count} of {total} runs of {where.label}"
            + (f" (top {top})" if top else ""),
            parent_id=source["dataset_id"],
        )
        reply["n_genes"] = len(genes)
        return reply

    # planning ---------------------------------------------------------------

    def plan_importance(
        self,
        job_id: str,
        dataset_name: str,
        model: str,
        runs: int,
        test_size: float,
        seed_max: int,
        seeds: list[int] | None,
        scheme: str = "split",
        until_stable: dict | None = None,
    ) -> dict:
        """Create an importance job: reserve `runs` seeds never used for (dataset, model).

        `scheme` "pairs" fits both halves of each seed's stratified half split
        (test_size is then 0.5). With `until_stable` (the rule's values; see
        storage.rounds) `runs` is the round size and rounds follow until the
        rule holds. Planning the same job id again returns the plan already
        made, so a request the writer applies twice creates one job.
        """
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
            chosen = self._check_explicit_seeds(found, model, seeds)
        else:
            if runs < 1:
                raise InputError(f"--runs must be at least 1, got {runs}")
            chosen = self.draw_seeds(found, model, runs, seed_max)
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

    def _check_explicit_seeds(self, found: dict, model: str, seeds: list[int]) -> list[int]:
        bad = [s for s in seeds if not 1 <= s <= SEED_LIMIT]
        if bad:
            raise InputError(f"seeds must be between 1 and {SEED_LIMIT}: {bad[:5]}")
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise InputError(f"seeds given more than once: {repeated[:10]}")
        used = self._used_among(found["dataset_id"], model, seeds)
        if used:
            shown = ", ".join(map(str, used[:10])) + (
                f" and {len(used) - 10} more" if len(used) > 10 else ""
            )
            raise InputError(
                f"seeds already used for dataset {found['name']} and model {model}: {shown}"
            )
        return list(seeds)

    def _used_among(self, dataset_id: str, model: str, candidates) -> list[int]:
        if len(candidates) <= SMALL_LIST:
            rows = self.con.execute(
                "SELECT seed FROM runs WHERE dataset_id = ? AND model = ? "
                "AND seed IN (SELECT unnest(?::BIGINT[])) ORDER BY seed",
                [dataset_id, model, [int(c) for c in candidates]],
            ).fetchall()
            return [int(r[0]) for r in rows]
        frame = pd.DataFrame({"seed": np.asarray(candidates, dtype=np.int64)})
        self.con.register("candidates", frame)
        try:
            rows = self.con.execute(
                "SELECT c.seed FROM candidates c JOIN runs r ON r.seed = c.seed "
                "AND r.dataset_id = ? AND r.model = ? ORDER BY c.seed",
                [dataset_id, model],
            ).fetchall()
        finally:
            self.con.unregister("candidates")
        return [int(r[0]) for r in rows]

    def draw_seeds(self, found: dict, model: str, runs: int, seed_max: int) -> list[int]:
        # Counting the used seeds scans the runs: only when the range could run out.
        all_runs = first(self.con.execute("SELECT count(*) FROM runs").fetchall())[0]
        used_count = (
            all_runs
            if seed_max - all_runs >= runs and seed_max > _EXHAUSTIVE_DRAW
            else first(
                self.con.execute(
                    "SELECT count(*) FROM runs WHERE dataset_id = ? AND model = ? AND seed <= ?",
                    [found["dataset_id"], model, seed_max],
                ).fetchall()
            )[0]
        )
        remaining = seed_max - used_count
        if runs > remaining:
            raise InputError(
                f"only {remaining} unused seeds remain in 1..{seed_max} for "
                f"dataset {found['name']} and model {model}; asked for {runs}"
            )
        rng = np.random.default_rng()
        if seed_max <= _EXHAUSTIVE_DRAW:
            used = np.asarray(
                [
                    r[0]
                    for r in self.con.execute(
                        "SELECT seed FROM runs WHERE dataset_id = ? AND model = ? AND seed <= ?",
                        [found["dataset_id"], model, seed_max],
                    ).fetchall()
                ],
                dtype=np.int64,
            )
            free = np.setdiff1d(np.arange(1, seed_max + 1, dtype=np.int64), used)
            return rng.choice(free, size=runs, replace=False).tolist()
        chosen: list[int] = []
        taken: set[int] = set()
        while len(chosen) < runs:
            need = runs - len(chosen)
            draw = np.unique(rng.integers(1, seed_max, size=need + need // 10 + 8, endpoint=True))
            fresh = [int(s) for s in draw if int(s) not in taken]
            used = set(self._used_among(found["dataset_id"], model, fresh))
            for seed in fresh:
                if seed not in used and len(chosen) < runs:
                    chosen.append(seed)
                    taken.add(seed)
        rng.shuffle(chosen)
        return chosen

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

    # progress ---------------------------------------------------------------

    def job_counts(self, job_ids: set[str], table: str = "runs") -> dict[str, dict[str, int]]:
        """Unit counts by status for the given jobs, for progress reporting.

        `table` holds the jobs' units: `runs` for seeded runs, `shap_shards`
        for SHAP jobs. One table, not their union: the writer calls this after
        every batch, and a lone run's latency feels every millisecond. A SHAP
        shard that finished and waits in the spool to be ingested counts as
        `spooled`, not pending: nothing is spooled once nothing is pending.
        """
        if table not in ("runs", "shap_shards"):
            raise ValueError(f"no units of jobs in table {table!r}")
        if not job_ids:
            return {}
        ids = sorted(job_ids)
        status = (
            "status"
            if table == "runs"
            else f"CASE WHEN status = '{RunStatus.PENDING.value}' AND values_path IS NOT NULL "
            f"THEN '{SPOOLED}' ELSE status END"
        )
        rows = self.con.execute(
            f"SELECT job_id, {status}, count(*) FROM {table} "
            f"WHERE job_id IN ({', '.join('?' * len(ids))}) GROUP BY ALL",
            ids,
        ).fetchall()
        states = [s.value for s in RunStatus] + ([SPOOLED] if table == "shap_shards" else [])
        counts = {job_id: dict.fromkeys(states, 0) for job_id in ids}
        for job_id, state, n in rows:
            counts[job_id][state] = n
        for job_id in ids:
            counts[job_id]["total"] = sum(counts[job_id].values())
        return counts
