"""The names the CLI, the writer and the compute tasks share: tasks, units, requests.

Imported by every side and importing nothing of the project, so the CLI can
name a task without importing scikit-learn or PyCaret, and no task name is
spelled twice.

A *unit* is the smallest piece of a job that is recorded once: a seeded run,
a search fold, a search's finalize step, a holdout test, a SHAP shard. Its
`unit_id` is stable (the job and what the unit does); the Celery task id is
the unit id, plus `~` and a suffix when the unit is sent again, so anyone
who sees a task id in the broker knows which unit it carries.
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

    @property
    def task_id(self) -> str:
        return self.unit_id + (RESEND_MARK + self.resend if self.resend else "")


def unit_of(task_id: str) -> str:
    """The unit id a task id carries."""
    return task_id.split(RESEND_MARK, 1)[0]


# Results the compute tasks push to the writer's inbox, by the `op` field.
RUN_DONE, RUN_FAILED = "run_done", "run_failed"
FOLD_SCORED = "fold_scored"
MODEL_FINALIZED, MODEL_FINALIZE_FAILED = "model_finalized", "model_finalize_failed"
TEST_DONE, TEST_FAILED = "test_done", "test_failed"
SHARD_DONE, SHARD_FAILED = "shap_shard_done", "shap_shard_failed"
RESULT_OPS = frozenset(
    {
        RUN_DONE,
        RUN_FAILED,
        FOLD_SCORED,
        MODEL_FINALIZED,
        MODEL_FINALIZE_FAILED,
        TEST_DONE,
        TEST_FAILED,
        SHARD_DONE,
        SHARD_FAILED,
    }
)
