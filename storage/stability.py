"""Statistics for how stable the gene selections of many seeded fits are.

A job runs the same fit under many seeds; each run selects a set of genes. This
module turns those selections into numbers with honest uncertainty:

- per gene, the selection frequency with a Wilson interval (`wilson_interval`)
  and the mean rank with a Student-t interval (`mean_interval`);
- for the whole job, the Nogueira, Sechidis & Brown (2018) stability of the
  selected sets with its asymptotic confidence interval (`nogueira`, or
  `nogueira_from_sums` from sums a database can compute), a test comparing two
  jobs (`compare_stabilities`) and a convergence curve (`stability_curve`);
- the stability selection bound on falsely selected genes
  (`false_selection_bound`, `pi_for_bound`);
- the rule that ends a job run in rounds once its answer is stable
  (`stopping_decision`).

Everything here is pure numpy/scipy: no storage, no project imports.

References:
    Nogueira S., Sechidis K., Brown G. (2018). On the stability of feature
    selection algorithms. JMLR 18(174):1-54.
    Meinshausen N., Bühlmann P. (2010). Stability selection. JRSS-B 72(4):417-473.
    Shah R. D., Samworth R. J. (2013). Variable selection with error control:
    another look at stability selection. JRSS-B 75(1):55-80.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


def _upper_tail(level: float) -> float:
    """The cumulative probability whose quantile bounds a two-sided interval at `level`."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    return 0.5 + level / 2


def wilson_interval(
    k: ArrayLike, n: ArrayLike, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval for the proportion of `k` successes in `n` trials.

    Selection counts use Wilson rather than the normal (Wald) interval because
    genes are often selected in almost none or almost all runs, where Wald's
    interval collapses to a point and covers far less than it claims. The ends
    are (2k + z² ± z·sqrt(z² + 4k(n − k)/n)) / (2(n + z²)); at k = 0 and k = n
    they are set to exactly 0 and 1, which the formula gives only up to
    rounding, so that "never selected" compares cleanly. Where n == 0 nothing
    is known: (0, 1). Arrays broadcast against each other.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("counts must satisfy 0 <= k <= n")
    z = float(stats.norm.ppf(_upper_tail(level)))
    trials = np.where(n > 0, n, 1.0)
    spread = z * np.sqrt(z * z + 4 * k * (trials - k) / trials)
    lo = (2 * k + z * z - spread) / (2 * (trials + z * z))
    hi = (2 * k + z * z + spread) / (2 * (trials + z * z))
    return np.where((n > 0) & (k > 0), lo, 0.0), np.where((n > 0) & (k < n), hi, 1.0)


def mean_interval(
    mean: ArrayLike,
    sd: ArrayLike,
    n: ArrayLike,
    level: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The Student-t interval mean ± t(n − 1)·sd/sqrt(n) for a mean of `n` values.

    Used for a gene's mean rank over the runs; `sd` is the sample standard
    deviation (ddof=1). With fewer than two values there is no spread to go
    on, so both ends are NaN there. `bounds` (lowest, highest) clips both ends
    to the values can take: with few values and a wide spread the t interval
    reaches past them (a mean rank below 1).
    """
    mean = np.asarray(mean, dtype=float)
    sd = np.asarray(sd, dtype=float)
    n = np.asarray(n, dtype=float)
    enough = n >= 2
    size = np.where(enough, n, 2.0)
    half = stats.t.ppf(_upper_tail(level), size - 1) * sd / np.sqrt(size)
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
    return np.where(enough, lo, np.nan), np.where(enough, hi, np.nan)


@dataclass(frozen=True)
class Stability:
    """The Nogueira stability of `runs` selected sets over `features` candidates.

    `value` is the estimate Φ̂ (1: every run selected the same set; 0: no more
    agreement than random sets of the same sizes), `variance` its estimated
    variance, and `lo`, `hi` the asymptotic normal interval value ± z·sqrt(variance).
    All four are NaN where the stability is undefined (see `nogueira_from_sums`).
    """

    value: float
    variance: float
    lo: float
    hi: float
    runs: int
    features: int


def nogueira(selected: ArrayLike, level: float = 0.95) -> Stability:
    """The Nogueira, Sechidis & Brown (2018) stability of the rows of a 0/1 matrix.

    `selected` has one row per run and one column per feature, 1 where the run
    selected the feature. The sufficient statistics are taken from the matrix
    and handed to `nogueira_from_sums`, which holds the formulas.
    """
    matrix = np.asarray(selected)
    if matrix.ndim != 2:
        raise ValueError(f"the selection matrix must be 2-D (runs x features), not {matrix.ndim}-D")
    if not np.isin(matrix, (0, 1)).all():
        raise ValueError("the selection matrix must hold only 0/1 or booleans")
    matrix = matrix.astype(float)
    runs, features = matrix.shape
    p_hat = matrix.mean(axis=0) if runs else np.zeros(features)
    return nogueira_from_sums(p_hat, matrix.sum(axis=1), matrix @ p_hat, features, level)


def nogueira_from_sums(
    p_hat: ArrayLike, k: ArrayLike, zp: ArrayLike, features: int, level: float = 0.95
) -> Stability:
    """The Nogueira stability, its variance and interval from per-feature and per-run sums.

    This lets the database compute the inputs in SQL without building the
    M x d selection matrix Z:

    - `p_hat`: each feature's selection frequency over the M runs; features
      never selected may be left out, which is why `features` (d) is explicit;
    - `k`: each run's number of selected features, one entry per run, runs that
      selected nothing included (M is taken as its length);
    - `zp`: per run, Σ_f Z_if·p̂_f, the summed frequencies of the features it selected.

    The formulas are the paper's estimator (its Definition 4) and variance
    estimate, as in the authors' reference code, with k̄ the mean of `k`:

        Φ̂ = 1 − (M/(M−1))·mean_f(p̂_f(1 − p̂_f)) / ((k̄/d)(1 − k̄/d))
        φ_i = ((1/d)·zp_i − k_i·k̄/d² + (Φ̂/2)(2k_i·k̄/d² − k_i/d − k̄/d + 1))
              / ((k̄/d)(1 − k̄/d))
        variance = (4/M²)·Σ_i (φ_i − φ̄)²

    and the interval is Φ̂ ± z·sqrt(variance). The stability is undefined, and
    returned as NaN rather than raised, with fewer than two runs, or where
    every run selected nothing (k̄ = 0) or everything (k̄ = d), since then the
    denominator, the agreement expected by chance, is zero.
    """
    p_hat = np.asarray(p_hat, dtype=float)
    k = np.asarray(k, dtype=float)
    zp = np.asarray(zp, dtype=float)
    if k.shape != zp.shape or k.ndim != 1:
        raise ValueError("k and zp must be 1-D with one entry per run")
    if p_hat.size > features:
        raise ValueError(f"{p_hat.size} feature frequencies given for only {features} features")
    z = float(stats.norm.ppf(_upper_tail(level)))
    runs = k.size
    mean_size = k.mean() if runs else 0.0
    if runs < 2 or not 0 < mean_size < features:
        return Stability(math.nan, math.nan, math.nan, math.nan, runs, features)
    share = mean_size / features
    chance = share * (1 - share)
    value = 1 - runs / (runs - 1) * np.sum(p_hat * (1 - p_hat)) / features / chance
    cross = k * mean_size / features**2
    phi = (
        zp / features - cross + value / 2 * (2 * cross - k / features - mean_size / features + 1)
    ) / chance
    variance = 4 / runs**2 * np.sum((phi - phi.mean()) ** 2)
    half = z * math.sqrt(variance)
    return Stability(
        float(value), float(variance), float(value - half), float(value + half), runs, features
    )


def compare_stabilities(a: Stability, b: Stability) -> tuple[float, float]:
    """The paper's two-sample test that two procedures are equally stable: (z, two-sided p).

    T = (Φ̂_a − Φ̂_b) / sqrt(v_a + v_b) is asymptotically standard normal when
    the stabilities are equal and the two sets of runs are independent. With
    both variances zero, equal values give z = 0 (p = 1) and unequal ones an
    infinite z (p = 0); an undefined stability gives NaN.
    """
    difference = a.value - b.value
    spread = a.variance + b.variance
    if spread > 0 or math.isnan(spread):
        z = difference / math.sqrt(spread)
    else:
        z = math.copysign(math.inf, difference) if difference else 0.0
    return z, float(2 * stats.norm.sf(abs(z)))


def stability_curve(
    selected: ArrayLike, steps: Iterable[int], level: float = 0.95
) -> list[Stability]:
    """The stability of the first m runs for each m in `steps`, to show it converging."""
    matrix = np.asarray(selected)
    curve = []
    for m in steps:
        if not 0 <= m <= len(matrix):
            raise ValueError(f"step {m} is outside 0..{len(matrix)} runs")
        curve.append(nogueira(matrix[:m], level))
    return curve


def false_selection_bound(q: float, p: int, pi: float) -> float:
    """The stability selection bound on the expected number of falsely selected genes.

    E[V] ≤ q² / ((2π − 1)·p), where q is the (average) number of genes each
    fit selects, p the number of candidate genes and π in (0.5, 1] the
    selection-frequency threshold a gene must reach to be called stable.

    When it holds: Meinshausen & Bühlmann (2010, Theorem 1) prove it for fits
    on random subsamples of size ⌊n/2⌋, assuming the noise genes are
    exchangeable and the fitting procedure is no worse than random guessing.
    Shah & Samworth (2013) prove the same bound for complementary pairs
    stability selection (CPSS: each draw splits the samples into two disjoint
    halves and fits both) with no such assumption (their Theorem 1 with
    θ = q/p): it then bounds the expected number of stable genes whose
    selection probability in a single half-sample fit is at most q/p, i.e.
    genes picked no more often than random guessing would pick them, which
    under the Meinshausen & Bühlmann conditions include every noise gene. It
    therefore applies to jobs run with the "pairs" scheme (each seed draws a
    complementary pair of half-samples and fits each half). For other schemes,
    such as one fit on a random 75% training split per seed, it is not
    guaranteed.
    """
    if not 0.5 < pi <= 1:
        raise ValueError(
            f"the selection threshold pi must lie in (0.5, 1] for the bound to hold, got {pi}"
        )
    if p <= 0 or not 0 <= q <= p:
        raise ValueError(f"need 0 <= q <= p and p > 0, got q={q}, p={p}")
    return q * q / ((2 * pi - 1) * p)


def pi_for_bound(q: float, p: int, ev: float) -> float | None:
    """The smallest threshold π for which `false_selection_bound(q, p, π)` ≤ `ev`.

    Solving q² / ((2π − 1)p) = ev gives π = (1 + q²/(p·ev)) / 2, which lies
    above 0.5 for q > 0; None when it would exceed 1, i.e. when no threshold
    can promise so few false selections with fits of q genes out of p.
    """
    if ev <= 0 or p <= 0 or not 0 < q <= p:
        raise ValueError(f"need ev > 0, p > 0 and 0 < q <= p, got ev={ev}, q={q}, p={p}")
    pi = (1 + q * q / (p * ev)) / 2
    return pi if pi <= 1 else None


@dataclass(frozen=True)
class Decision:
    """Whether a job running in rounds should stop, why, and this round's top-K genes.

    `top` is kept by the caller and passed back as `previous_top` next round.
    """

    stop: bool
    reason: str
    top: frozenset[str]


def _straddling(count: int, threshold: float) -> str:
    """The clause of a reason naming how many genes' intervals still contain the threshold."""
    if count == 1:
        return f"1 gene's interval still straddles {threshold:g}"
    return f"{count} genes' intervals still straddle {threshold:g}"


def stopping_decision(
    counts: Mapping[str, int],
    runs: int,
    threshold: float,
    top_k: int,
    previous_top: Collection[str] | None,
    stability: Stability,
    tolerance: float,
    min_runs: int,
) -> Decision:
    """Decide whether a job that runs in rounds has a stable answer and can stop.

    `counts` maps each gene to the number of the `runs` runs that selected it;
    genes absent from it are taken as never selected. The rule:

    Stop when runs ≥ min_runs AND either
    (a) every gene's Wilson 95% interval for its selection frequency lies
        entirely above or entirely below `threshold` (genes never selected
        count as below once their upper bound, z²/(runs + z²), is < threshold), or
    (b) the top-K set by selection frequency (ties broken by gene name) is
        identical to the previous round's top-K set and the width of the
        stability interval (hi − lo) is below `tolerance`.

    Otherwise keep running; the reason then says what is still undecided.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    ranked = sorted(counts, key=lambda gene: (-counts[gene], gene))
    top = frozenset(ranked[:top_k])
    if runs < min_runs:
        return Decision(False, f"only {runs} runs so far, fewer than the minimum {min_runs}", top)

    lo, hi = wilson_interval(np.fromiter(counts.values(), float, len(counts)), runs)
    above = int(np.sum(lo > threshold))
    straddling = len(counts) - above - int(np.sum(hi < threshold))
    never_hi = float(wilson_interval(0, runs)[1])
    if straddling == 0 and never_hi < threshold:
        return Decision(
            True,
            f"every gene's 95% interval lies clear of {threshold:g} after {runs} runs "
            f"({above} above, the rest below)",
            top,
        )

    width = stability.hi - stability.lo
    same_top = previous_top is not None and top == frozenset(previous_top)
    if same_top and width < tolerance:
        return Decision(
            True,
            f"top-{top_k} set unchanged since the previous round and stability interval "
            f"width {width:.3g} < {tolerance:g} after {runs} runs",
            top,
        )

    undecided = []
    if straddling:
        undecided.append(_straddling(straddling, threshold))
    if never_hi >= threshold:
        undecided.append(
            f"never-selected genes' upper bound {never_hi:.3g} is not below {threshold:g}"
        )
    if previous_top is None:
        undecided.append(f"no previous top-{top_k} set to compare with")
    elif not same_top:
        replaced = len(top - frozenset(previous_top))
        undecided.append(f"top-{top_k} set changed since the previous round ({replaced} new)")
    if math.isnan(width):
        undecided.append("stability interval undefined")
    elif width >= tolerance:
        undecided.append(f"stability interval width {width:.3g} is not below {tolerance:g}")
    return Decision(False, "; ".join(undecided) + f" after {runs} runs", top)
