"""PNG plots of holdout evaluations: a confusion matrix and an accuracy distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(matrix: np.ndarray, classes: list[str], title: str, path: str) -> None:
    """The confusion matrix with class labels on both axes and the count in every cell."""
    plt = _pyplot()
    size = max(4.0, 0.6 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), labels=classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = matrix.max() / 2 if matrix.size and matrix.max() > 0 else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j, i, str(int(matrix[i, j])), ha="center", va="center",
                color="white" if matrix[i, j] > threshold else "black",
            )  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def accuracy_png(accuracies: np.ndarray, title: str, path: str) -> None:
    """A histogram of holdout accuracy over split seeds, with its mean marked."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    low, high = float(np.min(accuracies)), float(np.max(accuracies))
    if high - low < 1e-9:
        # One value: one narrow bar at it, not a histogram stretched around it.
        bins = [low - 0.005, low + 0.005]
        ax.set_xlim(max(0.0, low - 0.1), min(1.0, low + 0.1) + 0.01)
    else:
        bins = min(30, max(5, len(accuracies) // 3))
    ax.hist(accuracies, bins=bins, color="#3b75af")
    mean = float(np.mean(accuracies))
    ax.axvline(mean, color="#c0392b", linestyle="--", label=f"mean {mean:.3f}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("holdout accuracy")
    ax.set_ylabel("split seeds")
    ax.legend()
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def second_path(path: str, suffix: str) -> str:
    """`counts.png` -> `counts_<suffix>.png`, beside the first plot."""
    first = Path(path)
    return str(first.with_name(f"{first.stem}_{suffix}{first.suffix or '.png'}"))
