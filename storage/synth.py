"""Synthetic datasets, so the demo and quick checks need no outside data."""

from __future__ import annotations

import numpy as np
import pandas as pd


def expression(
    samples: int = 150, genes: int = 200, classes: int = 3, informative: int = 12, seed: int = 7
) -> pd.DataFrame:
    """A samples x genes table of log-expression-like values with a `tissue` label.

    The first `informative` genes (named `SIG01`...) shift with the class; the
    others (`GENE0001`...) are noise, so a good run should rank the SIG genes
    on top.
    """
    if informative > genes:
        raise ValueError("informative genes cannot outnumber genes")
    rng = np.random.default_rng(seed)
    labels = np.arange(samples) % classes
    rng.shuffle(labels)
    values = rng.normal(6.0, 1.0, size=(samples, genes))
    shifts = rng.normal(0.0, 1.2, size=(classes, informative))
    values[:, :informative] += shifts[labels]
    names = [f"SIG{i + 1:02d}" for i in range(informative)] + [
        f"GENE{i + 1:04d}" for i in range(genes - informative)
    ]
    frame = pd.DataFrame(values.round(4), columns=names)
    frame.insert(0, "sample_id", [f"S{i + 1:04d}" for i in range(samples)])
    frame["tissue"] = np.array([f"tissue_{chr(65 + k)}" for k in range(classes)])[labels]
    return frame
