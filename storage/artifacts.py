"""Where the writer keeps the models searches saved, and how it checks a file's bytes.

A compute worker writes a finalized model into the spool; the writer moves it
to `models/<model_id>.joblib` under the data dir once its sha256 matches the
one the worker reported (see `tasks.artifacts` for writing and loading).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MODELS_DIR = "models"  # under the data dir


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
