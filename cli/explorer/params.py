"""A page's query parameters, checked: a bad one is an InputError naming it (a 400 page).

Every page takes a fixed set of parameters; one it does not take is refused
rather than ignored, so that a typo never shows a page other than the one asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from genejobs.errors import InputError

TOP_MAX = 10_000  # genes in each fit's top K: more than any panel has
TEXT_MAX = 200  # a search or a feature name; a longer one is a mistake
ROW_ID_MAX = 2**31 - 1  # shap_rows.row_id is an INTEGER
MOVES_MAX = 1000  # rows of a comparison's "moved most" table
MOVES_SHOWN = 20  # ... unless `?top=` asks for more or fewer
JOB_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # the characters of a job id (the routes' too)

# The parameters each kind of job's page takes; any other is refused.
JOB_PARAMETERS = {
    "importance": ("top",),
    "shap": ("q", "feature", "class", "by"),
}
PAIR_PARAMETERS = ("a", "b", "class")
COMPARE_PARAMETERS = ("a", "b", "row", "class", "top")


@dataclass(frozen=True)
class JobQuery:
    """A job page's query parameters, checked; `class_label` is resolved against the job later."""

    top: int = 20
    search: str = ""
    feature: str = ""
    class_label: str | None = None
    by_model: bool = False


def shown(text: str, limit: int = 40) -> str:
    """A parameter's name or value as the 400 line quotes it: short."""
    return text if len(text) <= limit else text[:limit] + "…"


def whole_number(name: str, text: str, low: int, high: int) -> int:
    """`text` as a whole number in [low, high]; an InputError naming the parameter otherwise."""
    text = text.strip()
    # ASCII digits only: int() alone would take other scripts' digits and '1_000' too.
    if re.fullmatch(r"[+-]?[0-9]{1,30}", text) is None or not low <= int(text) <= high:
        raise InputError(f"{name}: a whole number from {low} to {high}, not '{shown(text)}'")
    return int(text)


def takes_only(query: dict[str, str], allowed: Iterable[str], page: str) -> None:
    """Refuse a parameter the page does not take (a typo would otherwise be ignored silently)."""
    allowed = tuple(allowed)
    for name in query:
        if name not in allowed:
            takes = "takes " + ", ".join(allowed) if allowed else "takes no parameters"
            raise InputError(f"unknown parameter '{shown(name)}': {page} {takes}")


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
        raise InputError(f"by: only 'model' (contribution per model), not '{shown(by)}'")
    return JobQuery(
        top=whole_number("top", top, 1, TOP_MAX) if top else 20,
        search=_text(query, "q"),
        feature=_text(query, "feature"),
        class_label=query.get("class", "").strip() or None,
        by_model=by == "model",
    )


@dataclass(frozen=True)
class PairQuery:
    """A pair view's parameters: two predictions of one job (key or row number) and a class."""

    row_a: str
    row_b: str
    class_label: str | None = None


@dataclass(frozen=True)
class CompareQuery:
    """A comparison's parameters: two SHAP jobs, one row (its move view) or none, a class."""

    job_a: str
    job_b: str
    row: str | None = None
    class_label: str | None = None
    top: int = MOVES_SHOWN


def _required(query: dict[str, str], name: str, what: str) -> str:
    text = _text(query, name)
    if not text:
        raise InputError(f"{name}: required, {what}")
    return text


def pair_query(query: dict[str, str]) -> PairQuery:
    """A pair view's parameters, checked: `a` and `b` name two predictions."""
    takes_only(query, PAIR_PARAMETERS, "a pair view")
    what = "a prediction's key (its id columns joined with '|') or row number"
    return PairQuery(
        row_a=_required(query, "a", what),
        row_b=_required(query, "b", what),
        class_label=query.get("class", "").strip() or None,
    )


def compare_query(query: dict[str, str]) -> CompareQuery:
    """A comparison's parameters, checked: `a` and `b` are SHAP job ids."""
    takes_only(query, COMPARE_PARAMETERS, "a comparison")
    jobs = []
    for name in ("a", "b"):
        job = _required(query, name, "a SHAP job's id")
        if JOB_ID.fullmatch(job) is None:
            raise InputError(f"{name}: a SHAP job's id, not '{shown(job)}'")
        jobs.append(job)
    top = query.get("top", "").strip()
    return CompareQuery(
        job_a=jobs[0],
        job_b=jobs[1],
        row=_text(query, "row") or None,
        class_label=query.get("class", "").strip() or None,
        top=whole_number("top", top, 1, MOVES_MAX) if top else MOVES_SHOWN,
    )


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') that matches `text` anywhere, its % and _ literally."""
    for special in ("\\", "%", "_"):
        text = text.replace(special, "\\" + special)
    return f"%{text}%"


@dataclass(frozen=True)
class Page:
    """What a handler renders: a template of templates/, the page's title, and its values."""

    template: str
    title: str
    values: dict = field(default_factory=dict)
