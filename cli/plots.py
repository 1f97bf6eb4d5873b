"""PNG plots of results."""

from __future__ import annotations

import pandas as pd


def gene_counts_png(table: pd.DataFrame, total: int, label: str, path: str) -> None:
    """Horizontal bars: each top gene's selection fraction with its Wilson 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table[::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(table) + 1)))
    errors = [rows["fraction"] - rows["fraction_lo"], rows["fraction_hi"] - rows["fraction"]]
    ax.barh(rows["gene"], rows["fraction"], color="#3b75af", xerr=errors, ecolor="#333333")
    ax.set_xlabel(f"fraction of the {total} fits that selected the gene (95% Wilson interval)")
    ax.set_title(f"Gene selection: {label}", fontsize=10)
    ax.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def stability_png(curve: pd.DataFrame, label: str, path: str) -> None:
    """Stability (with its 95% interval) and top-K agreement with the final set, against fits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    share = next(c for c in curve.columns if c.endswith("_in_final"))
    k = share.removeprefix("top").removesuffix("_in_final")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(curve["fits"], curve["lo"], curve["hi"], color="#3b75af", alpha=0.25)
    ax.plot(curve["fits"], curve["stability"], color="#3b75af", label="stability (95% interval)")
    final = f"share of the final top {k} in the top {k} so far"
    ax.plot(curve["fits"], curve[share], color="#d1603d", label=final)
    ax.set_xlabel("fits")
    ax.set_ylim(min(0.0, float(curve["lo"].min())), 1.02)
    ax.set_title(f"Selection stability against the number of fits: {label}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
