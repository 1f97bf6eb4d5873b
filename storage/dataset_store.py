"""The writer's side of datasets: a validated table registered once, by its content.

Contract (see `storage.store.Store`): only the single writer calls it, inside
its open transaction. The same content under any name is the same dataset
(its content hash is the id); a name names one dataset. The Parquet file
moves into the data dir in the same transaction that records it.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from genejobs.config import settings
from genejobs.contract import FilterDataset, RegisterDataset
from genejobs.errors import InputError
from genejobs.storage import queries
from genejobs.storage.datasets import (
    PreparedDataset,
    check_name,
    load_frame,
    prepare,
    write_parquet,
)
from genejobs.storage.db import first


class DatasetStore:
    """Registers datasets and the reduced datasets made from gene counts."""

    def __init__(self, con: duckdb.DuckDBPyConnection, datasets: dict[str, dict]):
        self.con = con
        # The plans' cache of looked-up datasets (ImportanceStore), emptied when one is added.
        self._datasets = datasets

    def register_dataset(self, request: RegisterDataset) -> dict:
        """Register a validated dataset whose Parquet file waits at `temp_path` in the data dir.

        The same content under any name is the same dataset: the existing one is
        returned and the temporary file removed.
        """
        return self._register(request.meta, request.temp_path, request.name, request.source)

    def _register(
        self, meta: dict, temp_path: str, name: str, source: str, parent_id: str | None = None
    ) -> dict:
        self._datasets.clear()
        temp = settings().home / temp_path
        try:
            check_name(name)  # the CLI and the API check first; a message may come from elsewhere
            existing = first(
                self.con.execute(
                    "SELECT name FROM datasets WHERE dataset_id = ?", [meta["dataset_id"]]
                ).fetchall()
            )
            if existing is not None:
                return {"dataset_id": meta["dataset_id"], "name": existing[0], "existing": True}
            clash = first(
                self.con.execute(
                    "SELECT dataset_id FROM datasets WHERE name = ?", [name]
                ).fetchall()
            )
            if clash is not None:
                raise InputError(
                    f"a different dataset is already registered as '{name}'; choose another --name"
                )
            relative = Path("datasets") / f"{meta['dataset_id']}.parquet"
            self.con.execute(
                """INSERT INTO datasets (dataset_id, name, path, label_col, id_col, n_samples,
                       n_genes, classes, class_counts, genes, source, parent_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    meta["dataset_id"],
                    name,
                    str(relative),
                    meta["label_col"],
                    meta["id_col"],
                    meta["n_samples"],
                    meta["n_genes"],
                    meta["classes"],
                    meta["class_counts"],
                    meta["genes"],
                    source,
                    parent_id,
                ],
            )
            os.replace(temp, settings().home / relative)
            return {"dataset_id": meta["dataset_id"], "name": name, "existing": False}
        finally:
            temp.unlink(missing_ok=True)

    def filter_dataset(self, request: FilterDataset) -> dict:
        """Register a reduced dataset of the genes selected in at least `min_count` runs."""
        job_id, dataset_name, model = request.job_id, request.dataset, request.model
        min_count, top, name = request.min_count, request.top, request.name
        check_name(name)
        if min_count < 1:
            raise InputError(f"--min-count must be at least 1, got {min_count}")
        where = queries.scope(self.con, job_id, dataset_name, model)
        total, counts = queries.gene_counts(self.con, where, top=top)
        if total == 0:
            raise InputError(f"no finished runs for {where.label}")
        genes = counts.loc[counts["runs"] >= min_count, "gene"].tolist()
        if not genes:
            raise InputError(
                f"no gene was selected in {min_count} or more of the {total} runs for {where.label}"
            )
        if job_id is not None:
            source_id = first(
                self.con.execute(
                    "SELECT dataset_id FROM jobs WHERE job_id = ?", [job_id]
                ).fetchall()
            )[0]
            source = queries.dataset(self.con, source_id)
        else:
            source = queries.dataset(self.con, dataset_name)
        frame, label_col, id_col = load_frame(settings().home / source["path"])
        reduced = frame[[g for g in source["genes"] if g in set(genes)] + [label_col]]
        prepared: PreparedDataset = prepare(
            reduced.reset_index(), label_col, id_col=reduced.index.name
        )
        temp = write_parquet(prepared, settings().spool_dir)
        reply = self._register(
            prepared.metadata(),
            str(temp),
            name,
            source=f"genes selected in >= {min_count} of {total} runs of {where.label}"
            + (f" (top {top})" if top else ""),
            parent_id=source["dataset_id"],
        )
        reply["n_genes"] = len(genes)
        return reply
