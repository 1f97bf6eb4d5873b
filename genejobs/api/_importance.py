"""Importance jobs: seeded runs of one model on one dataset, each recording the genes it selects."""

from __future__ import annotations

import uuid

from genejobs.api._jobs import Job


def plan_importance(
    dataset: str,
    model: str,
    *,
    runs: int | None = None,
    seeds: list[int] | None = None,
    test_size: float = 0.3,
    seed_max: int = 4_000_000_000,
    scheme: str = "split",
    until_stable: dict | None = None,
) -> dict:
    """Check the arguments and plan an importance job; returns the writer's plan (job_id, seeds)."""
    from genejobs.catalog import MODELS
    from genejobs.contract import PlanImportance
    from genejobs.errors import InputError
    from genejobs.storage.seeds import SEED_LIMIT, check_job_size
    from genejobs.worker import inbox

    if model not in MODELS:
        raise InputError(f"unknown model '{model}'; choose one of {', '.join(MODELS)}")
    if (runs is None) == (seeds is None):
        raise InputError("give the number of runs or the seeds, not both")
    if runs is not None and runs < 1:
        raise InputError(f"runs: must be at least 1, got {runs}")
    if seeds is not None and not seeds:
        raise InputError("seeds: give at least one seed")
    if not 0 < test_size < 1:
        raise InputError(f"test size: must be between 0 and 1, got {test_size}")
    if not 1 <= seed_max <= SEED_LIMIT:
        raise InputError(f"seed max: must be between 1 and {SEED_LIMIT}, got {seed_max}")
    check_job_size(runs or 0, until_stable, None if seeds is None else len(seeds))
    return inbox.request(
        PlanImportance(
            job_id="imp-" + uuid.uuid4().hex[:10],
            dataset=dataset,
            model=model,
            runs=runs or len(seeds),
            test_size=test_size,
            seed_max=seed_max,
            seeds=None if seeds is None else [int(s) for s in seeds],
            scheme=scheme,
            until_stable=until_stable,
        )
    )


def importance(
    dataset: str,
    model: str,
    *,
    runs: int | None = None,
    seeds: list[int] | None = None,
    test_size: float = 0.3,
    seed_max: int = 4_000_000_000,
    scheme: str = "split",
    until_stable: dict | None = None,
) -> Job:
    """Start a job of seeded importance runs (as `genejobs importance`); returns at once.

    Give `runs` (new seeds drawn from 1..seed_max, each used at most once per
    dataset and model) or explicit `seeds`. `scheme="pairs"` fits both halves
    of each seed's half split. `until_stable={}` (or with any of pi, top,
    tolerance, min_runs, max_runs) runs rounds of `runs` until the rule holds.
    """
    plan = plan_importance(
        dataset,
        model,
        runs=runs,
        seeds=seeds,
        test_size=test_size,
        seed_max=seed_max,
        scheme=scheme,
        until_stable=until_stable,
    )
    return Job(plan["job_id"])
