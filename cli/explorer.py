"""`genejobs serve`: a read-only web page over the results, on Tornado (which Flower runs on).

Every page reads the views (`$GENEJOBS_HOME/views/genejobs.duckdb`, see
storage.views) with a connection of its own, so it never waits for the writer
and never makes it wait; live progress comes from Redis. Pages:

- `/`: every job of every kind, with its units, refreshed every 2 s;
- `/job/<id>`: an importance job's gene counts (Wilson intervals) and
  stability; a search's leaderboard and fold scores; a SHAP job's models (linked
  to the jobs that made them), global contribution (overall, per model with its
  partition values, per class by name) as bars beside a beeswarm, feature
  groups, contribution against presence with one feature's dependence
  (`?feature=`), and a search box that finds predictions by any id column;
  importance jobs and searches link to the SHAP jobs that explain their models;
  it takes `?top=` (importance), `?q=`, `?feature=`, `?class=`, `?by=model` (SHAP);
- `/scope/<dataset>/<model>`: every importance job on a dataset and model
  pooled, and the reduced datasets made from them;
- `/shap/<id>/row/<row_id>`: one prediction's contributions (waterfall with
  values) beside the other candidates that share its key but the last part
  (the genes of one study and locus in the L2G layout).

A bad query parameter (unknown, not a number, out of range) is a 400 page of
one line naming the parameter and what it takes, never a server error.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

import click

from genejobs.errors import InputError, NotFoundError

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · genejobs</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #222; }}
h1 {{ font-size: 1.4em; margin: 0 0 .4em; }} h2 {{ font-size: 1.1em; margin: 1.4em 0 .4em; }}
nav a {{ margin-right: 1em; }} table {{ border-collapse: collapse; margin: .3em 0 1em; }}
td, th {{ padding: 2px 8px; border-bottom: 1px solid #e4e4e4; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.bar {{ display: inline-block; height: 11px; background: #3b75af; vertical-align: middle; }}
.neg {{ background: #4393c3; }} .pos {{ background: #d6604d; }}
.ci {{ display: inline-block; height: 3px; background: #222; vertical-align: middle; }}
.track {{ position: relative; display: inline-block; width: 260px; height: 12px; }}
.track span {{ position: absolute; top: 0; }}
.muted {{ color: #777; }} code {{ font-size: 13px; }}
.side {{ display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }}
</style></head><body>
<nav><a href="/">jobs</a>
<span class="muted">genejobs explorer (read-only, from the views)</span></nav>
<h1>{title}</h1>
{body}
</body></html>"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """An HTML table; cells are HTML already (escape what comes from data)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cells) + "</tr>" for rows_cells in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def cell(value, numeric: bool = False) -> str:
    return f'<td class="n">{esc(number(value))}</td>' if numeric else f"<td>{esc(value)}</td>"


def interval_bar(value: float, lo: float, hi: float, width: int = 260) -> str:
    """A bar for a fraction in [0, 1] with its interval drawn over it."""
    return (
        f'<span class="track"><span class="bar" style="width:{value * width:.0f}px"></span>'
        f'<span class="ci" style="left:{lo * width:.0f}px;width:{max(1, (hi - lo) * width):.0f}px;'
        f'top:5px"></span></span>'
    )


def views_connection():
    import duckdb

    from genejobs.config import settings
    from genejobs.errors import GenejobsError
    from genejobs.storage.views import CATALOG

    path = settings().views_dir / CATALOG
    if not path.exists():
        raise GenejobsError(f"no views at {path} yet; start the stack with `genejobs up`")
    return duckdb.connect(str(path), read_only=True)


# query parameters -----------------------------------------------------------------

TOP_MAX = 10_000  # genes in each fit's top K: more than any panel has
TEXT_MAX = 200  # a search or a feature name; a longer one is a mistake
ROW_ID_MAX = 2**31 - 1  # shap_rows.row_id is an INTEGER
SEARCH_ROWS = 50  # predictions listed for a search

# The parameters each kind of job's page takes; any other is refused.
JOB_PARAMETERS = {
    "importance": ("top",),
    "shap": ("q", "feature", "class", "by"),
}


@dataclass(frozen=True)
class JobQuery:
    """A job page's query parameters, checked; `class_label` is resolved against the job later."""

    top: int = 20
    search: str = ""
    feature: str = ""
    class_label: str | None = None
    by_model: bool = False


def _shown(text: str, limit: int = 40) -> str:
    """A parameter's name or value as the 400 line quotes it: short."""
    return text if len(text) <= limit else text[:limit] + "…"


def whole_number(name: str, text: str, low: int, high: int) -> int:
    """`text` as a whole number in [low, high]; an InputError naming the parameter otherwise."""
    text = text.strip()
    # ASCII digits only: int() alone would take other scripts' digits and '1_000' too.
    if re.fullmatch(r"[+-]?[0-9]{1,30}", text) is None or not low <= int(text) <= high:
        raise InputError(f"{name}: a whole number from {low} to {high}, not '{_shown(text)}'")
    return int(text)


def takes_only(query: dict[str, str], allowed: Iterable[str], page: str) -> None:
    """Refuse a parameter the page does not take (a typo would otherwise be ignored silently)."""
    allowed = tuple(allowed)
    for name in query:
        if name not in allowed:
            takes = "takes " + ", ".join(allowed) if allowed else "takes no parameters"
            raise InputError(f"unknown parameter '{_shown(name)}': {page} {takes}")


def _text(query: dict[str, str], name: str) -> str:
    text = query.get(name, "").strip()
    if len(text) > TEXT_MAX:
        raise InputError(f"{name}: at most {TEXT_MAX} characters, not {len(text)}")
    return text


def job_query(kind: str, query: dict[str, str]) -> JobQuery:
    """A job page's parameters for its kind of job, checked."""
    takes_only(query, JOB_PARAMETERS.get(kind, ()), f"the page of this {kind} job")
    top = query.get("top", "").strip()
    by = query.get("by", "").strip()
    if by not in ("", "model"):
        raise InputError(f"by: only 'model' (contribution per model), not '{_shown(by)}'")
    return JobQuery(
        top=whole_number("top", top, 1, TOP_MAX) if top else 20,
        search=_text(query, "q"),
        feature=_text(query, "feature"),
        class_label=query.get("class", "").strip() or None,
        by_model=by == "model",
    )


# pages ----------------------------------------------------------------------------


def progress_text(done, failed, pending, cancelled) -> str:
    """A job's unit counts as the jobs page and a job's page write them (the script too)."""
    return f"{done} done, {failed} failed, {pending} pending, {cancelled} cancelled"


def jobs_page(con, query: dict[str, str]) -> tuple[str, str]:
    from genejobs.storage import queries

    takes_only(query, (), "the jobs page")
    frame = queries.jobs(con)
    rows = [
        [
            f'<td><a href="/job/{esc(r.job_id)}"><code>{esc(r.job_id)}</code></a></td>',
            cell(r.kind),
            f'<td data-status="{esc(r.job_id)}">{esc(r.status)}</td>',
            cell(r.dataset),
            cell(r.model),
            cell(r.units, True),
            f'<td class="n" data-progress="{esc(r.job_id)}">'
            f"{esc(progress_text(r.done, r.failed, r.pending, r.cancelled))}</td>",
            cell(r.created),
        ]
        for r in frame.itertuples()
    ]
    headers = ["job", "kind", "status", "dataset", "model", "units", "progress", "created"]
    body = table(headers, rows)
    # The live counts come from Redis; a spooled SHAP shard is pending until it is ingested.
    # The status follows them as the views' query decides it, except that a cancel is kept
    # until a retry makes units pending again.
    script = """<script>
async function refresh() {
  const cells = document.querySelectorAll('[data-progress]');
  const ids = [...cells].map(c => c.dataset.progress).join(',');
  if (!ids) return;
  const counts = await (await fetch('/api/progress?ids=' + ids)).json();
  for (const c of cells) {
    const n = counts[c.dataset.progress];
    if (!n) continue;
    const pending = (n.pending || 0) + (n.spooled || 0);
    c.textContent = `${n.done || 0} done, ${n.failed || 0} failed, ${pending} pending, ` +
      `${n.cancelled || 0} cancelled`;
    const s = document.querySelector(`[data-status="${c.dataset.progress}"]`);
    const was = s.textContent;
    s.textContent = (was === 'cancelled' && !pending) || n.cancelled ? 'cancelled'
      : pending ? 'running' : n.failed ? 'failed' : 'done';
  }
}
setInterval(refresh, 2000);
</script>"""
    return "Jobs", body + script


def job_page(con, job_id: str, query: dict[str, str]) -> tuple[str, str]:
    from genejobs.storage import queries

    summary = queries.job(con, job_id)
    kind = summary["kind"]
    args = job_query(kind, query)
    counts = progress_text(
        summary["done"], summary["failed"], summary["pending"], summary["cancelled"]
    )
    head = (
        f"<p>{esc(kind)} job on <b>{esc(summary.get('dataset'))}</b>"
        f"{', model ' + esc(summary['model']) if summary.get('model') else ''}, "
        f"{esc(summary['status'])}: {esc(counts)}</p>"
    )
    if kind == "importance":
        scope = (
            f'<p><a href="/scope/{esc(summary["dataset"])}/{esc(summary["model"])}">every '
            f"importance job on {esc(summary['dataset'])} with {esc(summary['model'])}</a></p>"
        )
        explained = _explained_by(con, job_id)
        body = head + scope + explained + importance_body(con, job_id, args)
        return f"Importance job {job_id}", body
    if kind == "search":
        return f"Search {job_id}", head + _explained_by(con, job_id) + search_body(con, job_id)
    if kind == "shap":
        return f"SHAP job {job_id}", head + shap_body(con, job_id, args)
    rows = [[cell(k), cell(v)] for k, v in summary.items() if not isinstance(v, list | dict)]
    return f"Job {job_id}", head + table(["field", "value"], rows)


def importance_body(con, job_id: str, args: JobQuery) -> str:
    from genejobs.storage import queries, selection

    top = args.top
    where = queries.scope(con, job_id, None, None)
    total, counts = queries.gene_counts(con, where, top=top)
    rows = [
        [
            cell(r.gene),
            cell(r.runs, True),
            cell(r.fraction, True),
            f"<td>{interval_bar(r.fraction, r.fraction_lo, r.fraction_hi)}</td>",
            cell(f"{r.fraction_lo:.3f}-{r.fraction_hi:.3f}"),
            cell(r.mean_rank, True),
        ]
        for r in counts.head(40).itertuples()
    ]
    parts = [
        f"<h2>Genes in each fit's top {top} ({total} fits; 95% Wilson intervals)</h2>",
        table(["gene", "fits", "fraction", "", "interval", "mean rank"], rows),
    ]
    if total >= 2:
        stab, _ = selection.stability_table(con, where, top)
        rows = [
            [cell(r.selection), cell(r.fits, True), cell(r.stability, True), cell(r.lo, True),
             cell(r.hi, True)]
            for r in stab.itertuples()
        ]  # fmt: skip
        parts += [
            "<h2>Stability (Nogueira et al. 2018, 95% interval)</h2>",
            table(["selection", "fits", "stability", "low", "high"], rows),
        ]
    return "".join(parts)


def search_body(con, job_id: str) -> str:
    from genejobs.storage import model_queries

    board = model_queries.leaderboard(con, job_id)
    columns = ["rank", "model_id", "name", "accuracy", "auc", "recall", "precision", "f1",
               "kappa", "mcc", "fit_seconds", "status"]  # fmt: skip
    rows = [
        [cell(getattr(r, c), isinstance(getattr(r, c), float)) for c in columns]
        for r in board.itertuples()
    ]
    folds = con.execute(
        """SELECT model, fold, status, accuracy, auc, f1, fit_seconds, error
           FROM search_folds WHERE job_id = ? ORDER BY model, fold""",
        [job_id],
    ).fetchall()
    fold_rows = [
        [cell(m), cell(f, True), cell(s), cell(a, True), cell(u, True), cell(f1, True),
         cell(t, True), cell(e)]
        for m, f, s, a, u, f1, t, e in folds
    ]  # fmt: skip
    return (
        "<h2>Leaderboard</h2>"
        + table(columns, rows)
        + "<h2>Fold scores</h2>"
        + table(["model", "fold", "status", "accuracy", "AUC", "F1", "fit s", "error"], fold_rows)
    )


def scope_page(con, dataset: str, model: str, query: dict[str, str]) -> tuple[str, str]:
    """Every job on a dataset and model: pooled gene counts, and the datasets reduced from them."""
    from genejobs.storage import queries

    takes_only(query, (), "a scope page")
    where = queries.scope(con, None, dataset, model)
    total, counts = queries.gene_counts(con, where)
    rows = [
        [cell(r.gene), cell(r.runs, True), cell(r.fraction, True),
         f"<td>{interval_bar(r.fraction, r.fraction_lo, r.fraction_hi)}</td>",
         cell(r.mean_rank, True)]
        for r in counts.head(40).itertuples()
    ]  # fmt: skip
    reduced = con.execute(
        """SELECT d.name, d.n_genes, d.n_samples, d.source, d.created_at
           FROM datasets d JOIN datasets p ON d.parent_id = p.dataset_id
           WHERE p.name = ? ORDER BY d.created_at""",
        [dataset],
    ).fetchall()
    reduced_rows = [[cell(n), cell(g, True), cell(s, True), cell(src), cell(c)]
                    for n, g, s, src, c in reduced]  # fmt: skip
    body = (
        f"<h2>Genes selected (non-zero importance) in {total} fits of {esc(model)} on "
        f"{esc(dataset)}, every job</h2>"
        + table(["gene", "fits", "fraction", "95% Wilson interval", "mean rank"], rows)
        + "<h2>Reduced datasets made from these counts</h2>"
        + (
            table(["dataset", "genes", "samples", "made from", "created"], reduced_rows)
            if reduced_rows
            else "<p>None yet (`genejobs genes filter`).</p>"
        )
    )
    return f"{dataset}, {model}: every importance job", body


def shap_body(con, job_id: str, args: JobQuery) -> str:
    from genejobs.cli.explorer_plots import beeswarm, presence_plot
    from genejobs.cli.explorer_plots import dependence as dependence_plot
    from genejobs.cli.shap_plots import pooled
    from genejobs.storage import shap_queries

    outputs = shap_queries.job_outputs(con, job_id)
    names = shap_queries.class_names(con, job_id)
    try:
        klass = shap_queries.resolve_class(con, job_id, args.class_label)
    except ValueError:  # it reads '--1' and '²' as numbers, then int() refuses them
        raise InputError(
            f"class: a class name or number, not '{_shown(args.class_label or '')}'"
        ) from None
    feature = args.feature
    if feature:  # checked before the page's other queries: a bad one is refused at once
        try:
            dependence = shap_queries.dependence_sample(con, job_id, feature, 2000, klass)
        except NotFoundError as exc:  # a parameter's value, not a missing page
            raise InputError(f"feature: {exc}; the presence plot links each one") from None
    by_model = args.by_model
    unit = _unit(con, job_id)
    glob = shap_queries.global_importance(con, job_id, by_model, klass)
    parts = [_shap_models(con, job_id), _shap_search_form(job_id, args.search)]
    if args.search:
        parts.append(_shap_matches(con, job_id, args.search))
    links = [f'<a href="/job/{esc(job_id)}">overall</a>',
             f'<a href="/job/{esc(job_id)}?by=model">per model</a>']  # fmt: skip
    if outputs > 1:
        links += [
            f'<a href="/job/{esc(job_id)}?class={k}">'
            f"{esc(shap_queries.class_title(con, job_id, k))}</a>"
            for k in range(outputs)
        ]
    elif names:
        links.append(f'<span class="muted">values are for class 1 ({esc(names[1])})</span>')
    chosen = "" if klass is None else shap_queries.class_title(con, job_id, klass)
    scope = ("per model" if by_model else "overall") + (f", {chosen}" if chosen else "")
    if _has_groups(con, job_id):
        groups = shap_queries.group_importance(con, job_id, False, klass)
        series = groups.groupby("group")["mean_abs_shap"].mean().sort_values(ascending=False)
        parts.append(
            "<h2>Feature groups: mean |SHAP| of each prediction's group sum</h2>"
            + _bars(series).replace("<th>feature</th>", "<th>group</th>")
        )
    parts.append(f"<h2>Global contribution ({esc(scope)}): mean |SHAP|</h2>")
    parts.append("<p>" + " · ".join(links) + "</p>")
    if by_model:
        serves = {
            source: partitions
            for source, partitions in con.execute(
                "SELECT source, partitions FROM shap_models WHERE job_id = ?", [job_id]
            ).fetchall()
        }
        column = shap_queries.job(con, job_id).get("partition_col") or "partition"
        blocks = []
        for model, part in glob.groupby("model", sort=False):
            values = serves.get(model)
            where = f" ({esc(column)} {esc(', '.join(values))})" if values else ""
            bars = pooled(part)
            blocks.append(
                f"<div><h2>model {esc(model.rsplit('/', 1)[-1])}{where}</h2>"
                f'<p class="muted">{esc(model)}</p>{_bars(bars[bars > 0].head(12), 160)}</div>'
            )
        parts.append('<div class="side">' + "".join(blocks) + "</div>")
    else:
        top = pooled(glob).head(20)
        if outputs > 1 and klass is None:
            swarm = '<p class="muted">The beeswarm is drawn for one class: choose one above.</p>'
        else:
            features = list(top[top > 0].index[:15])
            sample = shap_queries.beeswarm_sample(con, job_id, features, 1000, klass)
            title = f"SHAP values of 1,000 sampled predictions ({scope})"
            swarm = beeswarm(sample, features, unit, title)
        parts.append(f'<div class="side"><div>{_bars(top, 160)}</div><div>{swarm}</div></div>')
    presence = shap_queries.presence(con, job_id, klass)
    every = "all models" + (f", {chosen}" if chosen else "")
    plots = [
        presence_plot(
            presence,
            unit,
            f"mean SHAP when the feature is present and when absent ({every})",
            lambda f: (
                f"/job/{job_id}?feature={quote(f)}"
                + ("" if klass is None else f"&class={klass}")
                + "#dependence"
            ),
        )
        if outputs == 1 or klass is not None
        # A multiclass model's signed values of one row cancel out over its classes.
        else '<p class="muted">Signed SHAP is drawn for one class: choose one above.</p>'
    ]
    if feature:
        title = f"{feature}: SHAP against its value, 2,000 sampled predictions ({every})"
        plots.append(
            f'<span id="dependence"></span>{dependence_plot(dependence, feature, unit, title)}'
        )
    else:
        plots.append('<p class="muted">Click a feature for its SHAP against its value.</p>')
    parts += [
        "<h2>Contribution against presence</h2>",
        '<div class="side">' + "".join(f"<div>{p}</div>" for p in plots) + "</div>",
    ]
    rows = [
        [f'<td><a href="/job/{esc(job_id)}?feature={esc(quote(r.feature))}#dependence">'
         f"{esc(r.feature)}</a></td>", cell(r.presence_rate, True),
         cell(r.mean_shap_present, True), cell(r.mean_shap_absent, True),
         cell(r.top_share_present, True)]
        for r in presence.head(25).itertuples()
    ]  # fmt: skip
    headers = ["feature", "present in", "mean SHAP present", "mean SHAP absent",
               "top feature when present"]  # fmt: skip
    parts.append(table(headers, rows))
    return "".join(parts)


def _explained_by(con, job_id: str) -> str:
    """Links to the SHAP jobs that explain a model of this search, or a run of this job."""
    found = con.execute(
        """SELECT DISTINCT s.job_id, s.source FROM shap_models s
           WHERE starts_with(s.source, 'genejobs:' || ? || ':')
              OR s.source IN (SELECT 'genejobs:' || model_id FROM model_runs WHERE job_id = ?)
           ORDER BY s.job_id, s.source""",
        [job_id, job_id],
    ).fetchall()
    if not found:
        return ""
    links = [
        f'<a href="/job/{esc(shap_job)}">{esc(shap_job)}</a> ({esc(source)})'
        for shap_job, source in found
    ]
    return "<p>Explained by SHAP jobs: " + ", ".join(links) + "</p>"


def _unit(con, job_id: str) -> str:
    """The unit of a job's SHAP values, when its models share one."""
    from genejobs.cli.shap_plots import OUTPUT_UNITS

    families = {
        f for (f,) in con.execute(
            "SELECT DISTINCT family FROM shap_models WHERE job_id = ?", [job_id]
        ).fetchall()
    }  # fmt: skip
    units = {OUTPUT_UNITS.get(str(f), "raw output") for f in families}
    return units.pop() if len(units) == 1 else "model output"


def _shap_models(con, job_id: str) -> str:
    """The job's models; a model genejobs made links to the job that made it."""
    models = con.execute(
        "SELECT model_id, source, family FROM shap_models WHERE job_id = ? ORDER BY model_id",
        [job_id],
    ).fetchall()
    rows = []
    for model_id, source, family in models:
        origin = _origin(con, str(source))
        rows.append([cell(model_id, True), cell(source), cell(family), f"<td>{origin}</td>"])
    return "<h2>Models</h2>" + table(["model", "source", "family", "made by"], rows)


def _origin(con, source: str) -> str:
    """A link to the job behind `genejobs:<model id>` or `genejobs:<job id>:<seed>`."""
    if not source.startswith("genejobs:"):
        return ""
    name = source[len("genejobs:") :]
    if ":" in name:
        job_id, _, seed = name.rpartition(":")
        return f'<a href="/job/{esc(job_id)}">importance job {esc(job_id)}</a>, seed {esc(seed)}'
    found = con.execute("SELECT job_id FROM model_runs WHERE model_id = ?", [name]).fetchone()
    if found is None:
        return ""
    return f'<a href="/job/{esc(found[0])}">search {esc(found[0])}</a>'


def _has_groups(con, job_id: str) -> bool:
    found = con.execute(
        "SELECT count(feature_group) FROM shap_features WHERE job_id = ?", [job_id]
    ).fetchone()
    return bool(found[0])


def _bars(series, width: int = 300) -> str:
    top = float(series.max()) if len(series) else 1.0
    rows = [
        [cell(name), cell(value, True),
         f'<td><span class="bar" style="width:{width * value / (top or 1):.0f}px"></span></td>']
        for name, value in series.items()
    ]  # fmt: skip
    return table(["feature", "mean |SHAP|", ""], rows)


def _shap_search_form(job_id: str, query: str) -> str:
    return (
        f'<form method="get" action="/job/{esc(job_id)}"><label>Find a prediction by any id '
        f'(study, locus, gene): <input name="q" value="{esc(query)}" size="40"></label> '
        '<button type="submit">search</button></form>'
    )


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') that matches `text` anywhere, its % and _ literally."""
    for special in ("\\", "%", "_"):
        text = text.replace(special, "\\" + special)
    return f"%{text}%"


def _shap_matches(con, job_id: str, query: str) -> str:
    from genejobs.storage import shap_queries

    # One more than shown says whether there are more, without counting every match.
    found = con.execute(
        """SELECT r.row_id, r.row_key, r.class, r.output, r.probability, m.source
           FROM shap_rows r JOIN shap_models m USING (job_id, model_id)
           WHERE r.job_id = ? AND r.row_key ILIKE ? ESCAPE '\\'
           ORDER BY r.output DESC LIMIT ?""",
        [job_id, like_pattern(query), SEARCH_ROWS + 1],
    ).fetchall()
    if not found:
        return f"<p>No prediction's id contains <b>{esc(query)}</b>.</p>"
    more = len(found) > SEARCH_ROWS
    found = found[:SEARCH_ROWS]
    names = shap_queries.class_names(con, job_id)
    rows = [
        [f'<td><a href="/shap/{esc(job_id)}/row/{row_id}">{esc(key)}</a></td>',
         cell(f"{klass} {names[klass]}" if klass in names else klass),
         cell(output, True), cell(probability, True), cell(model)]
        for row_id, key, klass, output, probability, model in found
    ]  # fmt: skip
    note = (
        f'<p class="muted">Showing the first {SEARCH_ROWS} (highest output) of more than '
        f"{SEARCH_ROWS} matches; refine the search.</p>"
        if more
        else ""
    )
    return (
        f"<h2>Predictions matching {esc(query)}</h2>"
        + note
        + table(["id", "class", "output", "probability", "model"], rows)
    )


def row_page(con, job_id: str, row: str, query: dict[str, str]) -> tuple[str, str]:
    from genejobs.cli.shap_plots import OUTPUT_UNITS
    from genejobs.storage import shap_queries
    from genejobs.storage.db import first

    takes_only(query, (), "a prediction's page")
    row_id = whole_number("row id", row, 0, ROW_ID_MAX)
    found = first(
        con.execute(
            "SELECT row_key FROM shap_rows WHERE job_id = ? AND row_id = ? LIMIT 1",
            [job_id, row_id],
        ).fetchall()
    )
    if found is None:
        raise NotFoundError(f"no prediction {row_id} in SHAP job {job_id}")
    header, contributions = shap_queries.local(con, job_id, str(found[0]))
    first = header.iloc[0].to_dict()
    klass = shap_queries.class_title(con, job_id, int(first["class"]))
    key = first["row_key"]
    if "class" in contributions.columns:
        contributions = contributions[contributions["class"] == first["class"]]
    span = float(contributions["shap"].abs().max() or 1.0)
    rows = [
        [cell(r.feature), cell(r.value, True), cell(f"{r.shap:+.4g}"),
         f'<td><span class="bar {"pos" if r.shap > 0 else "neg"}" '
         f'style="width:{200 * abs(r.shap) / span:.0f}px"></span></td>']
        for r in contributions.head(30).itertuples()
    ]  # fmt: skip
    unit = OUTPUT_UNITS.get(str(first.get("family")), "raw output")
    grouped = ""
    if _has_groups(con, job_id):
        sums = con.execute(
            """SELECT f.feature_group, sum(v.shap) AS shap
               FROM shap_values v JOIN shap_features f USING (job_id, feature_id)
               WHERE v.job_id = ? AND v.row_id = ? AND v.class = ?
                 AND f.feature_group IS NOT NULL
               GROUP BY 1 ORDER BY abs(sum(v.shap)) DESC""",
            [job_id, row_id, int(first["class"])],
        ).fetchall()
        grouped = "<h2>By feature group (sums of the group's contributions)</h2>" + table(
            ["group", "SHAP"], [[cell(g), cell(f"{s:+.4g}")] for g, s in sums]
        )
    parts = [
        f"<p>model <b>{esc(first['model'])}</b>, {esc(klass)}: base value "
        f"{number(first['base_value'])} + contributions = output {number(first['output'])} "
        f"({esc(unit)})"
        + (
            f", probability {number(first['probability'])}"
            if first["probability"] == first["probability"]
            else ""
        )
        + "</p>",
        grouped,
        "<h2>Contributions (red raises the output, blue lowers it)</h2>",
        table(["feature", "value", "SHAP", ""], rows),
    ]
    if "|" in str(key):
        prefix = str(key).rsplit("|", 1)[0] + "|"
        others = con.execute(
            """SELECT row_id, row_key, output, probability FROM shap_rows
               WHERE job_id = ? AND starts_with(row_key, ?) AND class = ?
               ORDER BY output DESC LIMIT 50""",
            [job_id, prefix, int(first["class"])],
        ).fetchall()
        rows = [
            [f'<td><a href="/shap/{esc(job_id)}/row/{rid}">{esc(k)}</a>'
             + (" ◀" if k == key else "") + "</td>", cell(o, True), cell(p, True)]
            for rid, k, o, p in others
        ]  # fmt: skip
        parts += [
            f"<h2>Candidates of {esc(prefix[:-1])}, ranked by output</h2>",
            table(["id", "output", "probability"], rows),
        ]
    return f"Prediction {key}", "".join(parts)


# the server -----------------------------------------------------------------------


def make_app():
    import tornado.web

    from genejobs.errors import GenejobsError

    class Page(tornado.web.RequestHandler):
        def render_page(self, build, *args) -> None:
            """`build(con, *args, query)`; a GenejobsError is a page of one line, not a 500."""
            try:
                query = self.query()
                with views_connection() as con:
                    title, body = build(con, *args, query)
            except NotFoundError as exc:
                self.set_status(404)
                title, body = "Not found", f"<p>{esc(exc)}</p>"
            except GenejobsError as exc:
                self.set_status(400)
                title, body = "Cannot show this", f"<p>{esc(exc)}</p>"
            self.write(PAGE.format(title=esc(title), body=body))

        def query(self) -> dict[str, str]:
            """The query parameters (the last of a repeated one), as text."""
            found = {}
            for name in self.request.query_arguments:
                try:
                    found[name] = self.get_query_argument(name)
                except tornado.web.HTTPError:  # bytes that are not UTF-8
                    raise InputError(f"{_shown(name)}: not UTF-8 text") from None
            return found

    class Jobs(Page):
        def get(self):
            self.render_page(jobs_page)

    class Job(Page):
        def get(self, job_id):
            self.render_page(job_page, job_id)

    class Row(Page):
        def get(self, job_id, row_id):
            self.render_page(row_page, job_id, row_id)

    class Scope(Page):
        def get(self, dataset, model):
            self.render_page(scope_page, dataset, model)

    class Progress(tornado.web.RequestHandler):
        def get(self):
            from genejobs.worker import inbox

            ids = [i for i in self.get_argument("ids", "").split(",") if i][:500]
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps({i: inbox.progress(i) for i in ids}))

    return tornado.web.Application(
        [
            (r"/", Jobs),
            (r"/job/([A-Za-z0-9_.-]+)", Job),
            (r"/shap/([A-Za-z0-9_.-]+)/row/([^/]+)", Row),
            (r"/scope/([^/]+)/([A-Za-z0-9_]+)", Scope),
            (r"/api/progress", Progress),
        ]
    )


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=5556, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def serve(port, address):
    """Serve the explorer: jobs with live progress, gene counts, searches, SHAP views."""
    import asyncio

    app = make_app()
    app.listen(port, address=address)
    click.echo(f"explorer at http://{address}:{port}/", err=True)
    asyncio.get_event_loop().run_forever()


COMMANDS = [serve]
