"""Dataset files: read a user's table, validate it, and store it as Parquet.

A dataset is samples x genes plus one label column. It is stored once under
the data dir as `datasets/<dataset_id>.parquet`, where the id is a hash of the
content (genes, sample ids, values, labels), so the same content registered
twice is one dataset. The Parquet file's schema metadata names the label and
id columns, so a worker needs only the path.

Names are checked here, before a request goes to the writer, for the CLI and
the Python API alike: a dataset's name (`check_name`) and the gene names of a
table (`gene_names`), which must print on one line and be told apart by more
than whitespace.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genejobs.errors import InputError

READERS = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None, ".pq": None}
META_KEY = b"genejobs"
IMPUTERS = ("mean", "median", "zero")
# What may name a dataset: it is typed on command lines, split on ':' (`genes compare
# DATASET:MODEL`) and printed in tables, so no path separators, spaces or punctuation.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def check_name(name, what: str = "dataset name") -> str:
    """Return `name` when it may name a dataset; raise InputError saying why not."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InputError(f"{what} {name!r} is not allowed: a dataset name is {NAME_RULE}")
    return name


@dataclass(frozen=True)
class PreparedDataset:
    """A validated table, ready to be written and registered."""

    frame: pd.DataFrame  # index: sample ids; columns: genes, then the label
    label_col: str
    id_col: str | None
    genes: tuple[str, ...]
    classes: tuple[str, ...]
    class_counts: tuple[int, ...]
    dataset_id: str
    # "int" when the file's labels are integers (a 0/1 label): searches hand PyCaret
    # integers then, as pandas reads the file, so its binary metrics are for class 1.
    label_type: str = "str"
    stripped: int = 0  # gene names given with whitespace around them

    def metadata(self) -> dict:
        return {
            "dataset_id": self.dataset_id,
            "label_col": self.label_col,
            "id_col": self.id_col,
            "n_samples": len(self.frame),
            "n_genes": len(self.genes),
            "classes": list(self.classes),
            "class_counts": list(self.class_counts),
            "genes": list(self.genes),
        }


@dataclass(frozen=True)
class ExpressionMatrix:
    """What a fit needs: the gene matrix, integer class codes, and their names."""

    X: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    genes: tuple[str, ...]
    sample_ids: tuple[str, ...]


def _header(path: Path, sep: str) -> tuple[list[str], bool]:
    """The column names, and whether any line follows them."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter=sep)
        columns = next(rows, [])
        return columns, any(any(cell.strip() for cell in row) for row in rows)


def _table_suffix(path: Path) -> str:
    """The file type that decides the reader; `x.csv.gz` is a gzipped CSV."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) == 2 and suffixes[0] in READERS:
        return suffixes[0] if READERS[suffixes[0]] is not None else ".gz"
    return suffixes[-1] if suffixes else ""


def _refuse_duplicates(path: Path, columns: list[str]) -> None:
    # Counted once, before pandas sees the names (it renames duplicates in
    # quadratic time): a header of 200,000 columns takes milliseconds.
    dupes = sorted(str(c) for c, n in Counter(columns).items() if n > 1)
    if dupes:
        raise InputError(
            f"{path} has duplicate column names: {', '.join(dupes[:5])}"
            + (f" and {len(dupes) - 5} more" if len(dupes) > 5 else "")
        )


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file, refusing duplicate column names."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    suffix = _table_suffix(path)
    if suffix not in READERS:
        raise InputError(
            f"unsupported file type {suffix or '(none)'} for {path}; "
            "use .csv, .tsv (either may be gzipped: .csv.gz) or .parquet"
        )
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")
    sep = READERS[suffix]
    try:
        if sep is None:
            import pyarrow.parquet as pq

            columns = pq.read_schema(path).names
        else:
            columns, has_rows = _header(path, sep)
            # pandas takes quadratic time over a header with no rows (minutes
            # at 200,000 columns): such a file is refused before it gets there.
            if not has_rows:
                raise InputError(f"{path} has no samples")
        _refuse_duplicates(path, columns)
        frame = (
            pd.read_parquet(path) if sep is None else pd.read_csv(path, sep=sep, low_memory=False)
        )
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError, csv.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise InputError(f"cannot read {path}: {first[:300]}") from None
    if frame.empty or len(frame.columns) == 0:
        raise InputError(f"{path} has no samples")
    return frame


def listed(names, limit=5) -> str:
    """Names for an error message: the first few, and how many more."""
    names = [str(n) for n in names]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _has_control(name: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in name)


def gene_names(columns, others=()) -> list[str]:
    """The gene names of `columns`, without the whitespace around them.

    Refused: a name with a control character (a tab or a newline would split a
    row of TSV or table output, and a name must come back as it was given), and
    names that only whitespace tells apart (`G5`, `G 5 `), from each other or
    from the label and id columns (`others`).
    """
    names = [str(c) for c in columns]
    control = [name for name in names if _has_control(name)]
    if control:
        raise InputError(
            f"{len(control)} gene names hold control characters (tab, newline, ...): "
            f"{listed(map(repr, control))}; rename them"
        )
    spellings = defaultdict(list)
    for name in [*map(str, others), *names]:
        spellings["".join(name.split())].append(name)
    clashes = [group for group in spellings.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(" and ".join(map(repr, group)) for group in clashes[:3])
        more = f" and {len(clashes) - 3} more" if len(clashes) > 3 else ""
        raise InputError(
            f"{len(clashes)} sets of columns differ only in whitespace: {shown}{more}; rename them"
        )
    return [name.strip() for name in names]


def prepare(
    frame: pd.DataFrame,
    label_col: str,
    id_col: str | None = None,
    impute: str | None = None,
    source: str = "the table",
) -> PreparedDataset:
    """Validate a table of samples x genes plus a label; raise InputError on the first problem."""
    if label_col not in frame.columns:
        raise InputError(
            f"label column '{label_col}' is not in {source} (columns: {listed(frame.columns)})"
        )
    if id_col is not None:
        if id_col not in frame.columns:
            raise InputError(f"id column '{id_col}' is not in {source}")
        if id_col == label_col:
            raise InputError("the id column and the label column must differ")
        ids = frame[id_col].astype(str)
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].unique()
            raise InputError(f"duplicate sample ids in {source}: {listed(dup)}")
        index = pd.Index(ids, name=id_col)
    else:
        index = pd.Index([f"sample_{i + 1}" for i in range(len(frame))], name="sample_id")
    labels = frame[label_col]
    if labels.isna().any():
        where = index[labels.isna().to_numpy()]
        raise InputError(
            f"{int(labels.isna().sum())} samples have no label in '{label_col}' (first: {where[0]})"
        )
    genes = [c for c in frame.columns if c not in (label_col, id_col)]
    if not genes:
        raise InputError(f"{source} has no gene columns besides the label")
    names = gene_names(genes, others=[c for c in (label_col, id_col) if c is not None])
    gene_frame = frame[genes]
    non_numeric = [
        c
        for c in genes
        if not pd.api.types.is_numeric_dtype(gene_frame[c])
        or pd.api.types.is_bool_dtype(gene_frame[c])
    ]
    if non_numeric:
        hint = " (is one of them the sample id? pass --id-col)" if id_col is None else ""
        raise InputError(
            f"{len(non_numeric)} gene columns are not numeric: {listed(non_numeric)}{hint}"
        )
    values = gene_frame.to_numpy(dtype=np.float64, copy=True)
    if not np.isfinite(values[~np.isnan(values)]).all():
        raise InputError(f"{source} has infinite values")
    missing = np.isnan(values)
    if missing.any():
        if impute is None:
            row, col = np.argwhere(missing)[0]
            raise InputError(
                f"{int(missing.sum())} missing values in {int(missing.any(axis=0).sum())} genes "
                f"(first: gene {genes[col]}, sample {index[row]}); "
                "fix them or pass --impute mean|median|zero"
            )
        if impute not in IMPUTERS:
            raise InputError(f"unknown imputation '{impute}'; use one of {', '.join(IMPUTERS)}")
        if impute == "zero":
            fill = np.zeros(values.shape[1])
        else:
            with np.errstate(all="ignore"):
                fill = (np.nanmean if impute == "mean" else np.nanmedian)(values, axis=0)
            if np.isnan(fill).any():
                empty = [genes[i] for i in np.flatnonzero(np.isnan(fill))]
                raise InputError(f"genes with no values at all cannot be imputed: {listed(empty)}")
        values = np.where(missing, fill[None, :], values)
    label_text = labels.astype(str).to_numpy()
    classes, counts = np.unique(label_text, return_counts=True)
    if len(classes) < 2:
        raise InputError(
            f"label '{label_col}' has one class ({classes[0]}); a classifier needs at least two"
        )
    # Every job splits or folds stratified by class (importance runs, searches,
    # holdout tests), which needs two samples of each class: refused here, once,
    # rather than by each job.
    lone = classes[counts < 2]
    if len(lone):
        raise InputError(
            f"{len(lone)} classes of '{label_col}' have a single sample ({listed(lone)}); "
            "stratified splits need at least 2 per class: drop or merge them"
        )
    out = pd.DataFrame(values, columns=names, index=index)
    out[label_col] = label_text
    return PreparedDataset(
        frame=out,
        label_col=label_col,
        id_col=id_col,
        genes=tuple(names),
        classes=tuple(str(c) for c in classes),
        class_counts=tuple(int(n) for n in counts),
        dataset_id=content_hash(out, label_col),
        label_type="int" if pd.api.types.is_integer_dtype(labels) else "str",
        stripped=sum(name != str(gene) for name, gene in zip(names, genes, strict=True)),
    )


def content_hash(frame: pd.DataFrame, label_col: str) -> str:
    """Hash what makes two datasets the same: genes, sample ids, values and labels."""
    digest = hashlib.sha256()
    genes = [c for c in frame.columns if c != label_col]
    digest.update(json.dumps([genes, list(map(str, frame.index))]).encode())
    digest.update(np.ascontiguousarray(frame[genes].to_numpy(dtype=np.float64)).tobytes())
    digest.update(json.dumps(frame[label_col].astype(str).tolist()).encode())
    return digest.hexdigest()[:16]


def write_parquet(prepared: PreparedDataset, directory: Path) -> Path:
    """Write the dataset to a new temporary Parquet file in `directory` and return its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(prepared.frame, preserve_index=True)
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(
        {
            "label_col": prepared.label_col,
            "id_col": prepared.id_col,
            "label_type": prepared.label_type,
        }
    ).encode()
    table = table.replace_schema_metadata(meta)
    path = directory / f".{prepared.dataset_id}.{uuid.uuid4().hex}.parquet"
    pq.write_table(table, path)
    return path


def load_matrix(path: Path) -> ExpressionMatrix:
    """Load a stored dataset as a matrix with integer class codes (classes sorted)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[META_KEY])
    frame = table.to_pandas()
    label_col = meta["label_col"]
    labels = frame.pop(label_col).astype(str).to_numpy()
    classes, codes = np.unique(labels, return_inverse=True)
    return ExpressionMatrix(
        X=np.ascontiguousarray(frame.to_numpy(dtype=np.float64)),
        y=codes.astype(np.int64),
        classes=tuple(str(c) for c in classes),
        genes=tuple(str(c) for c in frame.columns),
        sample_ids=tuple(str(i) for i in frame.index),
    )


def load_frame(path: Path) -> tuple[pd.DataFrame, str, str | None]:
    """Load a stored dataset as a DataFrame (index = sample ids) with its label and id names."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[META_KEY])
    frame = table.to_pandas()
    if meta.get("label_type") == "int":
        frame[meta["label_col"]] = frame[meta["label_col"]].astype("int64")
    return frame, meta["label_col"], meta["id_col"]
