"""SVG plots for the explorer: a SHAP beeswarm, presence against absence, a dependence scatter.

Drawn on the server as inline SVG from a sample of rows (no plotting library,
no script): a page with every plot stays small and answers fast on jobs of
hundreds of thousands of rows.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

LOW, HIGH, ABSENT = (67, 147, 195), (214, 96, 77), "#bbbbbb"


def _esc(value) -> str:
    return html.escape(str(value))


def _colour(fraction: float) -> str:
    """Blue (low) to red (high) through purple, like shap's beeswarm."""
    r, g, b = (round(lo + (hi - lo) * fraction) for lo, hi in zip(LOW, HIGH, strict=True))
    return f"rgb({r},{g},{b})"


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** np.floor(np.log10((hi - lo) / count))
    for factor in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * factor) <= count:
            step *= factor
            break
    first = np.ceil(lo / step) * step
    return [float(round(t, 10)) + 0.0 for t in np.arange(first, hi + step / 2, step)]


def _axis(x0, x1, lo, hi, y, label: str) -> list[str]:
    def at(v):
        return x0 + (v - lo) / (hi - lo or 1) * (x1 - x0)

    parts = [f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#444"/>']
    for tick in _ticks(lo, hi):
        x = at(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#444"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{y + 16}" text-anchor="middle" font-size="11">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{(x0 + x1) / 2:.0f}" y="{y + 32}" text-anchor="middle" font-size="12">'
        f"{_esc(label)}</text>"
    )
    return parts


def _svg_start(title: str, width: float, height: float, left: float) -> list[str]:
    """An inline SVG's opening tag (labelled by its title) and the title drawn at its top."""
    return [
        f'<svg class="plot" role="img" aria-label="{_esc(title)}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">',
        f'<text x="{left}" y="16" font-size="13">{_esc(title)}</text>',
    ]


def beeswarm(sample: pd.DataFrame, features: list[str], unit: str, title: str) -> str:
    """One row of dots per feature (SHAP value across, coloured by the feature's value).

    `sample` has columns feature, value, shap (one row per sampled prediction
    and feature). Dots pile up where values are dense, as in shap's beeswarm;
    a missing or zero value (absent) is grey.
    """
    if sample.empty or not features:
        return "<p>No values to draw yet.</p>"
    left, right, row_h, top = 170, 520, 26, 30
    height = top + row_h * len(features) + 50
    lo, hi = float(sample["shap"].min()), float(sample["shap"].max())
    pad = (hi - lo) * 0.04 or 0.5
    lo, hi = min(lo - pad, 0.0), max(hi + pad, 0.0)

    def at(v):
        return left + (v - lo) / (hi - lo) * (right - left)

    parts = [
        *_svg_start(title, right + 110, height, left),
        f'<line x1="{at(0):.1f}" y1="{top - 6}" x2="{at(0):.1f}" '
        f'y2="{top + row_h * len(features)}" stroke="#999" stroke-dasharray="3,3"/>',
    ]
    groups = dict(tuple(sample.groupby("feature", sort=False)))
    for position, feature in enumerate(features):
        centre = top + row_h * position + row_h / 2
        parts.append(
            f'<text x="{left - 8}" y="{centre + 4:.0f}" text-anchor="end" font-size="12">'
            f"{_esc(feature)}</text>"
        )
        part = groups.get(feature)
        if part is None:
            continue
        shap = part["shap"].to_numpy(dtype=float)
        value = part["value"].to_numpy(dtype=float)
        present = np.isfinite(value) & (value != 0)
        colour = np.full(len(value), -1.0)
        if present.any():
            ranks = pd.Series(value[present]).rank(pct=True).to_numpy()
            colour[present] = ranks
        # Pile dots up in bins of about a dot's width, alternating above and below.
        bins = np.round((shap - lo) / (hi - lo) * (right - left) / 3).astype(int)
        seen: dict[int, int] = {}
        for s, c, b in zip(shap, colour, bins, strict=True):
            k = seen.get(b, 0)
            seen[b] = k + 1
            offset = ((k + 1) // 2) * (1 if k % 2 else -1) * 2.2
            if abs(offset) > row_h / 2 - 2:
                offset = np.sign(offset) * (row_h / 2 - 2)
            fill = ABSENT if c < 0 else _colour(c)
            parts.append(
                f'<circle cx="{at(s):.1f}" cy="{centre + offset:.1f}" r="2" fill="{fill}" '
                'fill-opacity="0.8"/>'
            )
    parts += _axis(left, right, lo, hi, top + row_h * len(features) + 4, f"SHAP value ({unit})")
    legend_x = right + 20
    parts += [
        f'<text x="{legend_x}" y="{top + 8}" font-size="11">feature value</text>',
        f'<rect x="{legend_x}" y="{top + 14}" width="12" height="12" fill="{_colour(1.0)}"/>',
        f'<text x="{legend_x + 16}" y="{top + 24}" font-size="11">high</text>',
        f'<rect x="{legend_x}" y="{top + 30}" width="12" height="12" fill="{_colour(0.0)}"/>',
        f'<text x="{legend_x + 16}" y="{top + 40}" font-size="11">low</text>',
        f'<rect x="{legend_x}" y="{top + 46}" width="12" height="12" fill="{ABSENT}"/>',
        f'<text x="{legend_x + 16}" y="{top + 56}" font-size="11">absent</text>',
        "</svg>",
    ]
    return "".join(parts)


def presence_plot(table: pd.DataFrame, unit: str, title: str, link=None) -> str:
    """Per feature, mean SHAP when present (red) and when absent (grey), joined by a line.

    A feature that matters only when present has its grey dot at zero and its
    red dot away from it. `link(feature)` gives the href of a feature's label.
    """
    rows = table.dropna(subset=["mean_shap_present"]).head(20)
    if rows.empty:
        return "<p>No feature is present in any row.</p>"
    left, right, row_h, top = 170, 460, 22, 30
    height = top + row_h * len(rows) + 50
    values = pd.concat([rows["mean_shap_present"], rows["mean_shap_absent"]]).dropna()
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    pad = (hi - lo) * 0.05 or 0.1
    lo, hi = lo - pad, hi + pad

    def at(v):
        return left + (v - lo) / (hi - lo) * (right - left)

    parts = [
        *_svg_start(title, right + 190, height, left),
        f'<line x1="{at(0):.1f}" y1="{top - 6}" x2="{at(0):.1f}" y2="{top + row_h * len(rows)}" '
        'stroke="#999" stroke-dasharray="3,3"/>',
    ]
    for position, r in enumerate(rows.itertuples()):
        y = top + row_h * position + row_h / 2
        label = _esc(r.feature)
        if link is not None:
            label = f'<a href="{_esc(link(r.feature))}">{label}</a>'
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.0f}" text-anchor="end" font-size="12" '
            f'fill="#1f5a96">{label}</text>'
        )
        present, absent = float(r.mean_shap_present), r.mean_shap_absent
        if absent == absent and absent is not None:
            parts.append(
                f'<line x1="{at(float(absent)):.1f}" y1="{y:.1f}" x2="{at(present):.1f}" '
                f'y2="{y:.1f}" stroke="#ccc" stroke-width="2"/>'
                f'<circle cx="{at(float(absent)):.1f}" cy="{y:.1f}" r="4" fill="{ABSENT}"/>'
            )
        parts.append(
            f'<circle cx="{at(present):.1f}" cy="{y:.1f}" r="4" fill="{_colour(1.0)}"/>'
            f'<text x="{right + 8}" y="{y + 4:.0f}" font-size="11" fill="#555">present in '
            f"{100 * float(r.presence_rate):.0f}%</text>"
        )
    parts += _axis(left, right, lo, hi, top + row_h * len(rows) + 4, f"mean SHAP ({unit})")
    parts += [
        f'<circle cx="{left + 4}" cy="{height - 6}" r="4" fill="{_colour(1.0)}"/>'
        f'<text x="{left + 12}" y="{height - 2}" font-size="11">when present</text>'
        f'<circle cx="{left + 104}" cy="{height - 6}" r="4" fill="{ABSENT}"/>'
        f'<text x="{left + 112}" y="{height - 2}" font-size="11">when absent</text>',
        "</svg>",
    ]
    return "".join(parts)


def dependence(sample: pd.DataFrame, feature: str, unit: str, title: str) -> str:
    """SHAP value against the feature's value for a sample of rows; absent rows in grey."""
    if sample.empty:
        return f"<p>No values of {_esc(feature)} to draw.</p>"
    left, right, top, bottom = 70, 480, 30, 330
    value = sample["value"].to_numpy(dtype=float)
    shap = sample["shap"].to_numpy(dtype=float)
    present = np.isfinite(value) & (value != 0)
    shown = np.where(np.isfinite(value), value, 0.0)
    x_lo, x_hi = float(shown.min()), float(shown.max())
    y_lo, y_hi = min(float(shap.min()), 0.0), max(float(shap.max()), 0.0)
    x_pad, y_pad = (x_hi - x_lo) * 0.04 or 0.5, (y_hi - y_lo) * 0.05 or 0.1
    x_lo, x_hi, y_lo, y_hi = x_lo - x_pad, x_hi + x_pad, y_lo - y_pad, y_hi + y_pad

    def px(v):
        return left + (v - x_lo) / (x_hi - x_lo) * (right - left)

    def py(v):
        return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)

    parts = [
        *_svg_start(title, right + 30, bottom + 50, left),
        f'<line x1="{left}" y1="{py(0):.1f}" x2="{right}" y2="{py(0):.1f}" stroke="#999" '
        'stroke-dasharray="3,3"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#444"/>',
    ]
    for tick in _ticks(y_lo, y_hi):
        parts.append(
            f'<text x="{left - 6}" y="{py(tick) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<text x="16" y="{(top + bottom) / 2:.0f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + bottom) / 2:.0f})">SHAP ({_esc(unit)})</text>'
    )
    for v, s, p in zip(shown, shap, present, strict=True):
        fill = _colour(1.0) if p else ABSENT
        parts.append(
            f'<circle cx="{px(v):.1f}" cy="{py(s):.1f}" r="2.2" fill="{fill}" fill-opacity="0.7"/>'
        )
    parts += _axis(left, right, x_lo, x_hi, bottom, f"{feature} (value; grey: absent)")
    parts.append("</svg>")
    return "".join(parts)
