"""genejobs: seeded gene-importance runs, model search and SHAP on a job queue.

The command line (`genejobs ...`) is the main way in; this package also gives
notebooks a small Python API over a running stack (`genejobs up`):

    import genejobs

    genejobs.add_dataset("expression.csv", label="tissue", id_col="sample_id", name="tissue")
    job = genejobs.importance("tissue", model="lr", runs=200)
    job.wait()                                  # a progress bar; returns the unit counts
    counts = genejobs.gene_counts(job=job.id)   # a DataFrame, most selected gene first
    genejobs.sql("SELECT model, count(*) FROM runs GROUP BY model")

Every function reads the stack named by GENEJOBS_HOME / GENEJOBS_REDIS_URL, as
the CLI does, and raises `genejobs.GenejobsError` (or a subclass) with the
same one-line message the CLI prints.

The project's packages live beside this folder in the source tree (cli, tasks,
worker, storage) and are installed as genejobs.cli, genejobs.tasks,
genejobs.worker and genejobs.storage.
"""

from __future__ import annotations

from pathlib import Path

# From a source checkout the four packages sit beside this folder, not in it.
if not (Path(__file__).parent / "worker").is_dir():
    __path__.append(str(Path(__file__).resolve().parent.parent))

# The API is imported on first use (PEP 562): `genejobs.errors`, `genejobs.contract`
# and the other base modules load without it.
_API = {
    "Job",
    "add_dataset",
    "datasets",
    "gene_counts",
    "importance",
    "job",
    "jobs",
    "shap_global",
    "shap_local",
    "shap_presence",
    "sql",
}
_ERRORS = {"GenejobsError", "InputError", "NotFoundError", "ServiceUnavailable"}


def __getattr__(name: str):
    if name in _API:
        from genejobs import api

        return getattr(api, name)
    if name in _ERRORS:
        from genejobs import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'genejobs' has no attribute {name!r}")


__all__ = sorted(_API | _ERRORS)
