"""The explorer's plots as plotly.js figures: hover a bar or a dot to read its name and value.

Each function turns a query's frame into a `Figure` (plotly's JSON: traces and
layout), which a template embeds and static/explorer.js draws with the
plotly.js that the `plotly` package installs (served by the explorer itself,
so the pages work offline). The numbers a hover shows are formatted here, as
the tables beside the plots write them. Names reach plotly as HTML-escaped
text: plotly reads its labels as a small HTML dialect. The SHAP pages' own
figures (presence, waterfall) are in shap_figures, the beeswarm and the dependence
heatmap binned over every prediction in bin_figures, the comparisons' in compare_figures.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

LOW, HIGH, ABSENT, BAR = "rgb(67,147,195)", "rgb(214,96,77)", "#bbbbbb", "#3b75af"
ROW_PX = 22  # height of one feature's or gene's row


@dataclass(frozen=True)
class Figure:
    """One plot: its title (also the figure's accessible name), plotly traces and layout.

    `links` maps a trace's index to one URL per point: clicking the point opens it.
    """

    title: str
    data: list[dict]
    layout: dict
    links: dict[int, list[str]] = field(default_factory=dict)

    def spec(self) -> dict:
        return {"data": self.data, "layout": self.layout, "links": self.links}


def text(value) -> str:
    """A name or label as plotly should show it (its `<`, `>` and `&` literal)."""
    return html.escape(str(value), quote=False)


def number(value, digits: int = 4) -> str:
    """A number as the pages write it: 4 significant digits, blank when missing."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}g}"
    return str(value)


def base_layout(width: int, height: int, left: int = 170, **axes) -> dict:
    """A figure's layout; its title is the page's (a figcaption), above the mode bar."""
    return {
        "width": width,
        "height": height,
        "margin": {"l": left, "r": 20, "t": 26, "b": 46},
        "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#222"},
        "plot_bgcolor": "white",
        "hoverlabel": {"bgcolor": "white", "font": {"size": 12}},
        "showlegend": False,
        **axes,
    }


def x_axis(title: str) -> dict:
    return {
        "title": {"text": text(title)},
        "zeroline": True,
        "zerolinecolor": "#999",
        "gridcolor": "#eee",
        "linecolor": "#444",
        "ticks": "outside",
    }


def rows_axis(labels: list[str]) -> dict:
    """A y axis with one labelled row per position, the first at the top."""
    return {
        "tickmode": "array",
        "tickvals": list(range(len(labels))),
        "ticktext": labels,
        "range": [len(labels) - 0.5, -0.5],
        "showgrid": False,
        "zeroline": False,
        "automargin": True,  # a long name widens the left margin rather than being cut
    }


def gene_counts(counts: pd.DataFrame, total: int, title: str) -> Figure:
    """Each gene's selection fraction as a bar with its 95% Wilson interval, most selected on top.

    `counts` has gene, runs, fraction, fraction_lo, fraction_hi and mean_rank (the
    columns of storage.queries.gene_counts).
    """
    fraction = counts["fraction"].to_numpy(dtype=float)
    hover = [
        [
            text(r.gene),
            f"{r.runs} of {total} fits",
            number(r.fraction),
            f"{r.fraction_lo:.3f}-{r.fraction_hi:.3f}",
            number(r.mean_rank),
        ]
        for r in counts.itertuples()
    ]
    trace = {
        "type": "bar",
        "orientation": "h",
        "x": np.round(fraction, 4).tolist(),
        "y": list(range(len(counts))),
        "marker": {"color": "#9fc0e0"},
        "error_x": {
            "type": "data",
            "symmetric": False,
            "color": "#222",
            "thickness": 1.5,
            "width": 3,
            "array": np.round(counts["fraction_hi"].to_numpy(dtype=float) - fraction, 4).tolist(),
            "arrayminus": np.round(
                fraction - counts["fraction_lo"].to_numpy(dtype=float), 4
            ).tolist(),
        },
        "customdata": hover,
        "hovertemplate": "<b>%{customdata[0]}</b><br>selected in %{customdata[1]}: fraction "
        "%{customdata[2]}<br>95% interval %{customdata[3]}<br>mean rank %{customdata[4]}"
        "<extra></extra>",
    }
    axis = x_axis("fraction of fits that selected the gene (95% Wilson interval)")
    layout = base_layout(
        640,
        90 + ROW_PX * len(counts),
        150,
        xaxis={**axis, "range": [0, 1.02]},
        yaxis=rows_axis([text(g) for g in counts["gene"]]),
    )
    return Figure(title, [trace], layout)


def bars(series: pd.Series, title: str, unit: str, width: int = 420) -> Figure:
    """Mean |SHAP| per feature (or group), largest on top; hover reads the name and value."""
    values = series.to_numpy(dtype=float)
    trace = {
        "type": "bar",
        "orientation": "h",
        "x": values.tolist(),
        "y": list(range(len(series))),
        "marker": {"color": BAR},
        "customdata": [[text(n), number(float(v))] for n, v in series.items()],
        "hovertemplate": f"<b>%{{customdata[0]}}</b><br>mean |SHAP| %{{customdata[1]}} "
        f"({text(unit)})<extra></extra>",
    }
    layout = base_layout(
        width,
        90 + ROW_PX * len(series),
        160,
        xaxis=x_axis(f"mean |SHAP| ({unit})"),
        yaxis=rows_axis([text(n) for n in series.index]),
    )
    return Figure(title, [trace], layout)
