"""The comparison pages: two predictions of one job side by side, and two SHAP jobs over
the same rows (two model releases).

- `/job/<id>/pair?a=<row>&b=<row>`: why prediction A scores above (or below) B, the
  genes of one locus say (a prediction's page links each of its candidates here);
- `/compare?a=<job>&b=<job>`: what changed between two SHAP jobs over the same rows,
  matched by their id columns (a SHAP job's page links the jobs it can be compared with);
- `/compare?a=<job>&b=<job>&row=<row>`: what moved one prediction.

SHAP values add up: an output is its base value plus its features' values, so a
difference of outputs splits exactly into the difference of the base values plus
one difference per feature (storage.shap_compare); each page says so with its
numbers. A row is its key (the id columns joined with '|') or its number in the table.
"""

from __future__ import annotations

from urllib.parse import urlencode

from genejobs.cli.explorer import compare_figures
from genejobs.cli.explorer.params import Page, compare_query, pair_query
from genejobs.cli.explorer.shap_pages import chosen_class, unit_of
from genejobs.cli.explorer.summaries import KEPT
from genejobs.errors import InputError, NotFoundError
from genejobs.storage import shap_compare, shap_queries

FEATURES_LISTED = 60  # rows of a page's per-feature table; the plots sum the rest
COMPARE_WAIT = 0.5  # seconds a comparison page waits for its numbers before it says so
RELOAD_SECONDS = 3  # ... and reloads itself, this often, until they are ready


def _one_class(con, job_id: str, label: str | None) -> int | None:
    """The class asked, checked; a multiclass job without one is refused with the page's words."""
    klass = chosen_class(con, job_id, label)
    if klass is None and shap_queries.job_outputs(con, job_id) > 1:
        raise InputError(
            f"class: SHAP job {job_id} explains several classes; choose one with ?class= "
            "(a class name or number)"
        )
    return klass


def _row_id(con, job_id: str, row: str, name: str) -> int:
    """The row a parameter names; one the job lacks is the parameter's fault (a 400 line)."""
    try:
        return shap_queries.find_row(con, job_id, row)
    except NotFoundError as exc:
        raise InputError(f"{name}: {exc}") from None


def adds_up(output: float, base: float, features: float, count: int, sign: str) -> dict:
    """The line that says a difference of outputs is the base's plus the features'."""
    return {
        "sign": sign,
        "output": output,
        "base": base,
        "features": features,
        "count": count,
        "rest": output - base - features,  # rounding, and each row's additivity error (< 1e-3)
    }


def _listed(features, column: str) -> dict:
    """The features whose SHAP differs, largest difference first, for a page's table."""
    differs = features[features[column] != 0]
    return {
        "features": differs.head(FEATURES_LISTED).to_dict("records"),
        "more": max(len(differs) - FEATURES_LISTED, 0),
        "same": len(features) - len(differs),
    }


def pair_page(con, job_id: str, query: dict[str, str]) -> Page:
    """Two predictions of one job: per feature and per group, SHAP of A minus SHAP of B."""
    args = pair_query(query)
    shap_queries.job_outputs(con, job_id)  # an unknown job: 404
    klass = _one_class(con, job_id, args.class_label)
    rows = [_row_id(con, job_id, args.row_a, "a"), _row_id(con, job_id, args.row_b, "b")]
    found = shap_compare.pair(con, job_id, args.row_a, args.row_b, klass)
    unit = unit_of(con, job_id)
    header = found["header"].to_dict("records")
    features, groups = found["features"], found["groups"]
    keys = [str(h["row_key"]) for h in header]
    only = {} if klass is None or shap_queries.job_outputs(con, job_id) == 1 else {"class": klass}
    title = "Per feature: SHAP of A − SHAP of B"
    values = {
        "job_id": job_id,
        "unit": unit,
        "rows": [
            {**h, "name": name, "row_id": row_id, "model_name": str(h["model"]).rsplit("/", 1)[-1]}
            for name, h, row_id in zip("AB", header, rows, strict=True)
        ],
        "class_title": shap_queries.class_title(con, job_id, klass) if only else "",
        "split": adds_up(
            found["output_difference"],
            found["base_difference"],
            float(features["difference"].sum()),
            len(features),
            "A − B",
        ),
        "features_plot": compare_figures.feature_differences(
            features, "difference", "A − B", unit, title
        ),
        "groups_plot": compare_figures.group_differences(
            groups, "difference", "A − B", unit, "Per feature group: SHAP sums, A − B"
        )
        if len(groups)
        else None,
        **_listed(features, "difference"),
        "swap": f"/job/{job_id}/pair?" + urlencode({"a": keys[1], "b": keys[0], **only}),
    }
    ranks = "above" if found["output_difference"] >= 0 else "below"
    return Page("pair.html", f"Why {keys[0]} ranks {ranks} {keys[1]}", values)


def _jobs(con, args) -> None:
    """Both jobs exist (an unknown one is a 404 page), and name a class when they need one."""
    for job in (args.job_a, args.job_b):
        shap_queries.job_outputs(con, job)
    for job in (args.job_a, args.job_b):
        _one_class(con, job, args.class_label)


def compare_page(con, query: dict[str, str]) -> Page:
    """Two SHAP jobs over the same rows: what moved, per row, per feature and per group."""
    args = compare_query(query)
    _jobs(con, args)
    if args.row is not None:
        return move_page(con, args)
    found = KEPT.compare(con, args.job_a, args.job_b, args.class_label, args.top, COMPARE_WAIT)
    if found is None:  # two large jobs: the page reloads itself until it is ready
        return _computing(con, args)
    unit = unit_of(con, args.job_b)
    only = {"class": args.class_label} if args.class_label else {}
    moves = [
        {
            **row,
            "link": "/compare?"
            + urlencode({"a": args.job_a, "b": args.job_b, "row": row["row_key"], **only}),
        }
        for row in found["moves"].to_dict("records")
    ]
    features, groups = found["features"], found["groups"]
    title = "Global ranking in each job: mean |SHAP| per feature (rank in A → in B)"
    values = {
        "job_a": args.job_a,
        "job_b": args.job_b,
        "unit": unit,
        "summary": found["summary"],
        "top": args.top,
        "moves": moves,
        "rankings": compare_figures.rankings(features, args.job_a, args.job_b, unit, title),
        "feature_moves": compare_figures.mean_moves(
            features, "feature", unit, "Per feature: how far its SHAP moved, B − A, over the rows"
        ),
        "group_moves": compare_figures.mean_moves(
            groups, "group", unit, "Per feature group: how far its SHAP sum moved, B − A"
        )
        if len(groups)
        else None,
        "features": features.head(FEATURES_LISTED).to_dict("records"),
        "more": max(len(features) - FEATURES_LISTED, 0),
        "swap": "/compare?" + urlencode({"a": args.job_b, "b": args.job_a, **only}),
    }
    return Page("compare.html", f"From SHAP job {args.job_a} (A) to {args.job_b} (B)", values)


def _computing(con, args) -> Page:
    """The page that says a comparison is being computed, and reloads itself."""
    values = [  # of one class: a row's value per feature
        int(con.execute(
            "SELECT n_rows * n_features FROM shap_jobs WHERE job_id = ?", [job]
        ).fetchone()[0])
        for job in (args.job_a, args.job_b)
    ]  # fmt: skip
    return Page(
        "computing.html",
        f"From SHAP job {args.job_a} (A) to {args.job_b} (B)",
        {"values": values, "job_a": args.job_a, "job_b": args.job_b, "every": RELOAD_SECONDS},
    )


def move_page(con, args) -> Page:
    """One prediction in two jobs: per feature (and group), its SHAP in B minus in A."""
    row_a = _row_id(con, args.job_a, args.row, "row")
    found = shap_compare.move(con, args.job_a, args.job_b, args.row, args.class_label)
    key = str(found["row_key"])
    unit = unit_of(con, args.job_b)
    features = found["features"]
    groups = (
        features.dropna(subset=["group"])
        .groupby("group", as_index=False)[["shap_a", "shap_b", "move"]]
        .sum()
        .sort_values("move", key=abs, ascending=False, ignore_index=True)
    )
    row_b = shap_queries.find_row(con, args.job_b, key)
    move = found["output_b"] - found["output_a"]
    title = "Per feature: SHAP in B − SHAP in A"
    only = {"class": args.class_label} if args.class_label else {}
    values = {
        "job_a": args.job_a,
        "job_b": args.job_b,
        "unit": unit,
        "row_key": key,
        "ends": [
            ("A", args.job_a, row_a, found["output_a"]),
            ("B", args.job_b, row_b, found["output_b"]),
        ],
        "split": adds_up(
            move, found["base_move"], float(features["move"].sum()), len(features), "B − A"
        ),
        "features_plot": compare_figures.feature_differences(
            features, "move", "B − A", unit, title
        ),
        "groups_plot": compare_figures.group_differences(
            groups, "move", "B − A", unit, "Per feature group: SHAP sums, B − A"
        )
        if len(groups)
        else None,
        **_listed(features, "move"),
        "back": "/compare?" + urlencode({"a": args.job_a, "b": args.job_b, **only}),
    }
    return Page("move.html", f"What moved {key} from {args.job_a} to {args.job_b}", values)
