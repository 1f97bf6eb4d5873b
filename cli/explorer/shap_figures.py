"""The SHAP pages' figures: presence against absence, and one prediction's waterfall
(plotly.js; see figures for how a page draws them). The beeswarm and the dependence plot,
drawn from every prediction binned, are in bin_figures; the comparisons' in compare_figures.

Each hover shows the feature's name with its value or SHAP value.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from genejobs.cli.explorer.figures import (
    ABSENT,
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


def presence(table: pd.DataFrame, unit: str, title: str, link) -> Figure | None:
    """Per feature, mean SHAP when present (red) and when absent (grey), joined by a line.

    A feature that matters only when present has its grey dot at zero and its red
    dot away from it. `link(feature)` gives the URL of a feature's dependence plot:
    its label and its dots open it. None when no feature is present in any row.
    """
    rows = table.dropna(subset=["mean_shap_present"]).head(20).reset_index(drop=True)
    if rows.empty:
        return None
    present = rows["mean_shap_present"].to_numpy(dtype=float)
    absent = rows["mean_shap_absent"].to_numpy(dtype=float)
    both = np.isfinite(absent)
    segments_x, segments_y = [], []
    for position in np.flatnonzero(both):
        segments_x += [float(absent[position]), float(present[position]), None]
        segments_y += [int(position), int(position), None]
    urls = [link(f) for f in rows["feature"]]
    rate = [f"{100 * float(r):.0f}%" for r in rows["presence_rate"]]
    names = [text(f) for f in rows["feature"]]

    def hover(state: str) -> str:
        return (
            f"<b>%{{customdata[0]}}</b><br>mean SHAP when {state} %{{x:.4~g}}<br>"
            "present in %{customdata[1]} of predictions<extra></extra>"
        )

    at_both = np.flatnonzero(both)
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": segments_x,
            "y": segments_y,
            "line": {"color": "#ccc", "width": 2},
            "hoverinfo": "skip",
            "showlegend": False,
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "when absent",
            "x": absent[both].tolist(),
            "y": at_both.tolist(),
            "marker": {"size": 8, "color": ABSENT},
            "customdata": [[names[i], rate[i]] for i in at_both],
            "hovertemplate": hover("absent"),
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "when present",
            "x": present.tolist(),
            "y": list(range(len(rows))),
            "marker": {"size": 8, "color": HIGH},
            "customdata": [[n, r] for n, r in zip(names, rate, strict=True)],
            "hovertemplate": hover("present"),
        },
    ]
    labels = [
        f'<a href="{html.escape(url)}" target="_self">{name}</a>'
        for url, name in zip(urls, names, strict=True)
    ]
    annotations = [
        {
            "xref": "paper",
            "yref": "y",
            "x": 1.01,
            "y": i,
            "xanchor": "left",
            "showarrow": False,
            "text": f"present in {rate[i]}",
            "font": {"size": 11, "color": "#555"},
        }
        for i in range(len(rows))
    ]
    layout = base_layout(
        660,
        110 + ROW_PX * len(rows),
        170,
        xaxis=x_axis(f"mean SHAP ({unit})"),
        yaxis=rows_axis(labels),
        showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom", "itemclick": False},
        annotations=annotations,
    )
    layout["margin"]["r"] = 110
    return Figure(title, traces, layout, links={1: [urls[i] for i in at_both], 2: urls})


def waterfall(header: dict, contributions: pd.DataFrame, unit: str, title: str, top: int = 15):
    """One prediction: from the base value, each of its largest contributions, then the rest."""
    shown = contributions.head(top)
    rest = contributions.iloc[top:]
    labels = [f"{text(r.feature)} = {number(r.value)}" for r in shown.itertuples()]
    deltas = shown["shap"].astype(float).tolist()
    if len(rest):
        labels.append(f"{len(rest)} other features")
        deltas.append(float(rest["shap"].sum()))
    labels.append("output")
    trace = {
        "type": "waterfall",
        "orientation": "h",
        "base": float(header["base_value"]),
        "measure": ["relative"] * len(deltas) + ["total"],
        "x": [*deltas, 0],
        "y": list(range(len(labels))),
        "increasing": {"marker": {"color": HIGH}},
        "decreasing": {"marker": {"color": LOW}},
        "totals": {"marker": {"color": "#555"}},
        "connector": {"line": {"color": "#bbb"}},
        "customdata": [[lab, f"{d:+.4g}"] for lab, d in zip(labels, deltas, strict=False)]
        + [["output", number(float(header["output"]))]],
        "hovertemplate": "<b>%{customdata[0]}</b><br>SHAP %{customdata[1]}<extra></extra>",
    }
    base = number(float(header["base_value"]))
    layout = base_layout(
        640,
        110 + ROW_PX * len(labels),
        230,
        xaxis=x_axis(f"model output ({unit}), from the base value {base}"),
        yaxis=rows_axis(labels),
    )
    return Figure(title, [trace], layout)
