"""Seeds: how many a job may ask for, which are free for a dataset and model, drawing them.

A seed is used at most once per (dataset, model): the runs table's PRIMARY
KEY holds it; these functions draw among the free ones so a plan does not
collide, and refuse requests that could not be met. Called by the writer,
inside its transaction.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from genejobs.config import settings
from genejobs.errors import InputError
from genejobs.storage.db import first

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


def check_explicit_seeds(con, found: dict, model: str, seeds: list[int]) -> list[int]:
    """The seeds a user gave, once each and never used for the dataset and model."""
    bad = [s for s in seeds if not 1 <= s <= SEED_LIMIT]
    if bad:
        raise InputError(f"seeds must be between 1 and {SEED_LIMIT}: {bad[:5]}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise InputError(f"seeds given more than once: {repeated[:10]}")
    used = used_among(con, found["dataset_id"], model, seeds)
    if used:
        shown = ", ".join(map(str, used[:10])) + (
            f" and {len(used) - 10} more" if len(used) > 10 else ""
        )
        raise InputError(
            f"seeds already used for dataset {found['name']} and model {model}: {shown}"
        )
    return list(seeds)


def used_among(con, dataset_id: str, model: str, candidates) -> list[int]:
    """Which of `candidates` are already recorded for (dataset, model), in order."""
    if len(candidates) <= SMALL_LIST:
        rows = con.execute(
            "SELECT seed FROM runs WHERE dataset_id = ? AND model = ? "
            "AND seed IN (SELECT unnest(?::BIGINT[])) ORDER BY seed",
            [dataset_id, model, [int(c) for c in candidates]],
        ).fetchall()
        return [int(r[0]) for r in rows]
    frame = pd.DataFrame({"seed": np.asarray(candidates, dtype=np.int64)})
    con.register("candidates", frame)
    try:
        rows = con.execute(
            "SELECT c.seed FROM candidates c JOIN runs r ON r.seed = c.seed "
            "AND r.dataset_id = ? AND r.model = ? ORDER BY c.seed",
            [dataset_id, model],
        ).fetchall()
    finally:
        con.unregister("candidates")
    return [int(r[0]) for r in rows]


def draw_seeds(con, found: dict, model: str, runs: int, seed_max: int) -> list[int]:
    """`runs` seeds from 1..seed_max never used for (dataset, model), in random order."""
    # Counting the used seeds scans the runs: only when the range could run out.
    all_runs = first(con.execute("SELECT count(*) FROM runs").fetchall())[0]
    used_count = (
        all_runs
        if seed_max - all_runs >= runs and seed_max > _EXHAUSTIVE_DRAW
        else first(
            con.execute(
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
                for r in con.execute(
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
        used = set(used_among(con, found["dataset_id"], model, fresh))
        for seed in fresh:
            if seed not in used and len(chosen) < runs:
                chosen.append(seed)
                taken.add(seed)
    rng.shuffle(chosen)
    return chosen
