"""What a SHAP job reads: the table's rows matched to their models, validated before any write.

`prepare_job` checks everything a shard could trip on (feature columns the
models need, model files, partition values with no model, an empty table) and
builds the job's input: one row per table row, in shard order (by model, then
row), with its key, partition, model id and the features in the job's order.
It also picks each model's engine (`auto`: the fastest that equals the
reference on CHECK_ROWS of the model's own rows, see `shap_engines.check_engine`)
into the model's spec, which the shards follow, and the rows per shard that
suit those engines (`shard_rows_for`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genejobs.config import settings
from genejobs.errors import InputError
from genejobs.storage.datasets import listed
from genejobs.tasks.shap_engines import check_engine, choose_engine, woodelf_unfit
from genejobs.tasks.tree_models import (
    GENEJOBS_FORMAT,
    GENEJOBS_PREFIX,
    RUN_FORMAT,
    TreeModel,
    describe_model,
    load_model,
    load_spec,
    sniff_format,
)

# Opens the results file read-only (the API's `reading`).
Reading = Callable[[], AbstractContextManager]

KEY_SEPARATOR = "|"
CHECK_ROWS = 200  # rows of each model's own, spread over them, that its engine is checked on
# Rows per shard by engine: woodelf pays ~0.2 s per model and shard (300 trees) beside
# ~12,000 rows/s, so 25,000 rows keep that under a tenth; the others pay almost nothing.
SHARD_ROWS = {"woodelf": 25_000}
DEFAULT_SHARD_ROWS = 10_000
MIN_SHARDS = 8  # a small job still spreads over the workers
MIN_SHARD_ROWS = 1_000


@dataclass(frozen=True)
class ModelChoice:
    """A model file (or reference) and the partition values it explains (None: every row)."""

    source: str
    partitions: tuple[str, ...] | None


@dataclass(frozen=True)
class PreparedShapJob:
    """A validated SHAP job, ready to be written to the data dir and planned."""

    # row_id, source_row, row_key, partition, model_id, f0..f{F-1}, in shard order: rows by
    # model, then by their place in the given table (source_row); row_id counts them.
    input: pd.DataFrame
    features: tuple[str, ...]
    # model_id, source, format, family, partitions, columns (+ path, sha256 for a genejobs model)
    models: tuple[dict, ...]
    n_outputs: int
    id_cols: tuple[str, ...]
    partition_col: str | None
    # Class labels by recorded class (a binary job's both, its values recorded as class 1).
    classes: tuple[str, ...] | None = None
    # Per model, the engine it runs and why: "model m2: woodelf differs ...; using fast".
    notes: tuple[str, ...] = ()
    # Rows per shard that suit the models' engines, for a job whose user gives none.
    shard_rows: int = DEFAULT_SHARD_ROWS


def parse_model_option(text: str, partitioned: bool) -> ModelChoice:
    """`PATH`, or `V1,V2,...=PATH` when the models are partitioned."""
    if partitioned:
        values, sep, path = text.partition("=")
        if not sep or not values.strip() or not path.strip():
            raise InputError(
                f"--model '{text}': with --partition-col, give VALUES=PATH (e.g. 1,3,8=m0.json)"
            )
        return ModelChoice(path.strip(), tuple(v.strip() for v in values.split(",") if v.strip()))
    return ModelChoice(text.strip(), None)


def read_manifest(path: Path) -> list[ModelChoice]:
    """A manifest: one model per line, `VALUES<TAB>PATH` or `VALUES=PATH`; `#` starts a comment.

    Relative model paths are relative to the manifest's folder.
    """
    if not path.is_file():
        raise InputError(f"no such manifest file: {path}")
    choices = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        values, sep, model = line.partition("\t") if "\t" in line else line.partition("=")
        if not sep or not model.strip():
            raise InputError(f"{path}:{number}: expected VALUES<TAB>PATH or VALUES=PATH")
        model_path = Path(model.strip())
        if not model_path.is_absolute() and not model.strip().startswith("genejobs:"):
            model_path = path.parent / model_path
        choices.append(
            ModelChoice(
                str(model_path) if not model.strip().startswith("genejobs:") else model.strip(),
                tuple(v.strip() for v in values.split(",") if v.strip()),
            )
        )
    if not choices:
        raise InputError(f"{path} names no models")
    return choices


def _load(choice: ModelChoice, reading: Reading | None) -> tuple[str, TreeModel, dict]:
    """A model's format, the model, and where a task finds it if not in the job's copy.

    `genejobs:<model id>` names the model a search finalized and saved: its
    file stays where the service wrote it, loaded only with its recorded
    sha256. `genejobs:<job id>:<seed>` names a seeded importance run, whose
    model is fitted again from its dataset, seed and test size.
    """
    if not choice.source.startswith(GENEJOBS_PREFIX):
        fmt = sniff_format(Path(choice.source))
        return fmt, describe_model(choice.source, fmt), {}
    from genejobs.storage import model_queries, queries

    if reading is None:
        raise InputError(f"{choice.source} names a genejobs model: open the results to read it")
    name = choice.source[len(GENEJOBS_PREFIX) :]
    with reading() as con:
        if ":" in name:
            job_id, _, seed = name.rpartition(":")
            where = {"format": RUN_FORMAT, **queries.run_model(con, job_id, seed)}
        else:
            path, sha256 = model_queries.artifact(con, name)
            where = {"format": GENEJOBS_FORMAT, "path": path, "sha256": sha256}
    model = load_spec(where, settings().home)
    return where.pop("format"), model, where


def prepare_job(
    frame: pd.DataFrame,
    choices: list[ModelChoice],
    partition_col: str | None = None,
    id_cols: list[str] | None = None,
    features: list[str] | None = None,
    engine: str = "auto",
    exclude: tuple[str, ...] = (),
    source: str = "the table",
    class_names: list[str] | None = None,
    reading: Reading | None = None,
) -> PreparedShapJob:
    """Validate the table against its models and build the job's input; raise InputError.

    `reading` opens the results file, where `genejobs:` models are looked up.
    """
    if frame.empty:
        raise InputError(f"{source} has no rows")
    if not choices:
        raise InputError("give at least one --model (or a --manifest)")
    id_cols = list(id_cols or [])
    for column in [*id_cols, *([partition_col] if partition_col else [])]:
        if column not in frame.columns:
            raise InputError(f"column '{column}' is not in {source}")
    if partition_col is None and len(choices) > 1:
        raise InputError("several models need --partition-col to say which rows each explains")
    loaded: list[tuple[ModelChoice, str, TreeModel, dict]] = []
    for choice in choices:
        fmt, model, where = _load(choice, reading)
        choose_engine(model, engine)
        loaded.append((choice, fmt, model, where))
    n_outputs = {m.n_outputs for _, _, m, _ in loaded}
    if len(n_outputs) > 1:
        raise InputError("the models explain different numbers of classes")
    classes = _class_labels(loaded, n_outputs.copy().pop(), class_names)
    named = [m for _, _, m, _ in loaded if m.features is not None]
    if features is None:
        if named:
            features = list(named[0].features)
        else:
            skip = set(id_cols) | {partition_col} | set(exclude)
            features = [
                c
                for c in frame.columns
                if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
            ]
    if len(set(features)) != len(features):
        raise InputError("--features names a column twice")
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise InputError(
            f"{source} lacks {len(missing)} feature columns the model needs: {listed(missing)}"
        )
    models = []
    for model_id, (choice, fmt, model, where) in enumerate(loaded):
        if model.features is not None:
            unknown = [f for f in model.features if f not in features]
            if unknown:
                lacking = [f for f in unknown if f not in frame.columns]
                if lacking:
                    raise InputError(
                        f"{source} lacks {len(lacking)} feature columns the model "
                        f"{choice.source} needs: {listed(lacking)}"
                    )
                raise InputError(
                    f"model {choice.source} uses features outside --features: {listed(unknown)}"
                )
            if len(model.features) != len(features):
                raise InputError(
                    f"model {choice.source} uses {len(model.features)} features, the job "
                    f"{len(features)}; every model must use the same features"
                )
            columns = [features.index(f) for f in model.features]
        else:
            if model.n_features != len(features):
                raise InputError(
                    f"model {choice.source} has {model.n_features} unnamed features but "
                    f"{len(features)} feature columns were chosen; name them with --features"
                )
            columns = list(range(len(features)))
        models.append(
            {
                "model_id": model_id,
                "source": choice.source,
                "format": fmt,
                "family": model.family,
                "partitions": list(choice.partitions) if choice.partitions else None,
                "columns": columns,
                **where,
            }
        )
    block = frame[features]
    not_numeric = [
        c
        for c in features
        if not pd.api.types.is_numeric_dtype(block[c]) or pd.api.types.is_bool_dtype(block[c])
    ]
    if not_numeric:
        raise InputError(f"feature columns that are not numeric: {listed(not_numeric)}")
    model_of_row = _model_of_rows(frame, partition_col, models)
    if id_cols:
        keys = frame[id_cols[0]].astype(str)
        for column in id_cols[1:]:
            keys = keys + KEY_SEPARATOR + frame[column].astype(str)
        if keys.duplicated().any():
            raise InputError(
                f"the id columns {', '.join(id_cols)} do not identify rows: "
                f"{listed(keys[keys.duplicated()].unique())} repeat"
            )
    else:
        keys = pd.Series(np.arange(len(frame)).astype(str))
    built = pd.DataFrame(
        {
            "source_row": np.arange(len(frame), dtype=np.int32),
            "row_key": keys.to_numpy(dtype=object),
            "partition": (
                frame[partition_col].astype(str).to_numpy(dtype=object)
                if partition_col
                else np.full(len(frame), None, dtype=object)
            ),
            "model_id": model_of_row.astype(np.int16),
        }
    )
    values = block.to_numpy(dtype=np.float32)
    built = pd.concat(
        [built, pd.DataFrame(values, columns=[f"f{j}" for j in range(values.shape[1])])], axis=1
    )
    # One model's rows side by side, numbered in that order: a shard mostly needs one
    # model, and a feature's stored values ordered by row_id compress to almost nothing.
    order = np.lexsort((built["source_row"].to_numpy(), built["model_id"].to_numpy()))
    built = pd.concat(
        [pd.DataFrame({"row_id": np.arange(len(built), dtype=np.int32)}),
         built.iloc[order].reset_index(drop=True)],
        axis=1,
    )  # fmt: skip
    notes = _choose_engines(loaded, models, values, model_of_row, engine)
    return PreparedShapJob(
        input=built,
        features=tuple(features),
        models=tuple(models),
        n_outputs=n_outputs.pop(),
        id_cols=tuple(id_cols),
        partition_col=partition_col,
        classes=classes,
        notes=tuple(notes),
        shard_rows=shard_rows_for(models, model_of_row),
    )


def _choose_engines(loaded, models, values, model_of_row, engine: str) -> list[str]:
    """Each model's engine and its reason into its spec, checked on rows of its own.

    The models are checked side by side: a check waits mostly on the booster's
    own TreeSHAP (the reference), which lets go of the GIL.
    """

    def check(spec: dict, entry: tuple):
        choice, fmt, model, _ = entry
        rows = np.flatnonzero(model_of_row == spec["model_id"])
        if len(rows) > CHECK_ROWS:
            rows = rows[np.linspace(0, len(rows) - 1, CHECK_ROWS).astype(int)]
        if engine == "auto" and model.model is None and woodelf_unfit(model) is None:
            model = load_model(choice.source, fmt)  # the check runs it: more than its JSON
        return check_engine(model, values[rows][:, spec["columns"]], engine)

    with ThreadPoolExecutor(max_workers=max(1, min(len(models), os.cpu_count() or 1))) as pool:
        picked = list(pool.map(check, models, loaded))
    for spec, choice in zip(models, picked, strict=True):
        spec["engine"], spec["engine_note"] = choice.engine, choice.note
    return [f"model m{spec['model_id']}: {spec['engine_note']}" for spec in models]


def shard_rows_for(models: list[dict], model_of_row: np.ndarray) -> int:
    """Rows per shard for the engine that explains most of the rows, and at least MIN_SHARDS."""
    rows_by_engine: dict[str, int] = {}
    for spec in models:
        count = int((model_of_row == spec["model_id"]).sum())
        engine = spec.get("engine", "auto")
        rows_by_engine[engine] = rows_by_engine.get(engine, 0) + count
    engine = max(rows_by_engine, key=rows_by_engine.get) if rows_by_engine else "auto"
    spread = -(-len(model_of_row) // MIN_SHARDS)
    return max(MIN_SHARD_ROWS, min(SHARD_ROWS.get(engine, DEFAULT_SHARD_ROWS), spread))


def _class_labels(loaded, n_outputs: int, given: list[str] | None) -> tuple[str, ...] | None:
    """The job's class labels: `--class-names`, else the models' own (which must agree).

    A binary model (one output) has two labels, negative then positive; its
    values are recorded as class 1, the positive one.
    """
    expected = 2 if n_outputs == 1 else n_outputs
    if given is not None:
        if len(given) != expected or len(set(given)) != len(given) or not all(given):
            raise InputError(
                f"--class-names needs {expected} distinct names (the models' classes in order"
                + (", negative then positive" if n_outputs == 1 else "")
                + f"), got {len(given)}"
            )
        return tuple(given)
    known = {m.classes for _, _, m, _ in loaded if m.classes is not None}
    if len(known) > 1:
        raise InputError(
            "the models name their classes differently ("
            + "; ".join(", ".join(c) for c in sorted(known))
            + "); one job explains one set of classes"
        )
    labels = known.pop() if known else None
    return labels if labels is not None and len(labels) == expected else None


def _model_of_rows(
    frame: pd.DataFrame, partition_col: str | None, models: list[dict]
) -> np.ndarray:
    if partition_col is None:
        return np.zeros(len(frame), dtype=np.int16)
    owner: dict[str, int] = {}
    for spec in models:
        if not spec["partitions"]:
            raise InputError(f"model {spec['source']} names no partition values")
        for value in spec["partitions"]:
            if value in owner:
                raise InputError(f"partition value '{value}' is given to two models")
            owner[value] = spec["model_id"]
    values = frame[partition_col].astype(str)
    unmatched = sorted(set(values) - set(owner))
    if unmatched:
        count = int(values.isin(unmatched).sum())
        raise InputError(
            f"{count} rows have a {partition_col} value with no model: {listed(unmatched)}"
        )
    return values.map(owner).to_numpy()
