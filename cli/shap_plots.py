"""PNG plots of SHAP views: bar and beeswarm, waterfall, presence against importance.

Every title and label is fitted to the figure (titles wrapped, long labels
shortened, the presence plot's labels spread out), since row keys, model paths
and feature names are as long as the data makes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


DPI = 110


def _figure(width: float, height: float):
    """A figure of its own (no pyplot state) with constrained layout, saved by Agg."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _literal(text) -> str:
    """`text` drawn as it is: a pair of `$` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def _short(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis, so a long name cannot crowd a plot."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text_width(text: str, fontsize: float) -> float:
    from matplotlib.textpath import TextPath

    return TextPath((0, 0), _literal(text), size=fontsize).get_extents().width


def wrap(text: str, width_pt: float, fontsize: float) -> str:
    """`text` broken into lines at most `width_pt` points wide at `fontsize`.

    Lines break at spaces; a word wider than a line (a model's path) goes on
    where the line has room and is split where it is full. Widths are
    measured in the default font, not guessed from a count of characters.
    """

    def fits(part: str) -> bool:
        return _text_width(part, fontsize) <= width_pt

    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if fits(candidate):
                line = candidate
                continue
            if fits(word):
                lines.append(line)
                line = word
                continue
            line = candidate
            while not fits(line):
                low, high = 1, len(line) - 1  # the longest head that fits, by bisection
                while low < high:
                    middle = (low + high + 1) // 2
                    low, high = (middle, high) if fits(line[:middle]) else (low, middle - 1)
                lines.append(line[:low].rstrip())
                line = line[low:]
        lines.append(line)
    return "\n".join(lines)


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
    width = 13
    fig, (bars, swarm) = plt.subplots(
        1, 2, figsize=(width, max(3.0, 0.32 * len(features) + 1.2)), sharey=True
    )
    bars.barh(features, head.to_numpy()[::-1], color="#3b75af")
    bars.set_xlabel("mean |SHAP| (raw output)")
    # Its half of the figure: a long scope would run into the beeswarm's title.
    heading = _literal(wrap(f"Global contribution: {title}", 0.45 * width * 72, 10))
    bars.set_title(heading, fontsize=10)
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
    """One prediction's waterfall (see `waterfall_figure`) as a PNG."""
    waterfall_figure(header, contributions, top).savefig(path, dpi=DPI)


def waterfall_figure(header: dict, contributions: pd.DataFrame, top: int = 15):
    """One prediction: from the base value, each feature's push, to the output.

    The title says the row, its model and class, and base value to output on
    lines of their own, each wrapped to the figure's width.
    """
    head = contributions.head(top)
    rest = contributions["shap"].iloc[top:].sum()
    labels = [
        _literal(_short(f"{f} = {v:.4g}" if pd.notna(v) else f"{f} (missing)", 48))
        for f, v in zip(head["feature"], head["value"], strict=True)
    ]
    steps = list(head["shap"])
    if len(contributions) > top:
        labels.append(f"{len(contributions) - top} other features (sum)")
        steps.append(rest)
    start = float(header["base_value"])
    width = 8.5
    fig = _figure(width, max(3.6, 0.35 * len(steps) + 2.6))
    ax = fig.subplots()
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
    # Below the axes, where no bar or value can be under it.
    fig.legend(loc="outside lower center", ncols=2, fontsize=7, frameon=False)
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
    lines = [
        str(header["row_key"]),
        scope,
        f"base {start:.3f} -> output {float(header['output']):.3f}{suffix}",
    ]
    fig.suptitle(_literal(wrap("\n".join(lines), 0.94 * width * 72, 9)), fontsize=9)
    ax.set_xlabel(f"model output ({unit}); red raises it, blue lowers it")
    return fig


def presence_png(table: pd.DataFrame, title: str, path: str):
    """Presence against contribution (see `presence_figure`) as a PNG."""
    presence_figure(table, title).savefig(path, dpi=DPI)


# Where a label may go from its point, in points: beside it first, then above or below
# it with a leader line, farther and farther.
_OFFSETS = [(6, 0), (-6, 0)] + [
    (dx, sign * dy)
    for dy in (10, 18, 28, 40, 55, 75, 100, 130)
    for dx in (8, -8, 40, -40)
    for sign in (1, -1)
]


def _label_points(fig, ax, points: list[tuple[str, float, float]], fontsize: float) -> None:
    """Name each point near it: no name over another name, a named point or a leader line.

    Each name takes the first free place in `_OFFSETS`, measured on the drawn
    figure, whose leader line (if any) crosses no name either; a name that
    finds none (in a crowd of dozens) is left out rather than written over
    another.
    """
    from matplotlib.text import Text

    fig.canvas.draw()  # the layout is fixed now: the names stay inside the axes
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer).shrunk(0.995, 0.995)
    marker = 4 * fig.dpi / 72  # a point's radius in pixels, with a margin
    anchors = [ax.transData.transform((x, y)) for _, x, y in points]
    markers = [_box(px - marker, py - marker, px + marker, py + marker) for px, py in anchors]
    names: list = []
    leaders: list[np.ndarray] = []  # points along each leader line drawn, in pixels
    along = np.linspace(0.1, 0.9, 17)[:, None]
    for (name, x, y), anchor in zip(points, anchors, strict=True):
        for dx, dy in _OFFSETS:
            label = ax.annotate(
                name,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right",
                va="center",
                fontsize=fontsize,
                # The leader leaves the name's near end, as `leader` below assumes.
                arrowprops=None
                if dy == 0
                else {
                    "arrowstyle": "-",
                    "color": "#999999",
                    "linewidth": 0.6,
                    "shrinkB": 3,
                    "relpos": (0.0 if dx > 0 else 1.0, 0.5),
                },
            )
            label.update_positions(renderer)
            box = Text.get_window_extent(label, renderer)  # the name, not its leader line
            end = anchor + np.array([dx, dy]) * fig.dpi / 72
            leader = anchor + along * (end - anchor) if dy else np.empty((0, 2))
            free = (
                frame.x0 <= box.x0
                and box.x1 <= frame.x1
                and frame.y0 <= box.y0
                and box.y1 <= frame.y1
                and not any(box.overlaps(b) for b in names + markers)
                and not any(_crosses(box, line) for line in leaders)
                and not any(_crosses(b, leader) for b in names)
            )
            if free:
                names.append(box)
                leaders.append(leader)
                break
            label.remove()


def _crosses(box, line: np.ndarray) -> bool:
    """Whether any of the points along a line (pixels, one per row) lies in `box`."""
    x, y = line[:, 0], line[:, 1]
    return bool(((box.x0 <= x) & (x <= box.x1) & (box.y0 <= y) & (y <= box.y1)).any())


def _box(x0: float, y0: float, x1: float, y1: float):
    from matplotlib.transforms import Bbox

    return Bbox([[x0, y0], [x1, y1]])


def presence_figure(table: pd.DataFrame, title: str, labelled: int = 12):
    """Presence rate against mean |SHAP| when present, one point per feature.

    The `labelled` features of largest mean |SHAP| are drawn darker and named
    beside their points, no name over another: the distance features, all
    present and of like contribution, sit on top of each other.
    """
    width, height = 10.0, 6.5
    fig = _figure(width, height)
    ax = fig.subplots()
    ax.scatter(table["presence_rate"], table["mean_abs_shap_present"], color="#9bb8d3", s=22)
    ranked = table.dropna(subset=["mean_abs_shap_present"])
    ranked = ranked.sort_values("mean_abs_shap_present", ascending=False).head(labelled)
    ax.scatter(ranked["presence_rate"], ranked["mean_abs_shap_present"], color="#1f5a96", s=26)
    ax.set_xlim(-0.03, 1.03)
    ax.margins(y=0.08)
    ax.set_xlabel("presence rate (share of rows with the feature present)")
    ax.set_ylabel("mean |SHAP| when present")
    heading = wrap(f"Presence and contribution: {title}", 0.94 * width * 72, 10)
    fig.suptitle(_literal(heading), fontsize=10)
    points = [
        (_literal(_short(str(r.feature), 32)), r.presence_rate, r.mean_abs_shap_present)
        for r in ranked.itertuples()
    ]
    _label_points(fig, ax, points, fontsize=8)
    return fig
