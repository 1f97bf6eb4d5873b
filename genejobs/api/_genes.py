"""Which genes the seeded runs selected: counts, stability, the stable set, reduced datasets.

Each question is about a scope: one job (`job`), or every job on a dataset
and model (`dataset` with `model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genejobs.api._checks import InvalidOption
from genejobs.api._reading import reading

if TYPE_CHECKING:
    import pandas as pd


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

    The frame has one row per gene (most often selected first), the number of
    finished runs counted in `frame.attrs["runs"]` and the scope in words in
    `frame.attrs["scope"]`.
    """
    from genejobs.storage import queries

    with reading() as con:
        where = queries.scope(con, job, dataset, model)
        total, frame = queries.gene_counts(con, where, top, min_importance, class_label)
    frame.attrs["runs"] = total
    frame.attrs["scope"] = where.label
    return frame


@dataclass(frozen=True)
class Stability:
    """The stability of a scope's selections (Nogueira et al. 2018) with its 95% interval."""

    table: pd.DataFrame  # one row per selection (top K, non-zero importance)
    runs: int
    fits: int
    scope: str  # the scope in words
    curve: pd.DataFrame | None  # stability against fits, when asked for


def gene_stability(
    *,
    job: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    top: int | None = 20,
    curve: bool = False,
) -> Stability:
    """How stable the selected gene sets are across fits, for each fit's top K and non-zero genes.

    `curve`: also how the stability converged, against the number of fits.
    """
    from genejobs.storage import queries, selection

    with reading() as con:
        where = queries.scope(con, job, dataset, model)
        table, found = selection.stability_table(con, where, top)
    return Stability(
        table,
        runs=found.runs,
        fits=found.fits,
        scope=where.label,
        curve=selection.curve(found, top) if curve else None,
    )


@dataclass(frozen=True)
class StableGenes:
    """The genes selected in at least a fraction pi of the fits, and the error bound's summary."""

    genes: pd.DataFrame
    summary: dict  # fits, stable genes, the bound and whether it applies, the scope in words


def stable_genes(
    *,
    job: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    pi: float = 0.6,
    top: int | None = None,
) -> StableGenes:
    """The stable set at `pi`, with the stability-selection bound on its false selections."""
    from genejobs.storage import queries, selection

    with reading() as con:
        where = queries.scope(con, job, dataset, model)
        table, summary = selection.stable_set(con, where, pi, top)
    return StableGenes(table, summary)


def compare_genes(first: str, second: str, *, pi: float = 0.6, top: int | None = None) -> dict:
    """Two scopes' stabilities, the test that they differ, and the overlap of their stable sets.

    `first`, `second`: job ids, or `DATASET:MODEL` for every job on both.
    """
    from genejobs.storage import queries, selection

    def scope_of(con, name: str):
        if ":" in name:
            dataset, model = name.rsplit(":", 1)
            return queries.scope(con, None, dataset, model)
        return queries.scope(con, name, None, None)

    with reading() as con:
        scopes = [scope_of(con, name) for name in (first, second)]
        return selection.compare(con, *scopes, pi=pi, top=top)


def filter_genes(
    name: str,
    *,
    job: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    min_count: int | None = None,
    min_fraction: float | None = None,
    top: int | None = None,
) -> dict:
    """Register a reduced dataset, `name`, of the genes selected often enough, and the label.

    A gene is kept when selected in at least `min_count` runs, or in at least
    `min_fraction` of the fits (the stable set). Returns the writer's reply:
    `dataset_id`, `name`, `n_genes`, and `existing` when the same genes and
    samples were registered before.
    """
    from genejobs.contract import FilterDataset
    from genejobs.storage import queries
    from genejobs.storage.datasets import check_name
    from genejobs.worker import inbox

    check_name(name)
    if job is None and (dataset is None or model is None):
        raise InvalidOption("give --job, or both --dataset and --model")
    if (min_count is None) == (min_fraction is None):
        raise InvalidOption("give --min-count or --min-fraction")
    if min_fraction is not None:
        with reading() as con:
            total, _ = queries.gene_counts(con, queries.scope(con, job, dataset, model), top)
        if total == 0:
            raise InvalidOption("no finished runs in that scope yet")
        min_count = max(1, math.ceil(min_fraction * total - 1e-9))
    return inbox.request(
        FilterDataset(
            job_id=job, dataset=dataset, model=model, min_count=min_count, top=top, name=name
        )
    )
