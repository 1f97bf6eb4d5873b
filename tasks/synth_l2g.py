"""An L2G-like feature table and its chromosome-partitioned XGBoost models, for tests and benches.

The shape follows the public Open Targets locus-to-gene (L2G) facts: 53
features in five groups (distance, molecular QTL colocalisation, chromatin
interaction, variant pathogenicity, helpers) with their presence rates, one
row per study/locus/gene, a chromosome column, and a gold-standard label whose
signal sits in a few features. Absent features are missing values (NaN), as in
L2G, so a model sees "absent" and not a made-up zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CHROMOSOMES = [str(c) for c in range(1, 23)] + ["X"]

# Each model is trained without its chromosome set and explains the rows on it.
FOLDS: tuple[tuple[str, ...], ...] = (
    ("1", "3", "8"),
    ("5", "10", "16", "21", "22", "X"),
    ("4", "9", "11", "18", "20"),
    ("2", "7", "12", "17"),
    ("6", "13", "14", "15", "19"),
)

_DISTANCE = [
    f"dist_{anchor}_{stat}{nbh}"
    for anchor in ("foot", "tss")
    for stat in ("min", "ave")
    for nbh in ("", "_nbh")
]
_QTL = [
    f"{kind}_coloc_{stat}"
    for kind in ("eqtl", "pqtl", "sqtl")
    for stat in (
        "llr_max",
        "llr_max_nbh",
        "llr_max_neglogp",
        "log_h4_max",
        "log_h4_max_nbh",
        "log_h4_max_neglogp",
    )
]
_INTERACTION = [
    f"{source}_{stat}"
    for source in ("pchic", "enhtss", "dhscor", "fantom5")
    for stat in ("ave", "max", "max_nbh")
]
_VEP = [
    f"{score}_credset_{stat}{nbh}"
    for score in ("vep", "polyphen")
    for stat in ("max", "ave")
    for nbh in ("", "_nbh")
]
_HELPERS = [
    "count_credset_95",
    "has_sumstats",
    "gene_count_lte_50k",
    "gene_count_lte_100k",
    "gene_count_lte_250k",
    "gene_count_lte_500k",
    "protein_coding",
]

# group -> (features, share of rows where the feature is present)
GROUPS: dict[str, tuple[list[str], float]] = {
    "distance": (_DISTANCE, 0.995),
    "qtl_coloc": (_QTL, 0.04),
    "interaction": (_INTERACTION, 0.30),
    "vep": (_VEP, 0.07),
    "helpers": (_HELPERS, 1.0),
}
FEATURES = [name for names, _ in GROUPS.values() for name in names]


def write_groups(path) -> None:
    """The features' groups as `shap run --groups` reads them: feature<TAB>group lines."""
    lines = ["feature\tgroup"] + [
        f"{name}\t{group}" for group, (names, _) in GROUPS.items() for name in names
    ]
    Path(path).write_text("\n".join(lines) + "\n")


ID_COLS = ("study_id", "locus_id", "gene_id")
LABEL = "gold_standard"
PARTITION = "chrom"


def table(rows: int, seed: int = 11) -> pd.DataFrame:
    """Rows of study/locus/gene with the 53 features, `chrom` and the `gold_standard` label."""
    rng = np.random.default_rng(seed)
    genes_per_locus = rng.integers(3, 15, size=max(rows // 6, 1))
    locus_of_row = np.repeat(np.arange(len(genes_per_locus)), genes_per_locus)[:rows]
    if len(locus_of_row) < rows:
        locus_of_row = np.concatenate(
            [locus_of_row, np.arange(len(locus_of_row), rows) // 8 + len(genes_per_locus)]
        )
    n_loci = int(locus_of_row.max()) + 1
    chrom_weights = np.array([1.0 / (1 + 0.06 * i) for i in range(len(CHROMOSOMES))])
    locus_chrom = rng.choice(CHROMOSOMES, size=n_loci, p=chrom_weights / chrom_weights.sum())
    frame = pd.DataFrame(
        {
            "study_id": [f"GCST{90000 + (i * 7919) % 23395:06d}" for i in locus_of_row],
            "locus_id": [f"L{i:07d}" for i in locus_of_row],
            "gene_id": [f"ENSG{(i * 104729) % 19247:011d}" for i in range(rows)],
            PARTITION: locus_chrom[locus_of_row],
        }
    )
    # Distances in bp (heavy tailed); the causal gene tends to be the nearest.
    foot = np.round(rng.lognormal(10.5, 1.6, size=rows))
    values: dict[str, np.ndarray] = {}
    for name in _DISTANCE:
        scale = 1.6 if "ave" in name else 1.0
        jitter = np.round(rng.lognormal(8.0, 1.0, size=rows))
        distance = foot * scale + (jitter if "tss" in name else 0)
        values[name] = distance / (1e5 if "nbh" in name else 1.0)
    latent = rng.normal(size=rows)
    for name in _QTL:
        values[name] = np.round(np.abs(rng.normal(2.0, 2.5, size=rows)) + 0.8 * latent, 3)
    for name in _INTERACTION:
        values[name] = np.round(rng.gamma(1.5, 1.2, size=rows) + 0.4 * latent, 3)
    for name in _VEP:
        values[name] = np.round(rng.beta(1.2, 4.0, size=rows) + 0.1 * latent.clip(0), 3)
    values["count_credset_95"] = rng.integers(1, 60, size=rows).astype(float)
    values["has_sumstats"] = (rng.random(rows) < 0.6).astype(float)
    for k, name in enumerate(_HELPERS[2:6]):
        values[name] = rng.poisson(1.5 * (k + 1), size=rows).astype(float)
    values["protein_coding"] = (rng.random(rows) < 0.8).astype(float)
    for group, (names, presence) in GROUPS.items():
        if presence >= 1.0:
            continue
        # A group is present or absent together, as its source data covers a row or not.
        present = rng.random(rows) < presence
        for name in names:
            keep = present & (rng.random(rows) < (0.97 if group != "distance" else 1.0))
            values[name] = np.where(keep, values[name], np.nan)
    for name in FEATURES:
        frame[name] = values[name]
    nearest = -np.log(np.nan_to_num(values["dist_foot_min"], nan=1e7) + 1)
    score = (
        1.2 * (nearest + 10.5)
        + 1.5 * np.nan_to_num(values["eqtl_coloc_llr_max"], nan=0.0) / 3
        + 1.0 * np.nan_to_num(values["vep_credset_max"], nan=0.0) * 3
        + 0.6 * np.nan_to_num(values["pchic_max"], nan=0.0)
        + 0.5 * values["protein_coding"]
        - 3.2
        + rng.normal(0, 1.0, size=rows)
    )
    frame[LABEL] = (score > np.quantile(score, 0.9)).astype(int)
    return frame


def train_models(
    frame: pd.DataFrame,
    out_dir: Path,
    trees: int = 300,
    depth: int = 6,
    seed: int = 7,
) -> dict[str, list[str]]:
    """Train one XGBoost model per fold, each without its chromosome set; write them as JSON.

    Returns {model file name: the chromosomes it explains}; the same mapping is
    written to `models.tsv` beside the models, in the manifest format that
    `genejobs shap run --manifest` reads.
    """
    from xgboost import XGBClassifier

    out_dir.mkdir(parents=True, exist_ok=True)
    X = frame[FEATURES].to_numpy(dtype=np.float32)
    y = frame[LABEL].to_numpy()
    manifest: dict[str, list[str]] = {}
    for k, held_out in enumerate(FOLDS):
        train = ~frame[PARTITION].isin(held_out).to_numpy()
        model = XGBClassifier(
            n_estimators=trees,
            max_depth=depth,
            learning_rate=0.05,
            subsample=0.8,
            colsample_bytree=0.8,
            random_state=seed + k,
            n_jobs=1,
            verbosity=0,
        )
        model.fit(pd.DataFrame(X[train], columns=FEATURES), y[train])
        name = f"l2g_fold{k}.json"
        model.save_model(out_dir / name)
        manifest[name] = list(held_out)
    (out_dir / "models.tsv").write_text(
        "".join(f"{','.join(chroms)}\t{name}\n" for name, chroms in manifest.items())
    )
    return manifest
