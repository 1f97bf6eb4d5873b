"""An HTML page of a SHAP job's views that opens in a browser with no server.

The plots are embedded as base64 PNGs, so `index.html` is one self-contained
file; the PNGs are also left beside it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from genejobs import api
from genejobs.cli.shap_plots import global_png, presence_png, waterfall_png

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin-bottom: 1.5em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0 1.5em; }
"""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.5g}", na_rep="", border=0)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def write_report(job_id: str, out: Path, rows: list[str]) -> Path:
    """Write `out/index.html` (and the PNGs) for one SHAP job; return the page's path."""
    views = api.shap_views(job_id, rows)
    summary, overall, presence = views.summary, views.overall, views.presence
    out.mkdir(parents=True, exist_ok=True)
    global_png(overall, views.sample, job_id, str(out / "global.png"))
    presence_png(presence, job_id, str(out / "presence.png"))
    parts = [
        f"<h1>SHAP job {html.escape(job_id)}</h1>",
        f"<p>{html.escape(str(summary['source']))}: {summary['rows_done']} of "
        f"{summary['n_rows']} rows explained, {summary['n_features']} features, "
        f"{len(summary['models'])} models; additivity failures "
        f"{summary['additivity_failures']} (max error {summary['max_additivity_error'] or 0:.2g})."
        "</p>",
        "<h2>Global contribution</h2>",
        _image(out / "global.png"),
        _table(overall),
        "<h2>Global contribution per model</h2>",
        _table(views.by_model),
        "<h2>Presence</h2>",
        "<p>Presence rate against the mean |SHAP| when present; <code>top_share_present</code> "
        "is the share of rows with the feature present in which it is the largest "
        "contributor.</p>",
        _image(out / "presence.png"),
        _table(presence),
        "<h2>Local contributions</h2>",
    ]
    for k, (row, header, contributions) in enumerate(views.local_views):
        first = header.iloc[0].to_dict()
        part = contributions
        if "class" in part.columns:
            part = part[part["class"] == first["class"]]
        png = out / f"local_{k}.png"
        waterfall_png(first, part, str(png))
        parts += [f"<h3>{html.escape(row)}</h3>", _table(header), _image(png), _table(part)]
    page = out / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>SHAP {html.escape(job_id)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>",
        encoding="utf-8",
    )
    return page
