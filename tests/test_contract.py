"""The message contract: arrays travel as raw bytes after the JSON; what does not fit is refused."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from genejobs import contract
from genejobs.contract import RunDone
from genejobs.tasks.fit import Selection, packed_selection
from genejobs.worker import inbox
from tests.conftest import wait_until


def _run_done(**changes) -> RunDone:
    selection = Selection((4, 0, 2), (0.5, 0.25, 0.125), (-1.0, 2.0, 0.5), None)
    values = {
        "job_id": "imp-x", "dataset_id": "d", "model": "lr", "seed": 7, "n_train": 10,
        "n_test": 5, "accuracy": 0.8, "precision": 0.8, "recall": 0.8, "f1": 0.8,
        "fit_seconds": 0.1, "n_selected": 3, "worker": "w",
        "importances": packed_selection(selection),
    }  # fmt: skip
    return RunDone(**{**values, **changes})


def test_arrays_round_trip_as_raw_bytes():
    body = _run_done().encode()
    head, _, tail = body.partition(contract.ARRAYS)
    assert b"base64" not in head and len(tail) == 3 * 4 + 3 * 8 + 3 * 8
    message = contract.decode(body)
    packed = message["importances"]
    assert contract.unpack(packed["gene_index"]).tolist() == [4, 0, 2]
    assert contract.unpack(packed["coef"]).tolist() == [-1.0, 2.0, 0.5]
    assert contract.unpack(packed["importance"]).dtype == np.dtype("<f8")


def test_empty_arrays_round_trip():
    # A model that selected no gene (dummy) sends empty arrays.
    message = contract.decode(_run_done(importances=packed_selection(Selection())).encode())
    assert contract.unpack(message["importances"]["gene_index"]).size == 0


def test_a_message_without_arrays_is_plain_json():
    assert json.loads(contract.Ping().encode()) == {"op": "ping"}


def test_an_array_outside_the_message_is_refused():
    body = _run_done().encode()
    head, _, tail = body.partition(contract.ARRAYS)
    with pytest.raises(ValueError, match="outside the message"):
        contract.decode(head + contract.ARRAYS + tail[:10])


def test_base64_arrays_of_earlier_versions_still_unpack():
    old = {"dtype": "<f8", "data": base64.b64encode(np.arange(3.0).tobytes()).decode()}
    assert contract.unpack(old).tolist() == [0.0, 1.0, 2.0]


def test_the_writer_dead_letters_a_message_whose_arrays_do_not_fit(stack):
    conn = inbox.client()
    before = conn.llen(inbox.DEAD_LETTERS)
    head, _, tail = _run_done().encode().partition(contract.ARRAYS)
    conn.lpush(inbox.INBOX, head + contract.ARRAYS + tail[:5])
    wait_until(lambda: conn.llen(inbox.DEAD_LETTERS) == before + 1, timeout=60, what="dead letter")
    assert inbox.request(contract.Ping()) is not None  # the writer goes on
    conn.lpop(inbox.DEAD_LETTERS)  # the stack is shared: leave its dead letters as they were
