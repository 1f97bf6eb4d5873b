"""PNG plots of results."""

from __future__ import annotations

import pandas as pd


def gene_counts_png(table: pd.DataFrame, total: int, label: str, path: str) -> None:
    """A horizontal bar chart: how many runs selected each of the top genes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(table) + 1)))
    ax.barh(table["gene"][::-1], table["runs"][::-1], color="#3b75af")
    ax.set_xlabel(f"runs that selected the gene (of {total})")
    ax.set_title(f"Gene selection counts: {label}", fontsize=10)
    ax.set_xlim(0, max(total, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
