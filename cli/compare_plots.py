"""PNG plots of SHAP side by side: what separates two predictions, what moved between two
jobs. Both read the differences SHAP values split into (`genejobs.api.shap_pair`,
`shap_compare`), largest first."""

from __future__ import annotations

import pandas as pd

from genejobs.cli.shap_plots import _figure, _literal, _short, wrap

TOP = 15
POSITIVE, NEGATIVE = "#d62728", "#1f77b4"


def _bars(ax, labels: list[str], values: list[float], title: str, xlabel: str) -> None:
    """Horizontal bars, largest |value| at the top, signed colours, values at the bar ends."""
    y = list(range(len(values)))[::-1]
    ax.barh(y, values, color=[POSITIVE if v > 0 else NEGATIVE for v in values])
    ax.set_yticks(y, [_literal(_short(str(label), 32)) for label in labels], fontsize=8)
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    for yy, value in zip(y, values, strict=True):
        ax.annotate(
            f"{value:+.3g}",
            (value, yy),
            xytext=(3 if value >= 0 else -3, 0),
            textcoords="offset points",
            ha="left" if value >= 0 else "right",
            va="center",
            fontsize=7,
        )
    ax.margins(x=0.25)


def pair_png(pair: dict, job_id: str, path: str) -> None:
    """Per feature (and per group, when the job has groups): SHAP of A minus SHAP of B."""
    header = pair["header"].to_dict("records")
    features = pair["features"].head(TOP)
    groups = pair["groups"]
    panels = 2 if len(groups) else 1
    fig = _figure(6.5 * panels, 1.6 + 0.3 * max(len(features), 4))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    _bars(
        axes[0],
        list(features["feature"]),
        list(features["difference"]),
        f"features (top {len(features)} of {len(pair['features'])})",
        "SHAP of A - SHAP of B",
    )
    if panels == 2:
        _bars(axes[1], list(groups["group"]), list(groups["difference"]), "feature groups", "")
    a, b = header[0], header[1]
    title = (
        f"{job_id}: A = {a['row_key']} (output {a['output']:.4g}) vs B = {b['row_key']} "
        f"(output {b['output']:.4g}); difference {pair['output_difference']:+.4g} = base "
        f"{pair['base_difference']:+.3g} + the features' sum"
    )
    fig.suptitle(_literal(wrap(title, fig.get_figwidth() * 72 * 0.94, 10)), fontsize=10)
    fig.savefig(path)


def compare_png(compared: dict, job_a: str, job_b: str, path: str) -> None:
    """Left: mean |SHAP| per feature in each job, side by side (the two global rankings);
    right: each feature's mean |move| (B - A) over the rows both jobs explain."""
    features: pd.DataFrame = compared["features"]
    ranked = features.sort_values("mean_abs_shap_b", ascending=False).head(TOP)
    fig = _figure(13, 1.8 + 0.3 * max(len(ranked), 4))
    left, right = fig.subplots(1, 2)
    y = list(range(len(ranked)))[::-1]
    left.barh([v + 0.2 for v in y], ranked["mean_abs_shap_a"], height=0.4, label=f"A {job_a}")
    left.barh([v - 0.2 for v in y], ranked["mean_abs_shap_b"], height=0.4, label=f"B {job_b}")
    left.set_yticks(y, [_literal(_short(f, 32)) for f in ranked["feature"]], fontsize=8)
    left.set_xlabel("mean |SHAP|", fontsize=9)
    left.set_title("global ranking, both jobs", fontsize=10)
    left.legend(fontsize=8, loc="lower right")
    moved = features.head(TOP)
    _bars(
        right,
        list(moved["feature"]),
        list(moved["mean_difference"]),
        "what moved the outputs (features by mean |move|)",
        "mean move of SHAP, B - A",
    )
    summary = compared["summary"]
    title = (
        f"{job_a} (A) vs {job_b} (B): {summary['matched']:,} rows matched by "
        f"{summary['matched_by']}; mean |output move| {summary['mean_abs_move']:.3g}, "
        f"largest {summary['max_abs_move']:.3g}"
    )
    fig.suptitle(_literal(wrap(title, fig.get_figwidth() * 72 * 0.94, 10)), fontsize=10)
    fig.savefig(path)
