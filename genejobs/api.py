"""The Python API for notebooks: the CLI's main actions as functions that return DataFrames.

Heavy modules (Celery, DuckDB, pandas) are imported inside the functions so
that `import genejobs` stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    import duckdb
    import pandas as pd


@contextlib.contextmanager
def reading(wait: float | None = None, sealed: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the results file that takes turns with the writer."""
    from genejobs.storage import db
    from genejobs.worker.inbox import HANDSHAKE

    with db.reading(wait, sealed, handshake=HANDSHAKE) as con:
        yield con


def add_dataset(
    path: str | os.PathLike,
    label: str,
    *,
    name: str | None = None,
    id_col: str | None = None,
    impute: str | None = None,
) -> dict:
    """Validate a CSV, TSV (gzipped or not) or Parquet file and register it.

    Returns the writer's reply: `dataset_id`, `name` and `existing` (True when
    the same content was registered before, under the name returned), and
    `stripped_genes`, the gene names whose surrounding whitespace was dropped.
    The name (by default the file name's stem) follows `storage.datasets.check_name`.
    """
    from genejobs.config import settings
    from genejobs.contract import RegisterDataset
    from genejobs.storage.datasets import check_name, prepare, read_table, write_parquet
    from genejobs.worker import inbox

    path = Path(path)
    if name is None:
        stem = Path(path.name.removesuffix(".gz")).stem
        name = check_name(stem, what="the file name's stem (the default name)")
    else:
        check_name(name)
    prepared = prepare(read_table(path), label, id_col=id_col, impute=impute, source=str(path))
    inbox.require_redis()
    temp = write_parquet(prepared, settings().spool_dir)
    try:
        reply = inbox.request(
            RegisterDataset(
                meta=prepared.metadata(),
                # relative to the data dir, which the writer may mount elsewhere
                temp_path=str(temp.relative_to(settings().home)),
                name=name,
                source=str(path.resolve()),
            )
        )
    finally:
        temp.unlink(missing_ok=True)
    return {
        **reply,
        "samples": len(prepared.frame),
        "genes": len(prepared.genes),
        "classes": len(prepared.classes),
        "stripped_genes": prepared.stripped,
    }


def datasets() -> pd.DataFrame:
    """The registered datasets."""
    from genejobs.storage import queries

    with reading() as con:
        return queries.datasets(con)


@dataclass(frozen=True)
class Job:
    """A job on the stack: follow it, read its summary, cancel it."""

    id: str

    def progress(self) -> dict[str, int]:
        """Unit counts (pending, done, failed, cancelled) as the writer last published them."""
        from genejobs.worker import inbox

        return inbox.progress(self.id)

    def summary(self) -> dict:
        """What `genejobs jobs show` prints: counts, then the kind's own summary."""
        from genejobs.storage import queries

        with reading() as con:
            return queries.job(con, self.id)

    def wait(self, timeout: float | None = None, progress: bool = True) -> dict[str, int]:
        """Wait until no unit is pending (a progress bar on stderr); return the unit counts.

        Raises TimeoutError after `timeout` seconds. Failed units do not raise:
        see the counts, `summary()["errors"]`, and `genejobs jobs retry`.
        """
        from genejobs.worker import inbox

        inbox.require_redis()
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = None
        try:
            while True:
                counts = inbox.progress(self.id)
                finished = sum(counts.get(k, 0) for k in ("done", "failed", "cancelled"))
                if progress and finished != shown:
                    total = finished + counts.get("pending", 0)
                    print(f"\r{self.id}: {finished}/{total} units", end="", file=sys.stderr)
                    sys.stderr.flush()
                    shown = finished
                if counts and counts.get("pending", 1) == 0:
                    return counts
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"job {self.id} still has {counts.get('pending')} units pending"
                    )
                time.sleep(0.2)
        finally:
            if shown is not None:  # the progress line ends, however the wait did
                print(file=sys.stderr)

    def cancel(self) -> int:
        """Cancel the job's pending units; returns how many were cancelled."""
        from genejobs.contract import CancelJob
        from genejobs.worker import inbox

        return int(inbox.request(CancelJob(job_id=self.id))["cancelled"])

    def delete(self) -> dict[str, int]:
        """Remove the job and its rows (a running job is refused); return rows removed by table."""
        from genejobs.contract import DeleteJob
        from genejobs.worker import inbox

        return inbox.request(DeleteJob(job_id=self.id))["removed"]


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


def job(job_id: str) -> Job:
    """A job by its id (checked to exist)."""
    found = Job(job_id)
    found.summary()
    return found


def jobs() -> pd.DataFrame:
    """Every job of every kind with its unit counts (as `genejobs jobs list`)."""
    from genejobs.storage import queries

    with reading() as con:
        return queries.jobs(con)


def gene_counts(
    *,
    job: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    top: int | None = None,
    min_importance: float | None = None,
    class_label: str | None = None,
) -> pd.DataFrame:
    """How often each gene was selected: by one job, or by every job on a dataset and model.

    The frame has one row per gene (most often selected first) and the number
    of finished runs counted in `frame.attrs["runs"]`.
    """
    from genejobs.storage import queries

    with reading() as con:
        where = queries.scope(con, job, dataset, model)
        total, frame = queries.gene_counts(con, where, top, min_importance, class_label)
    frame.attrs["runs"] = total
    return frame


def shap_global(job_id: str, *, by_model: bool = False, class_label=None) -> pd.DataFrame:
    """Mean |SHAP| per feature of a SHAP job (per model with `by_model`)."""
    from genejobs.storage import shap_queries

    with reading() as con:
        return shap_queries.global_importance(con, job_id, by_model, class_label)


def shap_local(job_id: str, row: str, *, class_label=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One prediction of a SHAP job: (its header, its contributions by |SHAP|)."""
    from genejobs.storage import shap_queries

    with reading() as con:
        return shap_queries.local(con, job_id, str(row), class_label)


def shap_presence(job_id: str, *, class_label=None) -> pd.DataFrame:
    """Per feature of a SHAP job: SHAP when the feature is present and when absent."""
    from genejobs.storage import shap_queries

    with reading() as con:
        return shap_queries.presence(con, job_id, class_label)


def sql(query: str) -> pd.DataFrame:
    """Read-only SQL over the results file (as `genejobs sql`: nothing else is reachable)."""
    from genejobs.storage import queries

    with reading(sealed=True) as con:
        return queries.run_sql(con, query)
