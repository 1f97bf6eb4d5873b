"""The SHAP page's plots over every prediction, from the bins of storage.shap_bins: a beeswarm
of counts per SHAP bin and a feature's dependence as a heatmap of counts (plotly.js).

Nothing is sampled: each bin says how many predictions fall in it, so a rare strong
effect shows as well as the crowd. Hovering a bin reads its range, its rows, the rows
without a value and (beeswarm) how high the feature's value is among them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genejobs.cli.explorer.figures import ABSENT, HIGH, LOW, Figure, base_layout, rows_axis, text
from genejobs.cli.explorer.figures import x_axis as value_axis

HALF = 0.44  # a feature's row: its bins reach this far above (with a value) and below (none)
LEAST = 0.05  # the height of a bin of one row: every bin with a row stays visible
NO_LEVEL = "#7a7a7a"  # a bin whose present values do not vary (no 1st to 99th percentile span)
SCALE = [[0, LOW], [1, HIGH]]


def _rgb(colour: str) -> np.ndarray:
    return np.array([float(part) for part in colour[4:-1].split(",")])


def level_colours(levels: np.ndarray) -> list[str]:
    """Each value level (0 low to 1 high) as the colour scale draws it; none: NO_LEVEL."""
    low, high = _rgb(LOW), _rgb(HIGH)
    colours = []
    for level in levels:
        if not np.isfinite(level):
            colours.append(NO_LEVEL)
            continue
        r, g, b = np.round(low + (high - low) * float(level)).astype(int)
        colours.append(f"rgb({r},{g},{b})")
    return colours


def _range(lo: float, hi: float) -> str:
    return f"{lo:.3g} to {hi:.3g}"


def beeswarm(bins: pd.DataFrame, unit: str, title: str) -> Figure | None:
    """One row per feature: above its line the predictions with a value, per SHAP bin,
    coloured by the value's level; below it, in grey, those without one.

    `bins` has the columns of storage.shap_bins.beeswarm_bins. A bin's height grows
    with the log of its rows. Each bar's customdata holds, after the feature and the
    bin's range, the rows it draws, the bin's rows and rows absent, and the value level:
    the bars of a feature add up to its rows. None when there is nothing to draw.
    """
    if bins.empty:
        return None
    features = list(dict.fromkeys(bins.sort_values("rank")["feature"]))
    present = (bins["rows"] - bins["rows_absent"]).to_numpy(dtype=float)
    absent = bins["rows_absent"].to_numpy(dtype=float)
    most = max(float(present.max()), float(absent.max()), 1.0)
    lo, hi = float(bins["shap_lo"].min()), float(bins["shap_hi"].max())
    pad = (hi - lo) * 0.03 or 0.5
    traces = []
    for position, feature in enumerate(features):
        part = bins[bins["feature"] == feature]
        level = part["value_level"].to_numpy(dtype=float)
        with_value = part["rows"] - part["rows_absent"]
        for above, drawn in ((True, with_value), (False, part["rows_absent"])):
            shown = drawn.to_numpy(dtype=float) > 0
            if not shown.any():
                continue
            counts = drawn.to_numpy(dtype=float)[shown]
            height = LEAST + (HALF - LEAST) * np.log1p(counts) / np.log1p(most)
            rows = part[shown]
            levels = level[shown]
            custom = [
                [text(feature), _range(r.shap_lo, r.shap_hi), int(n), int(r.rows),
                 int(r.rows_absent), "—" if not np.isfinite(v) else f"{v:.2f}"]
                for r, n, v in zip(rows.itertuples(), counts, levels, strict=True)
            ]  # fmt: skip
            traces.append(
                {
                    "type": "bar",
                    "name": text(feature),
                    "showlegend": False,
                    "x": np.round((rows["shap_lo"] + rows["shap_hi"]).to_numpy() / 2, 6).tolist(),
                    "width": float(rows["shap_hi"].iloc[0] - rows["shap_lo"].iloc[0]),
                    "y": np.round(height, 3).tolist(),
                    "base": np.round(position - height, 3).tolist() if above else position,
                    "marker": {
                        "color": level_colours(levels) if above else ABSENT,
                        "line": {"width": 0},
                    },
                    "customdata": custom,
                    "hovertemplate": "<b>%{customdata[0]}</b><br>SHAP %{customdata[1]}<br>"
                    "%{customdata[3]} predictions, %{customdata[4]} without a value<br>"
                    "value level %{customdata[5]} (0: 1st percentile, 1: 99th)<extra></extra>",
                }
            )
    traces += _keys()
    layout = base_layout(
        680,
        120 + 30 * len(features),
        170,
        xaxis={**value_axis(f"SHAP value ({unit})"), "range": [min(lo - pad, 0), max(hi + pad, 0)]},
        yaxis={**rows_axis([text(f) for f in features]), "showgrid": True, "gridcolor": "#eee"},
        barmode="overlay",
        bargap=0,
        showlegend=True,
        legend={"x": 1.02, "y": 0.3, "xanchor": "left", "yanchor": "top", "itemclick": False},
    )
    layout["margin"]["r"] = 150
    return Figure(title, traces, layout)


def _keys() -> list[dict]:
    """The colour bar (value level) and the legend's grey: traces that draw no point."""
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "x": [None],
            "y": [None],
            "showlegend": False,
            "hoverinfo": "skip",
            "marker": {
                "color": [0.5],
                "colorscale": SCALE,
                "cmin": 0,
                "cmax": 1,
                "showscale": True,
                "colorbar": {
                    "title": {"text": "value level", "side": "top"},
                    "thickness": 10,
                    "len": 0.45,
                    "tickvals": [0, 1],
                    "ticktext": ["low", "high"],
                    "y": 1,
                    "yanchor": "top",
                    "x": 1.02,
                    "xanchor": "left",
                },
            },
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": [None],
            "y": [None],
            "name": "no value (below the line)",
            "hoverinfo": "skip",
            "marker": {"size": 10, "symbol": "square", "color": ABSENT},
        },
    ]


def _centres(lo: pd.Series, hi: pd.Series) -> tuple[np.ndarray, float, np.ndarray]:
    """The full grid of bins that `lo`/`hi` are some of: every centre, the width, each bin's
    place on the grid (a bin without rows is left out of the query's answer)."""
    width = float((hi - lo).iloc[0])
    start = float(lo.min())
    place = np.round((lo.to_numpy(dtype=float) - start) / width).astype(int)
    grid = start + (np.arange(place.max() + 1) + 0.5) * width
    return grid, width, place


def dependence(found: dict, feature: str, unit: str, title: str) -> Figure | None:
    """A feature's SHAP against its value over every prediction: a heatmap of the rows per
    (value bin, SHAP bin), log-coloured, and beside it the SHAP of the rows without a value.

    `found` is storage.shap_bins.dependence_bins' answer. None when no row has the feature.
    """
    cells, absent = found["cells"], found["absent"]
    if cells.empty and absent.empty:
        return None
    name = text(feature)
    side = not absent.empty
    traces = []
    if not cells.empty:
        xs, _, x_at = _centres(cells["value_lo"], cells["value_hi"])
        ys, _, y_at = _centres(cells["shap_lo"], cells["shap_hi"])
        counts = np.full((len(ys), len(xs)), np.nan)
        words = np.full((len(ys), len(xs)), "", dtype=object)
        for r, i, j in zip(cells.itertuples(), y_at, x_at, strict=True):
            counts[i, j] = r.rows
            words[i, j] = (
                f"value {_range(r.value_lo, r.value_hi)}<br>SHAP {_range(r.shap_lo, r.shap_hi)}"
                f"<br>{r.rows:,} predictions"
            )
        top = int(np.ceil(np.log10(max(np.nanmax(counts), 10))))
        traces.append(
            {
                "type": "heatmap",
                "x": np.round(xs, 6).tolist(),
                "y": np.round(ys, 6).tolist(),
                "z": [
                    [None if np.isnan(c) else round(float(np.log10(c)), 3) for c in row]
                    for row in counts
                ],  # fmt: skip
                "text": words.tolist(),
                "customdata": [[None if np.isnan(c) else int(c) for c in row] for row in counts],
                "colorscale": "Viridis",
                "reversescale": True,
                "zmin": 0,
                "zmax": top,
                "hovertemplate": f"<b>{name}</b><br>%{{text}}<extra></extra>",
                "colorbar": {
                    "title": {"text": "predictions"},
                    "thickness": 10,
                    "len": 0.8,
                    "tickvals": list(range(top + 1)),
                    "ticktext": [f"{10**k:,}" for k in range(top + 1)],
                    "x": 0.635 if side else 1.01,
                    "xanchor": "left",
                },
            }
        )
    if side:
        middle = (absent["shap_lo"] + absent["shap_hi"]).to_numpy(dtype=float) / 2
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "xaxis": "x2",
                "y": np.round(middle, 6).tolist(),
                "x": absent["rows"].astype(int).tolist(),
                "width": float((absent["shap_hi"] - absent["shap_lo"]).iloc[0]),
                "marker": {"color": "#8a8a8a", "line": {"width": 0}},
                "customdata": [
                    [_range(r.shap_lo, r.shap_hi), f"{r.rows:,}"] for r in absent.itertuples()
                ],
                "hovertemplate": f"<b>{name}</b>: no value<br>SHAP %{{customdata[0]}}<br>"
                "%{customdata[1]} predictions<extra></extra>",
            }
        )
    heat = [0, 0.62] if side else [0, 1]
    axis_x = value_axis(f"{feature} (0.5th-99.5th percentile; beyond: edge bins)")
    layout = base_layout(
        780,
        440,
        70,
        xaxis={**axis_x, "domain": heat, "zeroline": False, "showgrid": False},
        yaxis={**value_axis(f"SHAP ({unit})"), "showgrid": False},
        bargap=0,
    )
    if side:
        layout["xaxis2"] = {
            **value_axis(f"rows without a value ({found['missing']:,})"),
            "domain": [0.78, 1],
            "anchor": "y",
            "rangemode": "tozero",
        }
    layout["margin"]["r"] = 20 if side else 90
    return Figure(title, traces, layout)
