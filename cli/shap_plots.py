"""PNG plots of SHAP views: bar and beeswarm, waterfall, presence against importance."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# What a tree model's SHAP values add up to, by family (TreeExplainer's raw output).
OUTPUT_UNITS = {
    "xgboost": "log-odds",
    "lightgbm": "log-odds",
    "gbc": "log-odds",
    "rf": "probability",
    "et": "probability",
    "dt": "probability",
}


def pooled(table: pd.DataFrame) -> pd.Series:
    """Mean |SHAP| per feature over every row (models and classes pooled), largest first."""
    weighted = (table["mean_abs_shap"] * table["rows"]).groupby(table["feature"]).sum()
    pooled = weighted / table.groupby("feature")["rows"].sum()
    return pooled.sort_values(ascending=False, kind="stable")


def global_png(table: pd.DataFrame, sample: pd.DataFrame, title: str, path: str, top: int = 20):
    """Mean |SHAP| per feature as bars, beside a beeswarm of the same top features."""
    plt = _pyplot()
    head = pooled(table).head(top)
    features = list(head.index)[::-1]
    fig, (bars, swarm) = plt.subplots(
        1, 2, figsize=(13, max(3.0, 0.32 * len(features) + 1.2)), sharey=True
    )
    bars.barh(features, head.to_numpy()[::-1], color="#3b75af")
    bars.set_xlabel("mean |SHAP| (raw output)")
    bars.set_title(f"Global contribution: {title}", fontsize=10)
    rng = np.random.default_rng(0)
    scatter = None
    for y, feature in enumerate(features):
        part = sample[sample["feature"] == feature]
        if part.empty:
            continue
        values = part["value"].to_numpy(dtype=float)
        finite = np.isfinite(values)
        colour = np.full(len(values), np.nan)
        if finite.any():
            low, high = np.nanpercentile(values[finite], [5, 95])
            colour[finite] = np.clip((values[finite] - low) / ((high - low) or 1.0), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, size=len(part))
        missing = ~finite
        swarm.scatter(
            part["shap"].to_numpy()[missing], y + jitter[missing], s=4, c="#bbbbbb", alpha=0.6
        )
        scatter = swarm.scatter(
            part["shap"].to_numpy()[finite],
            y + jitter[finite],
            s=4,
            c=colour[finite],
            cmap="coolwarm",
            vmin=0,
            vmax=1,
            alpha=0.7,
        )
    swarm.axvline(0, color="#666666", linewidth=0.8)
    swarm.set_xlabel("SHAP value (grey: value missing)")
    swarm.set_title("Beeswarm (colour: feature value, low to high)", fontsize=10)
    if scatter is not None:
        fig.colorbar(scatter, ax=swarm, fraction=0.03, pad=0.01, ticks=[0, 1]).ax.set_yticklabels(
            ["low", "high"]
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def waterfall_png(header: dict, contributions: pd.DataFrame, path: str, top: int = 15):
    """One prediction: from the base value, each feature's push, to the output."""
    plt = _pyplot()
    head = contributions.head(top)
    rest = contributions["shap"].iloc[top:].sum()
    labels = [
        f"{f} = {v:.4g}" if pd.notna(v) else f"{f} (missing)"
        for f, v in zip(head["feature"], head["value"], strict=True)
    ]
    steps = list(head["shap"])
    if len(contributions) > top:
        labels.append(f"{len(contributions) - top} other features (sum)")
        steps.append(rest)
    start = float(header["base_value"])
    fig, ax = plt.subplots(figsize=(8.5, max(3.0, 0.35 * len(steps) + 1.8)))
    position = start
    span = max(abs(s) for s in steps) if steps else 1.0
    for y, step in enumerate(steps):
        row = len(steps) - 1 - y
        ax.barh(row, step, left=position, color="#d6604d" if step > 0 else "#4393c3")
        end = position + step
        ax.text(
            end + (0.01 if step >= 0 else -0.01) * span,
            row,
            f"{step:+.3g}",
            va="center",
            ha="left" if step >= 0 else "right",
            fontsize=7,
        )
        position = end
    reached = np.cumsum([start, *steps])
    low, high = float(reached.min()), float(reached.max())
    pad = 0.15 * ((high - low) or 1.0)
    ax.set_xlim(low - pad, high + pad)  # room for the values beside the bars
    ax.set_yticks(range(len(steps)))
    ax.set_yticklabels(labels[::-1], fontsize=8)
    unit = OUTPUT_UNITS.get(str(header.get("family")), "raw output")
    ax.axvline(
        start, color="#666666", linewidth=0.8, linestyle=":", label=f"base value {start:.4g}"
    )
    ax.axvline(position, color="#111111", linewidth=0.8, label=f"output {position:.4g}")
    ax.legend(loc="lower right", fontsize=7)
    probability = header.get("probability")
    suffix = (
        f", probability {probability:.3f}"
        if probability is not None and pd.notna(probability)
        else ""
    )
    scope = (
        f"model {header.get('model')}"
        + (f", class {header['class']}" if pd.notna(header.get("class")) else "")
        + (f" ({header['class_name']})" if header.get("class_name") is not None else "")
    )
    ax.set_title(
        f"{header['row_key']} ({scope}): base {start:.3f} -> output "
        f"{float(header['output']):.3f}{suffix}",
        fontsize=9,
    )
    ax.set_xlabel(f"model output ({unit}); red raises it, blue lowers it")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def presence_png(table: pd.DataFrame, title: str, path: str):
    """Presence rate against mean |SHAP| when present, one point per feature."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 6))
    ax.scatter(table["presence_rate"], table["mean_abs_shap_present"], color="#3b75af")
    ranked = table.sort_values("mean_abs_shap_present", ascending=False).head(12)
    for _, row in ranked.iterrows():
        ax.annotate(
            row["feature"],
            (row["presence_rate"], row["mean_abs_shap_present"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("presence rate (share of rows with the feature present)")
    ax.set_ylabel("mean |SHAP| when present")
    ax.set_title(f"Presence and contribution: {title}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
