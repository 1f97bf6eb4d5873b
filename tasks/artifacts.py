"""Model artifacts: fitted pipelines the service wrote itself, checked by hash before loading.

A finalized model is written with joblib by a compute worker into the spool
(temporary name, then rename), and the writer moves it to
`models/<model_id>.joblib` and records its sha256 in DuckDB. Loading reads the
bytes once, compares their hash with the recorded one, and only then
unpickles them: a file that anyone else put or changed there is refused.
Files handed in by users are never loaded this way.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from pathlib import Path
from typing import Any

from genejobs.errors import GenejobsError


def quiet_pycaret() -> None:
    """Send the log PyCaret opens at import time nowhere, before it is imported.

    Unpickling a finalized pipeline imports PyCaret too, so loading calls this.
    """
    os.environ.setdefault("PYCARET_CUSTOM_LOGGING_PATH", os.devnull)


def write_artifact(obj: Any, directory: Path, stem: str) -> tuple[Path, str]:
    """Dump `obj` to a new file in `directory`; return its path and sha256."""
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    payload = buffer.getvalue()
    temp = directory / f".{stem}.{uuid.uuid4().hex}.tmp"
    temp.write_bytes(payload)
    final = directory / f"{stem}.{uuid.uuid4().hex[:8]}.joblib"
    os.replace(temp, final)
    return final, hashlib.sha256(payload).hexdigest()


def load_artifact(path: Path, sha256: str) -> Any:
    """Unpickle a model file only if its bytes have the hash the service recorded."""
    import joblib

    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise GenejobsError(f"cannot read the model file {path}: {exc.strerror}") from None
    if hashlib.sha256(payload).hexdigest() != sha256:
        raise GenejobsError(
            f"{path} does not have the sha256 recorded when the service wrote it; refusing to load"
        )
    quiet_pycaret()
    return joblib.load(io.BytesIO(payload))
