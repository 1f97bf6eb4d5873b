"""The explorer's pages: each reads the views and returns the template and values that show it.

A page function takes a read-only connection to the views, its path's parts and
the query parameters, and returns a `Page`; it raises NotFoundError (a 404 page)
or InputError (a 400 page) with the one line the page shows. The SHAP pages
are in shap_pages.
"""

from __future__ import annotations

from genejobs.cli.explorer import figures, shap_pages
from genejobs.cli.explorer.params import Page, job_query, takes_only
from genejobs.storage import model_queries, queries, selection

GENES_SHOWN = 40  # genes of a count plot and table: the head of a ranking is what is read


def progress_text(done, failed, pending, cancelled) -> str:
    """A job's unit counts as the jobs page and a job's page write them (the script too)."""
    return f"{done} done, {failed} failed, {pending} pending, {cancelled} cancelled"


def jobs_page(con, query: dict[str, str]) -> Page:
    """Every job of every kind with its units; static/explorer.js keeps the counts live."""
    takes_only(query, (), "the jobs page")
    frame = queries.jobs(con)
    jobs = [
        {
            **row,
            "progress": progress_text(row["done"], row["failed"], row["pending"], row["cancelled"]),
        }
        for row in frame.to_dict("records")
    ]
    return Page("jobs.html", "Jobs", {"jobs": jobs})


def job_page(con, job_id: str, query: dict[str, str]) -> Page:
    """A job's page, by its kind: importance, search, SHAP, or its fields for the others."""
    summary = queries.job(con, job_id)
    kind = summary["kind"]
    args = job_query(kind, query)
    head = {
        "kind": kind,
        "summary": summary,
        "counts": progress_text(
            summary["done"], summary["failed"], summary["pending"], summary["cancelled"]
        ),
    }
    if kind == "importance":
        values = {
            **importance_values(con, job_id, args.top),
            "explained": explained_by(con, job_id),
        }
        return Page("importance.html", f"Importance job {job_id}", {**head, **values})
    if kind == "search":
        values = {**search_values(con, job_id), "explained": explained_by(con, job_id)}
        return Page("search.html", f"Search {job_id}", {**head, **values})
    if kind == "shap":
        values = shap_pages.shap_values(con, job_id, args)
        return Page("shap.html", f"SHAP job {job_id}", {**head, **values})
    fields = [(k, v) for k, v in summary.items() if not isinstance(v, list | dict)]
    return Page("job.html", f"Job {job_id}", {**head, "fields": fields})


def importance_values(con, job_id: str, top: int) -> dict:
    """An importance job's genes in each fit's top K, with their intervals, and its stability."""
    where = queries.scope(con, job_id, None, None)
    total, counts = queries.gene_counts(con, where, top=top)
    shown = counts.head(GENES_SHOWN)
    title = f"Fraction of the {total} fits with the gene in their top {top}"
    stability = None
    if total >= 2:
        stability = selection.stability_table(con, where, top)[0].to_dict("records")
    return {
        "top": top,
        "total": total,
        "genes": shown.to_dict("records"),
        "counts_plot": figures.gene_counts(shown, total, title) if len(shown) else None,
        "stability": stability,
    }


def search_values(con, job_id: str) -> dict:
    """A search's leaderboard and every fold's scores."""
    board = model_queries.leaderboard(con, job_id)
    folds = con.execute(
        """SELECT model, fold, status, accuracy, auc, f1, fit_seconds, error
           FROM search_folds WHERE job_id = ? ORDER BY model, fold""",
        [job_id],
    ).df()
    return {"board": board.to_dict("records"), "folds": folds.to_dict("records")}


def scope_page(con, dataset: str, model: str, query: dict[str, str]) -> Page:
    """Every job on a dataset and model: pooled gene counts, and the datasets reduced from them."""
    takes_only(query, (), "a scope page")
    where = queries.scope(con, None, dataset, model)
    total, counts = queries.gene_counts(con, where)
    shown = counts.head(GENES_SHOWN)
    reduced = con.execute(
        """SELECT d.name, d.n_genes, d.n_samples, d.source, d.created_at
           FROM datasets d JOIN datasets p ON d.parent_id = p.dataset_id
           WHERE p.name = ? ORDER BY d.created_at""",
        [dataset],
    ).df()
    title = f"Fraction of the {total} fits that selected the gene (non-zero importance)"
    values = {
        "dataset": dataset,
        "model": model,
        "total": total,
        "genes": shown.to_dict("records"),
        "counts_plot": figures.gene_counts(shown, total, title) if len(shown) else None,
        "reduced": reduced.to_dict("records"),
    }
    return Page("scope.html", f"{dataset}, {model}: every importance job", values)


def explained_by(con, job_id: str) -> list[tuple[str, str]]:
    """The SHAP jobs that explain a model of this search, or a run of this job: (job, source)."""
    return con.execute(
        """SELECT DISTINCT s.job_id, s.source FROM shap_models s
           WHERE starts_with(s.source, 'genejobs:' || ? || ':')
              OR s.source IN (SELECT 'genejobs:' || model_id FROM model_runs WHERE job_id = ?)
           ORDER BY s.job_id, s.source""",
        [job_id, job_id],
    ).fetchall()
