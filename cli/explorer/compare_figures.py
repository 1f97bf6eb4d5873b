"""The comparisons' plots (plotly.js): what separates two predictions, and what moved
between two SHAP jobs over the same rows.

SHAP values add up, so a difference of outputs splits into a difference per
feature (storage.shap_compare); these draw those differences as signed bars,
largest first, red where it raises the first term and blue where it lowers it,
and the two jobs' global rankings side by side. Every hover names the feature
and shows both of its values and both SHAP values with their difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genejobs.cli.explorer.figures import (
    BAR,
    HIGH,
    LOW,
    ROW_PX,
    Figure,
    base_layout,
    number,
    rows_axis,
    text,
    x_axis,
)

TOP = 20  # bars of a difference plot; the rest are summed into one bar
A_COLOUR = "#a6c8e6"  # job A's bars beside job B's (figures.BAR)


def _signed(value: float) -> str:
    return f"{value:+.4g}"


def signed_bars(
    labels: list[str], values: list[float], hover: list[list[str]], template: str, title: str,
    axis: str, width: int = 600,
) -> Figure:  # fmt: skip
    """Horizontal bars of signed values, first on top: red above zero, blue below.

    `hover` holds each bar's customdata (its first item the bar's name), which
    `template` (a plotly hovertemplate) reads.
    """
    trace = {
        "type": "bar",
        "orientation": "h",
        "x": [round(float(v), 6) for v in values],
        "y": list(range(len(values))),
        "marker": {"color": [HIGH if v > 0 else LOW for v in values]},
        "customdata": hover,
        "hovertemplate": template + "<extra></extra>",
        "text": [_signed(v) for v in values],
        "textposition": "outside",
        "cliponaxis": False,
        "textfont": {"size": 10, "color": "#444"},
    }
    lowest, highest = min(0.0, *values), max(0.0, *values)
    # Room beside the longest bars for their numbers (about 60 px on each side).
    pad = (highest - lowest or 1.0) * 60 / max(width - 150 - 20 - 120, 100)
    layout = base_layout(
        width,
        100 + ROW_PX * len(values),
        150,
        xaxis={**x_axis(axis), "range": [lowest - pad * (lowest < 0), highest + pad]},
        yaxis=rows_axis([text(label) for label in labels]),
    )
    return Figure(title, [trace], layout)


def feature_differences(features: pd.DataFrame, column: str, sign: str, unit: str, title: str):
    """Per feature, `column` (SHAP of one minus the other, `sign` says which: "A − B"): the
    largest TOP, then the rest summed.

    `features` has feature, value_a, value_b, shap_a, shap_b and `column`, largest
    |difference| first (storage.shap_compare.pair's `features`, or move's).
    """
    features = features[features[column] != 0]  # a feature that did not move: no bar
    shown = features.head(TOP)
    labels = [str(f) for f in shown["feature"]]
    values = shown[column].astype(float).tolist()
    hover = [
        [text(r.feature), number(r.value_a), number(r.value_b), _signed(float(r.shap_a)),
         _signed(float(r.shap_b)), _signed(float(getattr(r, column)))]
        for r in shown.itertuples()
    ]  # fmt: skip
    rest = features.iloc[TOP:]
    if len(rest):
        labels.append(f"{len(rest)} other features")
        values.append(float(rest[column].sum()))
        hover.append([f"{len(rest)} other features", "", "", _signed(float(rest["shap_a"].sum())),
                      _signed(float(rest["shap_b"].sum())), _signed(values[-1])])  # fmt: skip
    template = (
        "<b>%{customdata[0]}</b><br>value: A %{customdata[1]}, B %{customdata[2]}"
        "<br>SHAP: A %{customdata[3]}, B %{customdata[4]}"
        f"<br>SHAP {sign}: %{{customdata[5]}}"
    )
    return signed_bars(labels, values, hover, template, title, f"SHAP {sign} ({unit})")


def group_differences(groups: pd.DataFrame, column: str, sign: str, unit: str, title: str):
    """Per feature group, the sums of its features' SHAP values in A and B, and `column`."""
    hover = [
        [text(r.group), _signed(float(r.shap_a)), _signed(float(r.shap_b)),
         _signed(float(getattr(r, column)))]
        for r in groups.itertuples()
    ]  # fmt: skip
    template = (
        "<b>%{customdata[0]}</b><br>sum of SHAP: A %{customdata[1]}, B %{customdata[2]}"
        f"<br>{sign}: %{{customdata[3]}}"
    )
    values = groups[column].astype(float).tolist()
    axis = f"group's SHAP sum, {sign} ({unit})"
    return signed_bars(list(groups["group"]), values, hover, template, title, axis, width=460)


def rankings(features: pd.DataFrame, job_a: str, job_b: str, unit: str, title: str) -> Figure:
    """Mean |SHAP| per feature in job A and in job B side by side, with each job's rank.

    `features` is storage.shap_compare.compare's; the TOP features by the larger
    of the two means are drawn, largest on top.
    """
    larger = features[["mean_abs_shap_a", "mean_abs_shap_b"]].max(axis=1)
    shown = features.loc[larger.sort_values(ascending=False, kind="stable").index].head(TOP)
    hover = [
        [text(r.feature), number(float(r.mean_abs_shap_a)), f"{r.rank_a:.0f}",
         number(float(r.mean_abs_shap_b)), f"{r.rank_b:.0f}"]
        for r in shown.itertuples()
    ]  # fmt: skip
    template = (
        "<b>%{customdata[0]}</b><br>mean |SHAP| in A %{customdata[1]} (rank %{customdata[2]})"
        "<br>in B %{customdata[3]} (rank %{customdata[4]})<extra></extra>"
    )
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": text(f"A {job_a}"),
            "x": np.round(shown[column].to_numpy(dtype=float), 6).tolist(),
            "y": list(range(len(shown))),
            "marker": {"color": colour},
            "customdata": hover,
            "hovertemplate": template,
        }
        for column, colour in (("mean_abs_shap_a", A_COLOUR), ("mean_abs_shap_b", BAR))
    ]
    traces[1]["name"] = text(f"B {job_b}")
    labels = [f"{text(r.feature)} ({r.rank_a:.0f} → {r.rank_b:.0f})" for r in shown.itertuples()]
    layout = base_layout(
        560,
        130 + 30 * len(shown),
        200,
        xaxis=x_axis(f"mean |SHAP| ({unit})"),
        yaxis=rows_axis(labels),
        barmode="group",
        showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom", "itemclick": False},
    )
    layout["margin"]["t"] = 64  # the legend above the plot, the mode bar above the legend
    return Figure(title, traces, layout)


def mean_moves(table: pd.DataFrame, name: str, unit: str, title: str) -> Figure:
    """Per feature (or group, `name` its column): the mean |move| B − A as bars, and the mean
    signed move as a dot on each, over the matched rows; largest mean |move| on top."""
    shown = table.head(TOP)
    hover = [
        [text(getattr(r, name)), number(float(r.mean_abs_difference)),
         _signed(float(r.mean_difference)), number(float(r.mean_abs_shap_a)),
         number(float(r.mean_abs_shap_b))]
        for r in shown.itertuples()
    ]  # fmt: skip
    template = (
        "<b>%{customdata[0]}</b><br>mean |move| %{customdata[1]}, mean move %{customdata[2]}"
        "<br>mean |SHAP|: A %{customdata[3]}, B %{customdata[4]}<extra></extra>"
    )
    signed = shown["mean_difference"].to_numpy(dtype=float)
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "mean |move|",
            "x": np.round(shown["mean_abs_difference"].to_numpy(dtype=float), 6).tolist(),
            "y": list(range(len(shown))),
            "marker": {"color": "#c9c9c9"},
            "customdata": hover,
            "hovertemplate": template,
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "mean move (signed)",
            "x": np.round(signed, 6).tolist(),
            "y": list(range(len(shown))),
            "marker": {
                "size": 9,
                "symbol": "diamond",
                "color": [HIGH if v > 0 else LOW for v in signed],
                "line": {"width": 1, "color": "#333"},
            },
            "customdata": hover,
            "hovertemplate": template,
        },
    ]
    layout = base_layout(
        560,
        130 + ROW_PX * len(shown),
        150,
        xaxis=x_axis(f"SHAP in B − SHAP in A ({unit})"),
        yaxis=rows_axis([text(v) for v in shown[name]]),
        showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom", "itemclick": False},
    )
    layout["margin"]["t"] = 64
    return Figure(title, traces, layout)
