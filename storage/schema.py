"""The DuckDB schema of the results file.

Uniqueness that matters is enforced by the database, not only by Python:
`runs` has PRIMARY KEY (dataset_id, model, seed), so no path (a retry, a
redelivered task, two jobs at once) can record a seed twice for a dataset and
model. Importance rows carry no index: they are written in the same
transaction that moves their run to `done`, and only then, so the run's status
guards them.
"""

from enum import StrEnum


class RunStatus(StrEnum):
    """Where one seeded run stands. `done` is final."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


DDL = [
    """
    CREATE TABLE IF NOT EXISTS datasets (
        dataset_id    VARCHAR PRIMARY KEY,   -- content hash (first 16 hex chars)
        name          VARCHAR NOT NULL UNIQUE,
        path          VARCHAR NOT NULL,      -- Parquet file under the data dir
        label_col     VARCHAR NOT NULL,
        id_col        VARCHAR,
        n_samples     INTEGER NOT NULL,
        n_genes       INTEGER NOT NULL,
        classes       VARCHAR[] NOT NULL,
        class_counts  INTEGER[] NOT NULL,
        genes         VARCHAR[] NOT NULL,
        source        VARCHAR,               -- the file it came from, or how it was derived
        parent_id     VARCHAR,               -- for reduced datasets
        created_at    TIMESTAMP NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS jobs (
        job_id        VARCHAR PRIMARY KEY,
        kind          VARCHAR NOT NULL,
        dataset_id    VARCHAR NOT NULL,
        model         VARCHAR,
        params        JSON NOT NULL,
        n_runs        INTEGER NOT NULL,
        cancelled     BOOLEAN NOT NULL DEFAULT false,
        created_at    TIMESTAMP NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS runs (
        dataset_id    VARCHAR NOT NULL,
        model         VARCHAR NOT NULL,
        seed          BIGINT NOT NULL,
        job_id        VARCHAR NOT NULL,
        status        VARCHAR NOT NULL,
        test_size     DOUBLE NOT NULL,
        accuracy      DOUBLE,
        precision     DOUBLE,
        recall        DOUBLE,
        f1            DOUBLE,
        n_train       INTEGER,
        n_test        INTEGER,
        n_selected    INTEGER,
        fit_seconds   DOUBLE,
        error         VARCHAR,
        worker        VARCHAR,
        attempts      INTEGER NOT NULL DEFAULT 0,
        enqueued_at   TIMESTAMP NOT NULL DEFAULT now(),
        finished_at   TIMESTAMP,
        PRIMARY KEY (dataset_id, model, seed)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS importances (
        job_id        VARCHAR NOT NULL,
        dataset_id    VARCHAR NOT NULL,
        model         VARCHAR NOT NULL,
        seed          BIGINT NOT NULL,
        class_label   VARCHAR,               -- NULL: the summary over classes
        gene          VARCHAR NOT NULL,
        importance    DOUBLE NOT NULL,       -- feature_importances_ or |coef|
        coef          DOUBLE,                -- signed coefficient (linear models only)
        rank          INTEGER NOT NULL       -- 1 = most important in this run
    )
    """,
]
