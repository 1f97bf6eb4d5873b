"""Datasets: register a file, list what is registered, write synthetic ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from genejobs.api._reading import reading

# The CLI's --impute choices; the one module here that imports pandas with itself.
from genejobs.storage.datasets import IMPUTERS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IMPUTERS",
    "add_dataset",
    "datasets",
    "demo_dataset",
    "synth_l2g",
    "train_l2g_models",
]


def add_dataset(
    path: str | os.PathLike,
    label: str,
    *,
    name: str | None = None,
    id_col: str | None = None,
    impute: str | None = None,
) -> dict:
    """Validate a CSV, TSV (gzipped or not) or Parquet file and register it.

    Returns the writer's reply: `dataset_id`, `name` and `existing` (True when
    the same content was registered before, under the name returned), and
    `stripped_genes`, the gene names whose surrounding whitespace was dropped.
    The name (by default the file name's stem) follows `storage.datasets.check_name`.
    """
    from genejobs.config import settings
    from genejobs.contract import RegisterDataset
    from genejobs.storage.datasets import check_name, prepare, read_table, write_parquet
    from genejobs.worker import inbox

    path = Path(path)
    if name is None:
        stem = Path(path.name.removesuffix(".gz")).stem
        name = check_name(stem, what="the file name's stem (the default name)")
    else:
        check_name(name)
    prepared = prepare(read_table(path), label, id_col=id_col, impute=impute, source=str(path))
    inbox.require_redis()
    temp = write_parquet(prepared, settings().spool_dir)
    try:
        reply = inbox.request(
            RegisterDataset(
                meta=prepared.metadata(),
                # relative to the data dir, which the writer may mount elsewhere
                temp_path=str(temp.relative_to(settings().home)),
                name=name,
                source=str(path.resolve()),
            )
        )
    finally:
        temp.unlink(missing_ok=True)
    return {
        **reply,
        "samples": len(prepared.frame),
        "genes": len(prepared.genes),
        "classes": len(prepared.classes),
        "stripped_genes": prepared.stripped,
    }


def datasets() -> pd.DataFrame:
    """The registered datasets."""
    from genejobs.storage import queries

    with reading() as con:
        return queries.datasets(con)


def demo_dataset(out: str | os.PathLike, samples: int = 150, genes: int = 200, classes: int = 3):
    """Write a synthetic expression CSV (label `tissue`, id `sample_id`) to `out`.

    Twelve genes named SIG01..SIG12 carry the class signal; the rest are noise.
    """
    from genejobs.storage import synth

    table = synth.expression(
        samples=samples, genes=genes, classes=classes, informative=min(12, genes)
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)


def synth_l2g(out: str | os.PathLike, rows: int, *, seed: int = 11) -> dict:
    """Write an L2G-like table (Parquet for .parquet/.pq, else CSV) and its feature groups.

    Returns `table` (the frame, for `train_l2g_models`), `features` (how many)
    and `groups` (the path of the `feature<TAB>group` file written beside it).
    """
    from genejobs.tasks import synth_l2g as l2g

    out = Path(out)
    table = l2g.table(rows, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(out, index=False)
    else:
        table.to_csv(out, index=False)
    groups = out.with_name(out.name.split(".")[0] + ".groups.tsv")
    l2g.write_groups(groups)
    return {"table": table, "features": len(l2g.FEATURES), "groups": groups}


def train_l2g_models(
    table: pd.DataFrame, folder: str | os.PathLike, *, trees: int = 300, depth: int = 6
) -> int:
    """Train the five chromosome-partitioned XGBoost models of an L2G-like table into `folder`.

    Each is trained without its chromosome set and written as JSON, with the
    manifest `models.tsv` for `shap run --manifest`. Returns how many.
    """
    from genejobs.tasks import synth_l2g as l2g

    return len(l2g.train_models(table, Path(folder), trees=trees, depth=depth))
