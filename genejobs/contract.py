"""The messages the CLI, the writer and the compute tasks exchange, and their codec.

Requests (a plan, a cancel, a dataset to register) and results (a run done, a
fold scored, a shard spooled) travel to the single writer's inbox as JSON with
numeric arrays as raw bytes after it (`Message.encode`, `decode`). Imported by
every side and importing nothing of the project above the base.
"""

from __future__ import annotations

import base64
import json
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

# Every message on the writer's inbox is one of these, sent as JSON with its
# `op`. The writer checks each against its definition (`decode`) before it
# applies it; a message that does not fit is a dead letter, not a crash.


@dataclass(frozen=True)
class Message:
    """A message to the writer; subclasses name their `op` and fields."""

    op: ClassVar[str]

    def encode(self, **extra: Any) -> bytes:
        """The message as JSON (with `extra` fields, such as a reply list).

        Numeric arrays (numpy) travel after the JSON, as raw little-endian
        bytes: in the JSON each is `{"dtype", "at", "bytes"}`, its place in the
        tail. A run's importances are thousands of numbers; as text (base64 or
        JSON lists) they cost the writer more to parse than to store.
        """
        tail = bytearray()
        arrays: list[str] = []
        head = json.dumps({"op": self.op, **_refs(self.__dict__, tail, arrays), **extra})
        # The separator whenever there are arrays, even empty ones (a model that selected nothing).
        return head.encode() + (ARRAYS + bytes(tail) if arrays else b"")


REQUESTS: dict[str, type[Message]] = {}
RESULTS: dict[str, type[Message]] = {}


def _request(cls):
    REQUESTS[cls.op] = cls
    return cls


def _result(cls):
    RESULTS[cls.op] = cls
    return cls


# Requests: the CLI asks, the writer applies them in a transaction and answers.


@_request
@dataclass(frozen=True)
class RegisterDataset(Message):
    op: ClassVar[str] = "register_dataset"
    meta: dict
    temp_path: str  # relative to the data dir
    name: str
    source: str


@_request
@dataclass(frozen=True)
class FilterDataset(Message):
    op: ClassVar[str] = "filter_dataset"
    job_id: str | None
    dataset: str | None
    model: str | None
    min_count: int
    top: int | None
    name: str


@_request
@dataclass(frozen=True)
class PlanImportance(Message):
    op: ClassVar[str] = "plan_importance"
    job_id: str
    dataset: str
    model: str
    runs: int
    test_size: float
    seed_max: int
    seeds: list[int] | None = None
    scheme: str = "split"  # or "pairs": each seed fits both halves of a half split
    until_stable: dict | None = None  # run in rounds until the rule holds (storage.rounds)


@_request
@dataclass(frozen=True)
class PlanSearch(Message):
    op: ClassVar[str] = "plan_search"
    job_id: str
    dataset: str
    include: list[str] | None
    exclude: list[str] | None
    folds: int
    sort: str
    session_id: int | None
    train_size: float


@_request
@dataclass(frozen=True)
class PlanEvaluate(Message):
    op: ClassVar[str] = "plan_evaluate"
    job_id: str
    model_id: str
    dataset: str | None
    split_seeds: list[int] | None
    runs: int
    hyper_seed: int | None


@_request
@dataclass(frozen=True)
class PlanShap(Message):
    op: ClassVar[str] = "plan_shap"
    job_id: str
    source: str
    input_path: str
    id_cols: list[str]
    partition_col: str | None
    features: list[str]
    n_outputs: int
    n_rows: int
    shard_rows: int
    zero_is_present: bool
    engine: str
    models: list[dict]
    groups: dict | None = None  # feature -> its group (`shap run --groups`)
    classes: list[str] | None = None  # class labels by recorded class (see shap_input)


@_request
@dataclass(frozen=True)
class FinalizeModel(Message):
    """Save a search's model (any, not only the best) as the best one is saved."""

    op: ClassVar[str] = "finalize_model"
    model_id: str


@_request
@dataclass(frozen=True)
class CancelJob(Message):
    op: ClassVar[str] = "cancel_job"
    job_id: str


@_request
@dataclass(frozen=True)
class DeleteJob(Message):
    """Remove a job that runs no more, and every row it recorded."""

    op: ClassVar[str] = "delete_job"
    job_id: str


@_request
@dataclass(frozen=True)
class RetryJob(Message):
    op: ClassVar[str] = "retry_job"
    job_id: str
    include_pending: bool = False
    include_cancelled: bool = False


@_request
@dataclass(frozen=True)
class Ping(Message):
    op: ClassVar[str] = "ping"


# Results: a compute task reports how its unit ended.


@_result
@dataclass(frozen=True)
class RunDone(Message):
    op: ClassVar[str] = "run_done"
    job_id: str
    dataset_id: str
    model: str
    seed: int
    n_train: int
    n_test: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    fit_seconds: float
    n_selected: int
    worker: str
    importances: dict  # packed arrays: gene_index, importance, coef, class_coefs
    importances_b: dict | None = None  # a `pairs` run: the second half's selection


@_result
@dataclass(frozen=True)
class RunFailed(Message):
    op: ClassVar[str] = "run_failed"
    job_id: str
    dataset_id: str
    model: str
    seed: int
    error: str
    worker: str


@_result
@dataclass(frozen=True)
class FoldScored(Message):
    op: ClassVar[str] = "fold_scored"
    job_id: str
    worker: str
    model: str
    fold: int
    failed: bool
    error: str | None
    scores: dict[str, float]
    fit_seconds: float
    score_seconds: float
    estimator: str
    params: str


@_result
@dataclass(frozen=True)
class ModelFinalized(Message):
    op: ClassVar[str] = "model_finalized"
    job_id: str
    model_id: str
    spool_path: str
    sha256: str
    pred_accuracy: float
    fit_seconds: float


@_result
@dataclass(frozen=True)
class ModelFinalizeFailed(Message):
    op: ClassVar[str] = "model_finalize_failed"
    job_id: str
    model_id: str
    error: str


@_result
@dataclass(frozen=True)
class TestDone(Message):
    op: ClassVar[str] = "test_done"
    job_id: str
    test_id: str
    worker: str
    result: dict


@_result
@dataclass(frozen=True)
class TestFailed(Message):
    op: ClassVar[str] = "test_failed"
    job_id: str
    test_id: str
    error: str
    worker: str


@_result
@dataclass(frozen=True)
class ShardDone(Message):
    op: ClassVar[str] = "shap_shard_done"
    job_id: str
    shard: int
    rows_path: str
    values_path: str
    n_rows: int
    engine: str
    additivity_failures: int
    max_additivity_error: float
    seconds: float
    worker: str


@_result
@dataclass(frozen=True)
class ShardFailed(Message):
    op: ClassVar[str] = "shap_shard_failed"
    job_id: str
    shard: int
    error: str
    worker: str


RUN_DONE, RUN_FAILED = RunDone.op, RunFailed.op
FOLD_SCORED = FoldScored.op
MODEL_FINALIZED, MODEL_FINALIZE_FAILED = ModelFinalized.op, ModelFinalizeFailed.op
TEST_DONE, TEST_FAILED = TestDone.op, TestFailed.op
SHARD_DONE, SHARD_FAILED = ShardDone.op, ShardFailed.op
RESULT_OPS = frozenset(RESULTS)

_REQUIRED = {
    op: frozenset(f.name for f in fields(cls) if f.default is MISSING)
    for op, cls in {**REQUESTS, **RESULTS}.items()
}


# Between a message's JSON and its arrays' bytes (JSON as json.dumps writes it has no newline).
ARRAYS = b"\n"
_REF = frozenset(("dtype", "at", "bytes"))


def _refs(values: dict, tail: bytearray, arrays: list[str]) -> dict:
    """`values` with each numpy array moved to `tail` and replaced by a reference to it
    (its key added to `arrays`)."""
    import numpy as np

    out = {}
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            data = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
            out[key] = {"dtype": data.dtype.str, "at": len(tail), "bytes": data.nbytes}
            tail.extend(data.tobytes())
            arrays.append(key)
        elif isinstance(value, dict):
            out[key] = _refs(value, tail, arrays)
        else:
            out[key] = value
    return out


def _arrays(values: dict, tail: memoryview) -> dict:
    """The inverse of `_refs`: references replaced by read-only arrays over `tail`."""
    import numpy as np

    for key, value in values.items():
        if isinstance(value, dict):
            if value.keys() == _REF:
                dtype = np.dtype(value["dtype"])
                at, size = int(value["at"]), int(value["bytes"])
                if at < 0 or size < 0 or at + size > len(tail) or size % dtype.itemsize:
                    raise ValueError(f"array {key!r} lies outside the message")
                values[key] = np.frombuffer(tail, dtype, size // dtype.itemsize, at)
            else:
                _arrays(value, tail)
    return values


def typed(message: dict[str, Any]) -> Message:
    """A decoded request or result as its frozen message (fields beyond it, such as the
    reply list, left out)."""
    cls = {**REQUESTS, **RESULTS}[message["op"]]
    return cls(**{f.name: message[f.name] for f in fields(cls) if f.name in message})


def decode(raw: bytes | str) -> dict[str, Any]:
    """A message from the inbox as a dict, checked against its definition.

    Raises ValueError for text that is not JSON, an unknown `op`, or missing fields.
    """
    if isinstance(raw, str):
        raw = raw.encode()
    head, split, tail = raw.partition(ARRAYS)
    message = json.loads(head)
    if split and isinstance(message, dict):
        _arrays(message, memoryview(tail))
    if not isinstance(message, dict):
        raise ValueError("a message must be a JSON object")
    required = _REQUIRED.get(message.get("op"))
    if required is None:
        raise ValueError(f"unknown operation {message.get('op')!r}")
    missing = required.difference(message)
    if missing:
        raise ValueError(f"{message['op']} lacks {', '.join(sorted(missing))}")
    return message


def pack(values, dtype: str):
    """A numeric array as a message carries it: contiguous, little-endian (see contract.encode)."""
    import numpy as np

    return np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))


def unpack(packed):
    """The array a message carried: as decoded, or base64 text from messages of earlier versions."""
    import numpy as np

    if isinstance(packed, np.ndarray):
        return packed
    return np.frombuffer(base64.b64decode(packed["data"]), dtype=np.dtype(packed["dtype"]))
