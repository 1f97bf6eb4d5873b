"""How stable a scope's gene selections are: the numbers behind `genes stability|stable|compare`.

A scope (one job, or every job on a dataset and model) holds fits: one per
finished run, two per run of a `pairs` job (each half of the seed's
complementary split). Each fit selected a set of genes: those with non-zero
importance, or its top K by rank. Here those sets become a fits x genes 0/1
matrix, in the order the runs finished, for the statistics of
`storage.stability`. The matrix spans every gene of the dataset, selected or
not: the stability's chance level depends on how many genes there were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from genejobs.errors import InputError
from genejobs.storage import stability
from genejobs.storage.queries import Scope

PAIRS = "pairs"
SPLIT = "split"
# How many fits a finished run made, from its job's scheme.
_FITS = "CASE WHEN json_extract_string(j.params, '$.scheme') = 'pairs' THEN 2 ELSE 1 END"


@dataclass(frozen=True)
class Selections:
    """The fits of a scope and the genes each selected."""

    matrix: np.ndarray  # fits x genes, bool, in the order the runs finished
    genes: list[str]  # every gene of the dataset, the matrix's columns
    schemes: frozenset[str]  # the schemes of the jobs the fits come from
    runs: int

    @property
    def fits(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def counts(self) -> dict[str, int]:
        totals = self.matrix.sum(axis=0)
        return {g: int(c) for g, c in zip(self.genes, totals, strict=True) if c}

    @property
    def mean_selected(self) -> float:
        return float(self.matrix.sum(axis=1).mean()) if self.fits else 0.0


def selections(con: duckdb.DuckDBPyConnection, where: Scope, top: int | None) -> Selections:
    """The scope's fits as a 0/1 matrix over the dataset's genes (top K, or any non-zero)."""
    genes = con.execute(
        "SELECT unnest(genes) FROM datasets WHERE dataset_id = ?", [where.dataset_id]
    ).fetchall()
    genes = [g for (g,) in genes]
    index = {g: i for i, g in enumerate(genes)}
    fits = con.execute(
        f"""SELECT seed, half, scheme FROM (
                SELECT r.seed, r.finished_at, unnest(range({_FITS})) AS half,
                       coalesce(json_extract_string(j.params, '$.scheme'), 'split') AS scheme
                FROM (SELECT * FROM runs WHERE {where.where} AND status = 'done') r
                JOIN jobs j USING (job_id))
            ORDER BY finished_at, seed, half""",
        list(where.params),
    ).fetchall()
    row_of = {(seed, half): i for i, (seed, half, _) in enumerate(fits)}
    rank_filter = "" if top is None else f" AND rank <= {int(top)}"
    pairs = con.execute(
        f"""SELECT seed, coalesce(half, 0), gene FROM importances
            WHERE {where.where}{rank_filter}""",
        list(where.params),
    ).fetchall()
    matrix = np.zeros((len(fits), len(genes)), dtype=bool)
    for seed, half, gene in pairs:
        row = row_of.get((seed, half))
        if row is not None and gene in index:
            matrix[row, index[gene]] = True
    runs = len({seed for seed, _, _ in fits})
    return Selections(matrix, genes, frozenset(s for _, _, s in fits), runs)


def _need_fits(found: Selections, label: str) -> None:
    if found.fits < 2:
        raise InputError(f"{label} has {found.fits} finished fits; stability needs at least 2")


def stability_table(con, where: Scope, top: int | None) -> tuple[pd.DataFrame, Selections]:
    """Nogueira stability with its 95% interval, for top-K (when given) and non-zero selections."""
    rows = []
    found = None
    for k in ([top] if top else []) + [None]:
        sel = selections(con, where, k)
        _need_fits(sel, where.label)
        found = found or sel
        est = stability.nogueira(sel.matrix)
        rows.append(
            {
                "selection": f"top {k}" if k else "non-zero importance",
                "fits": sel.fits,
                "genes": len(sel.genes),
                "mean_selected": sel.mean_selected,
                "stability": est.value,
                "lo": est.lo,
                "hi": est.hi,
            }
        )
    return pd.DataFrame(rows), found


def curve(found: Selections, top: int | None, points: int = 40) -> pd.DataFrame:
    """Stability (with interval) and the final top-K set's share of each step's top-K."""
    steps = sorted({int(s) for s in np.linspace(2, found.fits, min(points, found.fits - 1))})
    k = top or 20
    totals = found.matrix.sum(axis=0)
    final = set(np.argsort(-totals, kind="stable")[:k])
    rows = []
    for m in steps:
        est = stability.nogueira(found.matrix[:m])
        upto = found.matrix[:m].sum(axis=0)
        now = set(np.argsort(-upto, kind="stable")[:k])
        rows.append(
            {
                "fits": m,
                "stability": est.value,
                "lo": est.lo,
                "hi": est.hi,
                f"top{k}_in_final": len(now & final) / k,
            }
        )
    return pd.DataFrame(rows)


def bound_note(found: Selections, pi: float) -> tuple[float, str]:
    """The stability selection bound on E[false selections] at `pi`, and whether it applies."""
    bound = stability.false_selection_bound(found.mean_selected, len(found.genes), pi)
    if found.schemes == {PAIRS}:
        return bound, (
            "applies: every fit is one half of a complementary pair (Shah & Samworth 2013)"
        )
    if PAIRS in found.schemes:
        return bound, "does not apply: the scope mixes pairs and split jobs"
    return bound, (
        "does not apply: the fits used random train splits, not complementary half-samples; "
        "run the job with --scheme pairs for a bound that holds"
    )


def stable_set(con, where: Scope, pi: float, top: int | None) -> tuple[pd.DataFrame, dict]:
    """Genes selected in at least a fraction `pi` of the fits, with the error bound."""
    if not 0.5 < pi <= 1:
        raise InputError(f"--pi must lie in (0.5, 1] for the bound to hold, got {pi:g}")
    found = selections(con, where, top)
    _need_fits(found, where.label)
    totals = found.matrix.sum(axis=0)
    lo, hi = stability.wilson_interval(totals, found.fits)
    frame = pd.DataFrame(
        {
            "gene": found.genes,
            "fits": totals,
            "fraction": totals / found.fits,
            "fraction_lo": lo,
            "fraction_hi": hi,
        }
    )
    frame = frame[frame["fraction"] >= pi].sort_values(["fits", "gene"], ascending=[False, True])
    bound, applies = bound_note(found, pi)
    summary = {
        "scope": where.label,
        "selection": f"top {top}" if top else "non-zero importance",
        "fits": found.fits,
        "runs": found.runs,
        "genes": len(found.genes),
        "pi": pi,
        "stable_genes": len(frame),
        "mean_selected_per_fit": found.mean_selected,
        "expected_false_selections_at_most": bound,
        "bound": applies,
        "uncertain": int(((lo < pi) & (hi >= pi)).sum()),
    }
    return frame.reset_index(drop=True), summary


def compare(con, a: Scope, b: Scope, pi: float, top: int | None) -> dict:
    """Two scopes: their stabilities, the test of a difference, and their stable sets' overlap."""
    found = [selections(con, s, top) for s in (a, b)]
    for sel, scope in zip(found, (a, b), strict=True):
        _need_fits(sel, scope.label)
    est = [stability.nogueira(sel.matrix) for sel in found]
    z, p_value = stability.compare_stabilities(*est)
    sets = []
    for sel in found:
        totals = sel.matrix.sum(axis=0)
        sets.append({g for g, c in zip(sel.genes, totals, strict=True) if c >= pi * sel.fits})
    union = sets[0] | sets[1]
    return {
        "selection": f"top {top}" if top else "non-zero importance",
        "a": a.label,
        "b": b.label,
        "a_fits": found[0].fits,
        "b_fits": found[1].fits,
        "a_stability": est[0].value,
        "a_interval": [est[0].lo, est[0].hi],
        "b_stability": est[1].value,
        "b_interval": [est[1].lo, est[1].hi],
        "difference_z": z,
        "difference_p_value": p_value,
        "pi": pi,
        "a_stable": len(sets[0]),
        "b_stable": len(sets[1]),
        "both": sorted(sets[0] & sets[1]),
        "only_a": sorted(sets[0] - sets[1]),
        "only_b": sorted(sets[1] - sets[0]),
        "jaccard": len(sets[0] & sets[1]) / len(union) if union else math.nan,
    }
