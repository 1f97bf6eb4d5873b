"""The units of every job kind, as the writer sends them and the compute tasks take them.

A *unit* is the smallest piece of a job that is recorded once: a seeded run,
a search fold, a search's finalize step, a holdout test, a SHAP shard. Its
`unit_id` is stable (the job and what the unit does); the Celery task id is
the unit id, plus `~` and a suffix when the unit is sent again, so anyone
who sees a task id in the broker knows which unit it carries. A task may
carry several seeded runs of one job when their fits are short (`pack_runs`);
its message then names them all in its `units` header.

Imported by every side and importing nothing of the project, so the CLI can
name a task without importing scikit-learn or PyCaret, and no task name is
spelled twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Task(StrEnum):
    """The registered names of the compute tasks."""

    IMPORTANCE_RUN = "genejobs.importance_run"
    SEARCH_FOLD = "genejobs.search_fold"
    SEARCH_FINALIZE = "genejobs.search_finalize"
    HOLDOUT_TEST = "genejobs.holdout_test"
    SHAP_SHARD = "genejobs.shap_shard"


class UnitStatus(StrEnum):
    """Where a unit stands. Every status but `pending` is final until a person retries."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobKind(StrEnum):
    IMPORTANCE = "importance"
    SEARCH = "search"
    EVALUATE = "evaluate"
    SHAP = "shap"


RESEND_MARK = "~"


@dataclass(frozen=True)
class Unit:
    """One unit of work as the task that does it: its name, JSON arguments and Flower's name."""

    task: Task
    job_id: str
    unit_id: str
    kwargs: dict[str, Any] = field(hash=False)
    shadow: str
    resend: str | None = None  # set when the unit is sent again (a retry, a stranded unit)
    # How many units like this one a task may carry (seeded runs of short fits).
    pack: int = field(default=1, compare=False)
    # The units a task carries, when it carries several (its message's `units` header).
    members: tuple[str, ...] = field(default=(), compare=False)

    @property
    def task_id(self) -> str:
        return self.unit_id + (RESEND_MARK + self.resend if self.resend else "")


def unit_of(task_id: str) -> str:
    """The unit id a task id carries."""
    return task_id.split(RESEND_MARK, 1)[0]


def run_unit_id(job_id: str, seed: int) -> str:
    """The unit id of one seeded run."""
    return f"{job_id}-{seed}"


def run_unit(
    job_id: str,
    dataset_id: str,
    dataset_path: str,
    model: str,
    seed: int,
    test_size: float,
    scheme: str = "split",
    pack: int = 1,
) -> Unit:
    """One seeded run as the task that does it (alone, or packed with others: `pack_runs`)."""
    return Unit(
        Task.IMPORTANCE_RUN,
        job_id,
        run_unit_id(job_id, seed),
        {
            "job_id": job_id,
            "dataset_id": dataset_id,
            "dataset_path": dataset_path,
            "model": model,
            "seed": int(seed),
            "test_size": test_size,
            **({"scheme": scheme} if scheme != "split" else {}),
        },
        f"importance {model} seed={seed} job={job_id}",
        pack=pack,
    )


def pack_runs(units: list[Unit], resend: str | None = None) -> Unit:
    """One task for several seeded runs of one job: the first one's arguments, every seed.

    Its task id is the first unit's with `+` and how many more it carries; the
    message names every unit it carries in its `units` header, which is what
    the writer's sweep reads.
    """
    first = units[0]
    if len(units) == 1:
        return Unit(first.task, first.job_id, first.unit_id, first.kwargs, first.shadow, resend)
    kwargs = {k: v for k, v in first.kwargs.items() if k != "seed"}
    kwargs["seeds"] = [u.kwargs["seed"] for u in units]
    model = kwargs["model"]
    return Unit(
        first.task,
        first.job_id,
        f"{first.unit_id}+{len(units) - 1}",
        kwargs,
        f"importance {model} seeds={kwargs['seeds'][0]}..{kwargs['seeds'][-1]} "
        f"({len(units)}) job={first.job_id}",
        resend,
        members=tuple(u.unit_id for u in units),
    )


# Messages to the writer ------------------------------------------------------------------
#
