"""The SHAP pages' figures: a beeswarm, presence against absence, a dependence scatter, and
one prediction's waterfall (plotly.js; see figures for how a page draws them).

Each hover shows the feature's name with its value or SHAP value; the beeswarm and
the dependence scatter draw a sample of rows, so that a page stays small and fast
on jobs of hundreds of thousands of rows.
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
    rounded,
    rows_axis,
    text,
    x_axis,
)


def beeswarm(sample: pd.DataFrame, features: list[str], unit: str, title: str) -> Figure | None:
    """One row of dots per feature: SHAP value across, coloured by the feature's value.

    `sample` has columns feature, value, shap (one row per sampled prediction and
    feature). Dots pile up where values are dense, as in shap's beeswarm; a
    missing or zero value (absent) is grey. None when there is nothing to draw.
    """
    if sample.empty or not features:
        return None
    lo, hi = float(sample["shap"].min()), float(sample["shap"].max())
    pad = (hi - lo) * 0.04 or 0.5
    lo, hi = min(lo - pad, 0.0), max(hi + pad, 0.0)
    groups = dict(tuple(sample.groupby("feature", sort=False)))
    traces = []
    for position, feature in enumerate(features):
        part = groups.get(feature)
        if part is None:
            continue
        shap = part["shap"].to_numpy(dtype=float)
        value = part["value"].to_numpy(dtype=float)
        # Pile dots up in bins of about a dot's width, alternating above and below.
        bins = np.round((shap - lo) / (hi - lo) * 120).astype(int)
        k = pd.Series(bins).groupby(bins).cumcount().to_numpy()
        offset = np.clip((k + 1) // 2 * np.where(k % 2, 1, -1) * 0.08, -0.42, 0.42)
        present = np.isfinite(value) & (value != 0)
        rank = pd.Series(value[present]).rank(pct=True).to_numpy()
        for shown, colour, values in ((present, rank, value[present]), (~present, None, None)):
            if not shown.any():
                continue
            trace = {
                "type": "scatter",
                "mode": "markers",
                "name": text(feature),
                "showlegend": False,
                "x": rounded(shap[shown], hi - lo),
                "y": np.round(position + offset[shown], 3).tolist(),
                "marker": {"size": 4, "opacity": 0.8, "color": ABSENT},
                "hovertemplate": "<b>%{fullData.name}</b><br>absent<br>SHAP %{x:.4~g}"
                "<extra></extra>",
            }
            if colour is not None:
                trace["marker"] = {
                    "size": 4,
                    "opacity": 0.8,
                    "color": np.round(colour, 3).tolist(),
                    "colorscale": [[0, LOW], [1, HIGH]],
                    "cmin": 0,
                    "cmax": 1,
                    "showscale": not any("colorbar" in t["marker"] for t in traces),
                }
                if trace["marker"]["showscale"]:
                    trace["marker"]["colorbar"] = {
                        "title": {"text": "feature value"},
                        "thickness": 10,
                        "len": 0.5,
                        "tickvals": [0, 1],
                        "ticktext": ["low", "high"],
                        "y": 1,
                        "yanchor": "top",
                        "x": 1.02,
                        "xanchor": "left",
                    }
                trace["customdata"] = np.char.mod("%.4g", values).tolist()
                trace["hovertemplate"] = (
                    "<b>%{fullData.name}</b><br>value %{customdata}<br>SHAP %{x:.4~g}"
                    "<extra></extra>"
                )
            traces.append(trace)
    # The grey dots' legend entry says what grey means.
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": [None],
            "y": [None],
            "name": "absent",
            "showlegend": True,
            "hoverinfo": "skip",
            "marker": {"size": 8, "color": ABSENT},
        }
    )
    layout = base_layout(
        640,
        110 + 26 * len(features),
        170,
        xaxis={**x_axis(f"SHAP value ({unit})"), "range": [lo, hi]},
        yaxis=rows_axis([text(f) for f in features]),
        showlegend=True,
        legend={"x": 1.02, "y": 0.35, "xanchor": "left", "yanchor": "top", "itemclick": False},
    )
    layout["margin"]["r"] = 110
    return Figure(title, traces, layout)


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


def dependence(sample: pd.DataFrame, feature: str, unit: str, title: str) -> Figure | None:
    """SHAP value against the feature's value for a sample of rows; absent rows in grey."""
    if sample.empty:
        return None
    value = sample["value"].to_numpy(dtype=float)
    shap = sample["shap"].to_numpy(dtype=float)
    present = np.isfinite(value) & (value != 0)
    shown = np.where(np.isfinite(value), value, 0.0)
    x_span = float(shown.max() - shown.min())
    y_span = float(max(shap.max(), 0.0) - min(shap.min(), 0.0))
    traces = []
    for which, colour, name in ((~present, ABSENT, "absent"), (present, HIGH, "present")):
        if which.any():
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": name,
                    "x": rounded(shown[which], x_span),
                    "y": rounded(shap[which], y_span),
                    "marker": {"size": 4.4, "opacity": 0.7, "color": colour},
                    "hovertemplate": f"<b>{text(feature)}</b> = %{{x:.4~g}} ({name})<br>"
                    "SHAP %{y:.4~g}<extra></extra>",
                }
            )
    layout = base_layout(
        520,
        400,
        70,
        xaxis=x_axis(f"{feature} (value; grey: absent)"),
        yaxis={**x_axis(f"SHAP ({unit})"), "zeroline": True},
    )
    return Figure(title, traces, layout)


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
