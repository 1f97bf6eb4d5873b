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
        gene          VARCHAR NOT NULL,
        importance    DOUBLE NOT NULL,       -- feature_importances_, |coef|, or the mean
                                             -- |coef| over classes (multiclass linear)
        coef          DOUBLE,                -- signed coefficient (linear models only; for
                                             -- multiclass the one of largest magnitude)
        rank          INTEGER NOT NULL,      -- 1 = most important in this run
        class_coefs   DOUBLE[]               -- multiclass linear: signed coefficient per
                                             -- class, in the order of datasets.classes
    )
    """,
]


# Model search and holdout evaluation (`genejobs search`, `genejobs evaluate`) ---------------
#
# A search is a job of (model, fold) units in `search_folds`; when its last
# fold is recorded the writer ranks the models into `model_runs` (one row per
# model, the seeds' pycaret_results.csv fields). Fold and test rows move
# pending -> done/failed once, guarded by their primary keys and status.

MODEL_DDL = [
    """
    CREATE TABLE IF NOT EXISTS model_runs (
        model_id       VARCHAR PRIMARY KEY,   -- <job id>-<PyCaret model id>
        job_id         VARCHAR NOT NULL,
        dataset_id     VARCHAR NOT NULL,
        model          VARCHAR NOT NULL,      -- PyCaret's id (lr, rf, ...)
        name           VARCHAR NOT NULL,      -- PyCaret's display name
        position       INTEGER NOT NULL,      -- order among the candidates
        status         VARCHAR NOT NULL,      -- pending, done, failed
        run_date       TIMESTAMP NOT NULL DEFAULT now(),
        split          DOUBLE NOT NULL,       -- train size
        setup          VARCHAR NOT NULL,      -- setup parameters (JSON)
        session_id     BIGINT NOT NULL,
        folds          INTEGER NOT NULL,
        rank           INTEGER,               -- 1 = best, NULL for a failed model
        best           BOOLEAN NOT NULL DEFAULT false,
        accuracy DOUBLE, auc DOUBLE, recall DOUBLE, precision DOUBLE,
        f1 DOUBLE, kappa DOUBLE, mcc DOUBLE,  -- means over folds, rounded to 4 as PyCaret
        accuracy_sd DOUBLE, auc_sd DOUBLE, recall_sd DOUBLE, precision_sd DOUBLE,
        f1_sd DOUBLE, kappa_sd DOUBLE, mcc_sd DOUBLE,
        fit_seconds    DOUBLE,                -- PyCaret's TT (Sec): per fold
        error          VARCHAR,
        estimator      VARCHAR,               -- module.Class
        params         VARCHAR,               -- constructor parameters (JSON)
        pred_accuracy  DOUBLE,                -- best model: accuracy on the setup's holdout
        artifact_path  VARCHAR,               -- best model, finalized: file under the data dir
        artifact_sha256 VARCHAR,
        finalize_error VARCHAR,
        finished_at    TIMESTAMP
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS search_folds (
        job_id         VARCHAR NOT NULL,
        model          VARCHAR NOT NULL,
        fold           INTEGER NOT NULL,
        status         VARCHAR NOT NULL,      -- pending, done, failed
        accuracy DOUBLE, auc DOUBLE, recall DOUBLE, precision DOUBLE,
        f1 DOUBLE, kappa DOUBLE, mcc DOUBLE,  -- unrounded; 0 for a failed fold
        fit_seconds    DOUBLE,
        score_seconds  DOUBLE,
        error          VARCHAR,
        worker         VARCHAR,
        finished_at    TIMESTAMP,
        PRIMARY KEY (job_id, model, fold)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS test_results (
        test_id        VARCHAR PRIMARY KEY,
        model_id       VARCHAR NOT NULL,
        job_id         VARCHAR NOT NULL,
        dataset_id     VARCHAR NOT NULL,
        split_seed     BIGINT NOT NULL,
        hyper_seed     BIGINT NOT NULL,
        test_size      DOUBLE NOT NULL,
        status         VARCHAR NOT NULL,      -- pending, done, failed
        accuracy DOUBLE, precision DOUBLE, recall DOUBLE, f1 DOUBLE,
        roc_auc        DOUBLE,                -- one-vs-rest, weighted, for multiclass
        confusion      INTEGER[][],           -- rows: true class, columns: predicted
        n_train        INTEGER,
        n_test         INTEGER,
        fit_seconds    DOUBLE,
        error          VARCHAR,
        worker         VARCHAR,
        finished_at    TIMESTAMP,
        UNIQUE (model_id, split_seed, hyper_seed)
    )
    """,
]
DDL += MODEL_DDL

# SHAP jobs (tasks/shap_shard.py writes shards; storage/shap_store.py ingests them).
# A shard's rows are written in the transaction that moves it pending -> done,
# and only then, so its status guards them as a run's status guards importances.
# Values are kept long, one row per (row, class, feature), in float32, with the
# feature names in `shap_features`: the views are scans and GROUP BYs over
# feature_id, which DuckDB runs over tens of millions of rows in well under a second.
SHAP_DDL = [
    """
    CREATE TABLE IF NOT EXISTS shap_jobs (
        job_id          VARCHAR PRIMARY KEY,
        source          VARCHAR NOT NULL,    -- the table it explains (path or dataset name)
        input_path      VARCHAR NOT NULL,    -- the job's input Parquet, relative to the data dir
        id_cols         VARCHAR[] NOT NULL,
        partition_col   VARCHAR,
        n_rows          INTEGER NOT NULL,
        n_features      SMALLINT NOT NULL,
        n_outputs       SMALLINT NOT NULL,   -- 1: binary (positive class); K: multiclass
        shard_rows      INTEGER NOT NULL,
        n_shards        INTEGER NOT NULL,
        zero_is_present BOOLEAN NOT NULL,
        engine          VARCHAR NOT NULL,
        params          JSON NOT NULL,
        created_at      TIMESTAMP NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS shap_features (
        job_id      VARCHAR NOT NULL,
        feature_id  SMALLINT NOT NULL,
        feature     VARCHAR NOT NULL,
        PRIMARY KEY (job_id, feature_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS shap_models (
        job_id      VARCHAR NOT NULL,
        model_id    SMALLINT NOT NULL,
        source      VARCHAR NOT NULL,        -- the file or reference the user gave
        path        VARCHAR NOT NULL,        -- the job's copy, relative to the data dir
        format      VARCHAR NOT NULL,
        family      VARCHAR NOT NULL,        -- xgboost, lightgbm, rf, et, gbc, dt
        partitions  VARCHAR[],               -- partition values it explains (NULL: all rows)
        PRIMARY KEY (job_id, model_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS shap_shards (
        job_id               VARCHAR NOT NULL,
        shard                INTEGER NOT NULL,
        status               VARCHAR NOT NULL,
        first_row            INTEGER NOT NULL,  -- position in the job's input file
        n_rows               INTEGER NOT NULL,
        engine               VARCHAR,
        additivity_failures  INTEGER,           -- rows where base + sum(SHAP) misses the output
        max_additivity_error DOUBLE,
        seconds              DOUBLE,
        error                VARCHAR,
        worker               VARCHAR,
        attempts             INTEGER NOT NULL DEFAULT 0,
        finished_at          TIMESTAMP,
        rows_path            VARCHAR,           -- a finished shard's spool files while it
        values_path          VARCHAR,           -- waits to be ingested with others
        PRIMARY KEY (job_id, shard)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS shap_rows (
        job_id            VARCHAR NOT NULL,
        row_id            INTEGER NOT NULL,     -- the row's position in the job's input
        source_row        INTEGER,              -- its position in the table the job was given
        class             SMALLINT NOT NULL,    -- the class explained (1 for binary)
        row_key           VARCHAR NOT NULL,     -- the id columns joined with '|'
        partition         VARCHAR,
        model_id          SMALLINT NOT NULL,
        base_value        REAL NOT NULL,        -- the model's expected value
        output            REAL NOT NULL,        -- raw output (log-odds for boosters)
        probability       REAL,
        additivity_error  REAL NOT NULL,        -- |base + sum(SHAP) - output|
        top_feature       SMALLINT NOT NULL,    -- the feature of largest |SHAP|
        top_present       BOOLEAN NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS shap_values (
        job_id      VARCHAR NOT NULL,
        row_id      INTEGER NOT NULL,
        class       SMALLINT NOT NULL,
        model_id    SMALLINT NOT NULL,
        feature_id  SMALLINT NOT NULL,
        value       REAL,                       -- NULL where the table had no value
        present     BOOLEAN NOT NULL,
        shap        REAL NOT NULL
    )
    """,
    # Files made by earlier versions: columns added since.
    "ALTER TABLE shap_shards ADD COLUMN IF NOT EXISTS rows_path VARCHAR",
    "ALTER TABLE shap_shards ADD COLUMN IF NOT EXISTS values_path VARCHAR",
    "ALTER TABLE shap_rows ADD COLUMN IF NOT EXISTS source_row INTEGER",
    "ALTER TABLE shap_jobs ADD COLUMN IF NOT EXISTS cancelled BOOLEAN DEFAULT false",
    # `shap run --groups`: the feature's group, whose SHAP values add up per prediction.
    "ALTER TABLE shap_features ADD COLUMN IF NOT EXISTS feature_group VARCHAR",
    # `genejobs models finalize` asked for this model to be saved too.
    "ALTER TABLE model_runs ADD COLUMN IF NOT EXISTS finalize_requested BOOLEAN DEFAULT false",
    # A `pairs` job fits both halves of each seed's split: 0 and 1 (NULL: one fit per run).
    "ALTER TABLE importances ADD COLUMN IF NOT EXISTS half SMALLINT",
]
DDL += SHAP_DDL

# The writer that may commit: each writer, once it holds the lock in Redis,
# puts its identity here, and every transaction of a writer first checks that
# it is still the one named. A writer that lost its lock (a stall longer than
# the lock's life) and was replaced commits nothing more.
DDL.append(
    """
    CREATE TABLE IF NOT EXISTS writer_fence (
        holder   VARCHAR NOT NULL,
        since    TIMESTAMP NOT NULL DEFAULT now()
    )
    """
)


def tables() -> dict[str, list[str]]:
    """Each table's columns, in order: the DDL above, run on an empty in-memory database."""
    import duckdb

    con = duckdb.connect()
    try:
        for statement in DDL:
            con.execute(statement)
        rows = con.execute(
            "SELECT table_name, list(column_name ORDER BY ordinal_position) "
            "FROM information_schema.columns GROUP BY table_name ORDER BY table_name"
        ).fetchall()
    finally:
        con.close()
    return {table: columns for table, columns in rows if table != "writer_fence"}
