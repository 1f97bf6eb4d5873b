"""The explorer's web server: Tornado (which Flower runs on) routes each path to a page.

Each request opens a read-only connection of its own to the views (views.py),
so a page never waits for the writer and never makes it wait, and builds its
page on a thread, so that one page waiting for a summary holds up no other;
live progress comes from Redis (worker.inbox). Pages render Jinja2 templates
with autoescaping; a bad query parameter or an unknown job is a page of one
line (400, 404), never a server error. The script, the style sheet and
plotly.js are served from installed files: the pages need no internet.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import tornado.web

from genejobs.cli.explorer import compare_pages, figures, pages, shap_pages
from genejobs.cli.explorer.params import MOVES_SHOWN, JobQuery, Page, shown
from genejobs.cli.explorer.summaries import KEPT, Warmer
from genejobs.cli.explorer.views import views_connection
from genejobs.errors import GenejobsError, InputError, NotFoundError
from genejobs.storage import shap_queries

HERE = Path(__file__).parent
PROGRESS_IDS = 500  # jobs one /api/progress call asks Redis about
WARM_SECONDS = 5.0  # how often the server looks for SHAP jobs that finished


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def templates():
    """The pages' Jinja2 environment: HTML autoescaped, undefined names an error."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = figures.number
    environment.filters["text"] = lambda value: "" if _blank(value) else str(value)
    return environment


def plotly_dir() -> Path:
    """The folder of the plotly.js bundle that the `plotly` package installs."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise GenejobsError("the explorer needs the `plotly` package (pip install plotly)")
    return Path(spec.submodule_search_locations[0]) / "package_data"


class PageHandler(tornado.web.RequestHandler):
    """A page: `build(con, *path_args, query)` gives a pages.Page that a template shows."""

    def initialize(self, build):
        self.build = build

    async def get(self, *path_args):
        from tornado.ioloop import IOLoop

        try:
            query = self.query()
            # On a thread: a page that waits for a summary holds up no other page.
            page = await IOLoop.current().run_in_executor(None, self.page, path_args, query)
        except NotFoundError as exc:
            self.set_status(404)
            page = Page("error.html", "Not found", {"message": str(exc)})
        except GenejobsError as exc:
            self.set_status(400)
            page = Page("error.html", "Cannot show this", {"message": str(exc)})
        template = self.settings["templates"].get_template(page.template)
        self.write(
            template.render(
                title=page.title,
                static_url=self.static_url,
                plotly_url="/vendor/plotly.min.js?v=" + self.settings["plotly_version"],
                **page.values,
            )
        )

    def page(self, path_args: tuple, query: dict[str, str]) -> Page:
        with views_connection() as con:
            return self.build(con, *path_args, query)

    def query(self) -> dict[str, str]:
        """The query parameters (the last of a repeated one), as text."""
        found = {}
        for name in self.request.query_arguments:
            try:
                found[name] = self.get_query_argument(name)
            except tornado.web.HTTPError:  # bytes that are not UTF-8
                raise InputError(f"{shown(name)}: not UTF-8 text") from None
        return found


class ProgressHandler(tornado.web.RequestHandler):
    """Live unit counts from Redis, as JSON by job id: `/api/progress?ids=a,b`."""

    def get(self):
        from genejobs.worker import inbox

        ids = [i for i in self.get_argument("ids", "").split(",") if i][:PROGRESS_IDS]
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({i: inbox.progress(i) for i in ids}))


def make_app() -> tornado.web.Application:
    def page(pattern: str, build):
        return (pattern, PageHandler, {"build": build})

    return tornado.web.Application(
        [
            page(r"/", pages.jobs_page),
            page(r"/job/([A-Za-z0-9_.-]+)", pages.job_page),
            page(r"/job/([A-Za-z0-9_.-]+)/pair", compare_pages.pair_page),
            page(r"/shap/([A-Za-z0-9_.-]+)/row/([^/]+)", shap_pages.row_page),
            page(r"/compare", compare_pages.compare_page),
            page(r"/scope/([^/]+)/([A-Za-z0-9_]+)", pages.scope_page),
            (r"/api/progress", ProgressHandler),
            # `?v=` makes browsers keep it: it changes only with the plotly package.
            (r"/vendor/(plotly\.min\.js)", tornado.web.StaticFileHandler, {"path": plotly_dir()}),
        ],
        static_path=str(HERE / "static"),
        templates=templates(),
        plotly_version=version("plotly"),
    )


def warm_shap_pages(con, job_id: str) -> None:
    """Build a SHAP job's default page and its per-model page: their summaries stay kept."""
    for query in (JobQuery(), JobQuery(by_model=True)):
        shap_pages.shap_values(con, job_id, query)


def warm_comparison(con, job_id: str) -> None:
    """Compare a SHAP job with the SHAP job over the same id columns just before it (its
    previous release): the comparison stays kept."""
    if shap_queries.job_outputs(con, job_id) > 1:
        return  # a comparison of multiclass jobs is of one class, chosen on the page
    older = [o["job_id"] for o in shap_pages.comparable(con, job_id, None) if o["older"]]
    if older:
        KEPT.compare(con, older[-1], job_id, None, MOVES_SHOWN)


def start_warming(every_seconds: float = WARM_SECONDS) -> None:
    """Compute finished SHAP jobs' first pages ahead, now and every few seconds (see summaries)."""
    from tornado.ioloop import IOLoop, PeriodicCallback

    warmer = Warmer(views_connection, warm_shap_pages, warm_comparison)
    IOLoop.current().add_callback(warmer.tick)
    PeriodicCallback(warmer.tick, every_seconds * 1000).start()
