"""The explorer in a real headless browser (Debian's chromium): pages load, a search finds a
prediction, plots are drawn, hovering a plot's bar shows its gene's or feature's value, and what
a person reads is on the page. Screenshots land in the test's folder (and in
$GENEJOBS_SCREENSHOTS when set)."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from genejobs.tasks import synth_l2g
from tests.conftest import GENEJOBS, free_port, run, sql, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def explorer(tissue, tmp_path_factory):
    """An importance job, two SHAP jobs over one table (two model releases), a search, a
    multiclass SHAP job, and `genejobs serve` on a free port."""
    if CHROMIUM is None:
        pytest.fail("the explorer tests need Debian's chromium (`apt-get install chromium`)")
    folder = tmp_path_factory.mktemp("explorer")
    importance = run("importance", tissue, "--model", "lr", "--runs", "8", "--wait").output
    frame = synth_l2g.table(300, seed=4)
    frame.to_csv(folder / "table.csv", index=False)
    synth_l2g.train_models(frame, folder / "models", trees=3, depth=2)
    synth_l2g.train_models(frame, folder / "models-b", trees=6, depth=3, seed=8)  # the next one
    synth_l2g.write_groups(folder / "groups.tsv")
    shap, shap_b = [
        run(
            "shap", "run", str(folder / "table.csv"), "--partition-col", "chrom",
            "--manifest", str(folder / models / "models.tsv"),
            "--id-cols", "study_id,locus_id,gene_id", "--groups", str(folder / "groups.tsv"),
            "--wait",
        ).output
        for models in ("models", "models-b")
    ]  # fmt: skip
    search = run(
        "search", tissue, "--models", "lr,dt", "--folds", "2", "--wait", "--format", "json"
    ).stdout
    job_of = __import__("json").loads(search)[0]["model_id"].rsplit("-", 1)[0]
    # A multiclass SHAP job of a seeded run's tree: its classes are the tissues.
    tree = run("importance", tissue, "--model", "dt", "--seeds", "90210", "--wait").output
    tree_job = tree.split("job ")[1].split(":")[0]
    multi = run("shap", "run", tissue, "--model", f"genejobs:{tree_job}:90210", "--wait").output
    run("genes", "filter", "--dataset", tissue, "--model", "lr", "--min-count", "4", "--top", "20",
        "--name", "tissue-explored")  # fmt: skip
    jobs = {
        "importance": importance.split()[1].rstrip(":"),
        "shap": shap.split("job ")[1].split(":")[0],
        "shap_b": shap_b.split("job ")[1].split(":")[0],
        "search": job_of,
        "tree": tree_job,
        "multiclass": multi.split("job ")[1].split(":")[0],
    }
    # The views are published every few seconds: wait until they hold both jobs.
    wait_until(
        lambda: _views_have([*jobs.values(), "tissue-explored"]), timeout=60, what="the views"
    )
    port = free_port()
    log = folder / "serve.log"  # what the server logs: a test reads it for tracebacks
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [GENEJOBS, "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=dict(os.environ),
        )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(base), timeout=30, what="the explorer")
    try:
        yield {"base": base, "folder": folder, "log": log, **jobs}
    finally:
        server.terminate()
        server.wait(timeout=10)


def _views_have(job_ids) -> bool:
    import duckdb

    from genejobs.config import settings

    try:
        with duckdb.connect(str(settings().views_dir / "genejobs.duckdb"), read_only=True) as con:
            found = {j for (j,) in con.execute("SELECT job_id FROM jobs").fetchall()}
            found |= {j for (j,) in con.execute("SELECT job_id FROM shap_values").fetchall()}
            found |= {n for (n,) in con.execute("SELECT name FROM datasets").fetchall()}
    except duckdb.Error:
        return False
    return set(job_ids) <= found


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def browse(url: str, shot: Path) -> str:
    """Load `url` in headless chromium; save a screenshot; return the DOM after scripts ran."""
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--virtual-time-budget=3000"]  # fmt: skip
    subprocess.run(
        [*common, "--window-size=1280,2400", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    if os.environ.get("GENEJOBS_SCREENSHOTS"):
        target = Path(os.environ["GENEJOBS_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)
    assert shot.stat().st_size > 5_000
    return dom


def hover(url: str, plot: str, shot: Path, mark: int = 0) -> str:
    """Load `url` in headless chromium, move the mouse onto the `mark`-th bar or dot of the plot
    whose aria-label starts with `plot`, and return the text of the label plotly.js shows; save
    a screenshot with the label. Driven by the DevTools protocol (a real mouse event)."""
    with subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--remote-debugging-port=0", "--remote-allow-origins=*", "--window-size=1280,2400",
         f"--user-data-dir={shot.parent / 'chromium-profile'}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) as browser:  # fmt: skip
        try:
            for line in browser.stderr:
                if line.startswith("DevTools listening on "):
                    port = int(line.split(":")[2].split("/")[0])
                    break
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            return asyncio.run(_hover(page["webSocketDebuggerUrl"], url, plot, shot, mark))
        finally:
            browser.terminate()


async def _hover(socket: str, url: str, plot: str, shot: Path, mark: int) -> str:
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(socket, max_message_size=50 * 2**20)
    calls = iter(range(1, 1_000_000))

    async def call(method: str, **params):
        number = next(calls)
        await connection.write_message(json.dumps({"id": number, "method": method,
                                                   "params": params}))  # fmt: skip
        while True:  # events come in between; the reply has the call's id
            reply = json.loads(await connection.read_message())
            if reply.get("id") == number:
                return reply["result"]

    async def evaluate(expression: str, what: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await call("Runtime.evaluate", expression=expression, returnByValue=True)
            if found["result"].get("value"):
                return found["result"]["value"]
            await asyncio.sleep(0.2)
        raise AssertionError(f"{what} did not appear on {url}")

    figure = f"[...document.querySelectorAll('figure.plot')].find(f => " \
        f"f.getAttribute('aria-label').startsWith({json.dumps(plot)}))"  # fmt: skip
    await call("Page.navigate", url=url)
    x, y = await evaluate(
        f"(() => {{ const marks = {figure}?.querySelectorAll('.point') || []; "
        f"if (marks.length <= {mark}) return null; "
        f"const box = marks[{mark}].getBoundingClientRect(); "
        "return [box.x + box.width / 2, box.y + box.height / 2]; })()",
        f"the plot {plot!r}",
    )
    await call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    label = await evaluate(f"{figure}.querySelector('.hoverlayer').textContent", "a hover label")
    screenshot = await call("Page.captureScreenshot", format="png")
    shot.write_bytes(__import__("base64").b64decode(screenshot["data"]))
    if os.environ.get("GENEJOBS_SCREENSHOTS"):
        target = Path(os.environ["GENEJOBS_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)
    connection.close()
    return label


def test_the_jobs_page_lists_every_job_with_live_progress(explorer):
    started = time.monotonic()
    dom = browse(explorer["base"] + "/", explorer["folder"] / "jobs.png")
    assert explorer["importance"] in dom and explorer["shap"] in dom
    assert "8 done, 0 failed, 0 pending" in dom  # written by the page's refresh too
    assert time.monotonic() - started < 60


def test_an_importance_job_shows_gene_counts_with_intervals(explorer):
    job = explorer["importance"]
    dom = browse(f"{explorer['base']}/job/{job}", explorer["folder"] / "importance.png")
    top = sql(
        f"SELECT gene FROM importances WHERE job_id = '{job}' AND rank <= 20 "
        "GROUP BY gene ORDER BY count(*) DESC, avg(importance) DESC, gene LIMIT 1"
    )[0][0]
    assert "95% Wilson intervals" in dom and top in dom
    assert "Stability (Nogueira et al. 2018" in dom


def test_a_shap_job_shows_global_per_model_and_presence(explorer):
    job = explorer["shap"]
    dom = browse(f"{explorer['base']}/job/{job}", explorer["folder"] / "shap.png")
    best = sql(
        f"SELECT f.feature FROM shap_values v JOIN shap_features f USING (job_id, feature_id) "
        f"WHERE v.job_id = '{job}' GROUP BY f.feature ORDER BY avg(abs(v.shap)) DESC LIMIT 1"
    )[0][0]
    assert "Global contribution (overall)" in dom and best in dom
    assert "Contribution against presence" in dom
    assert "Feature groups: mean |SHAP|" in dom and "distance" in dom
    per_model = browse(
        f"{explorer['base']}/job/{job}?by=model", explorer["folder"] / "per_model.png"
    )
    assert per_model.count("<h2>model ") == 5 and "(chrom " in per_model


def test_searching_a_gene_finds_its_prediction_and_explains_it(explorer):
    job = explorer["shap"]
    key, row_id = sql(
        f"SELECT row_key, row_id FROM shap_rows WHERE job_id = '{job}' ORDER BY output DESC LIMIT 1"
    )[0]
    gene = key.rsplit("|", 1)[1]
    dom = browse(f"{explorer['base']}/job/{job}?q={gene}", explorer["folder"] / "search.png")
    assert f"Predictions matching {gene}" in dom and key in dom
    row = browse(f"{explorer['base']}/shap/{job}/row/{row_id}", explorer["folder"] / "row.png")
    top = sql(
        f"SELECT f.feature FROM shap_values v JOIN shap_features f USING (job_id, feature_id) "
        f"WHERE v.job_id = '{job}' AND v.row_id = {row_id} ORDER BY abs(v.shap) DESC LIMIT 1"
    )[0][0]
    assert f"Prediction {key}" in row and top in row
    assert "Candidates of " in row and "ranked by output" in row
    assert "By feature group" in row


def test_an_unknown_job_is_a_page_that_says_so(explorer):
    dom = browse(f"{explorer['base']}/job/imp-none", explorer["folder"] / "unknown.png")
    assert "unknown job 'imp-none'" in dom


def test_feature_groups_sum_each_predictions_values(explorer):
    import io

    import pandas as pd

    job = explorer["shap"]
    shown = pd.read_json(
        io.StringIO(run("shap", "global", job, "--by-group", "--format", "json").output)
    )
    expected = dict(
        sql(
            f"""SELECT g, avg(abs(s)) FROM (
                    SELECT f.feature_group AS g, v.row_id, sum(v.shap) AS s
                    FROM shap_values v JOIN shap_features f USING (job_id, feature_id)
                    WHERE v.job_id = '{job}' GROUP BY ALL) GROUP BY g"""
        )
    )
    assert set(shown["group"]) == set(synth_l2g.GROUPS) == set(expected)
    for row in shown.itertuples():
        assert abs(row.mean_abs_shap - expected[row.group]) < 1e-9
    assert list(shown["mean_abs_shap"]) == sorted(shown["mean_abs_shap"], reverse=True)


def test_a_search_shows_its_leaderboard_and_fold_scores(explorer):
    job = explorer["search"]
    dom = browse(f"{explorer['base']}/job/{job}", explorer["folder"] / "search_job.png")
    assert "Leaderboard" in dom and f"{job}-lr" in dom and f"{job}-dt" in dom
    assert "Fold scores" in dom and dom.count("<td>done</td>") >= 4  # 2 models x 2 folds


def test_an_importance_scope_shows_pooled_counts_and_reduced_datasets(explorer):
    dom = browse(f"{explorer['base']}/scope/tissue/lr", explorer["folder"] / "scope.png")
    runs = sql(
        "SELECT count(*) FROM runs r JOIN datasets d USING (dataset_id) "
        "WHERE d.name = 'tissue' AND r.model = 'lr' AND r.status = 'done'"
    )[0][0]
    assert f"in {runs} fits of lr on tissue, every job" in dom
    assert "tissue-explored" in dom


def _plot(dom: str, label: str) -> str:
    """The drawn plot (figure) whose aria-label starts with `label`, without its JSON."""
    start = dom.index(f'aria-label="{label}')
    drawn = dom[start : dom.index("</figure>", start)]
    return re.sub(r"<script\b.*?</script>", "", drawn, flags=re.S)


def _marks(plot: str) -> int:
    """The dots (or bars) plotly.js drew in a plot."""
    return len(re.findall(r'<(?:path|g) class="point[ "]', plot))


def _spec(dom: str, label: str) -> dict:
    """The plotly figure (data, layout) of the plot whose aria-label starts with `label`."""
    start = dom.index(f'aria-label="{label}')
    found = re.search(r'<script type="application/json">(.*?)</script>', dom[start:], re.S)
    return json.loads(found[1])


def test_shap_plots_beeswarm_presence_and_dependence(explorer):
    job = explorer["shap"]
    dom = browse(f"{explorer['base']}/job/{job}", explorer["folder"] / "shap_plots.png")
    rows = sql(f"SELECT count(*) FROM shap_rows WHERE job_id = '{job}'")[0][0]
    order = [
        f
        for (f,) in sql(
            f"SELECT f.feature FROM shap_values v JOIN shap_features f USING (job_id, feature_id)"
            f" WHERE v.job_id = '{job}' GROUP BY f.feature ORDER BY avg(abs(v.shap)) DESC, "
            "f.feature LIMIT 15"
        )
    ]
    title = f"SHAP values of every prediction, {rows:,} rows, binned (overall)"
    swarm = _plot(dom, title)
    # Every prediction is counted: each feature's bins (with a value above its line, without
    # below) add up to the job's rows, and the features come in the bars' order.
    counted: dict[str, int] = {}
    for trace in _spec(dom, title)["data"]:
        for bin_ in trace.get("customdata") or []:
            counted[html.unescape(bin_[0])] = counted.get(html.unescape(bin_[0]), 0) + bin_[2]
    assert counted == dict.fromkeys(order, rows)
    assert _marks(swarm) >= 15
    labels = [swarm.index(f">{feature}</text>") for feature in order]
    assert labels == sorted(labels)
    assert "log-odds" in swarm and "no value (below the line)" in swarm and "value level" in swarm
    assert "Every prediction is counted, in bins of its SHAP value" in dom
    present = _plot(dom, "mean SHAP when the feature is present and when absent (all models)")
    assert "when present" in present and "present in " in present
    # A feature absent from some rows: its dependence plot has both panels.
    sometimes = {f for (f,) in sql(
        f"SELECT f.feature FROM shap_values v JOIN shap_features f USING (job_id, feature_id) "
        f"WHERE v.job_id = '{job}' GROUP BY 1 HAVING bool_or(NOT v.present)")}  # fmt: skip
    feature = next(f for f in order if f in sometimes)
    dom = browse(
        f"{explorer['base']}/job/{job}?feature={feature}", explorer["folder"] / "dependence.png"
    )
    title = f"{feature}: SHAP against its value, {rows:,} rows, binned (all models)"
    heat = _plot(dom, title)
    assert "rows without a value" in heat and "predictions" in heat
    spec = _spec(dom, title)
    cells = sum(c for line in spec["data"][0]["customdata"] for c in line if c)
    absent = sum(spec["data"][1]["x"])
    expected = sql(
        f"SELECT count(*) FILTER (WHERE v.present AND v.value IS NOT NULL), "
        f"count(*) FILTER (WHERE NOT (v.present AND v.value IS NOT NULL)) FROM shap_values v "
        f"JOIN shap_features f USING (job_id, feature_id) "
        f"WHERE v.job_id = '{job}' AND f.feature = '{feature}'"
    )[0]
    assert (cells, absent) == expected and cells + absent == rows
    gone = browse(f"{explorer['base']}/job/{job}?feature=no_such", explorer["folder"] / "x.png")
    assert "no feature 'no_such'" in gone


def test_hovering_a_beeswarm_bin_shows_its_range_rows_and_value_level(explorer):
    job = explorer["shap"]
    url = f"{explorer['base']}/job/{job}"
    label = hover(url, "SHAP values of every prediction", explorer["folder"] / "hover_beeswarm.png")
    # The first bin drawn: the top feature's lowest SHAP bin of predictions with a value.
    feature, span, _, rows, absent, level = _spec(fetch(url)[1], "SHAP values of every prediction")[
        "data"
    ][0]["customdata"][0]
    assert label == (
        f"{html.unescape(feature)}SHAP {span}{rows} predictions, {absent} without a value"
        f"value level {level} (0: 1st percentile, 1: 99th)"
    ), label  # textContent: the label's lines without their breaks


def _adds_up(dom: str) -> tuple[float, float, float]:
    """A comparison page's output difference, base difference and sum of feature differences."""
    found = re.search(
        r'class="adds-up" data-output="([^"]+)" data-base="([^"]+)" data-features="([^"]+)"', dom
    )
    assert found, dom[-2000:]
    return float(found[1]), float(found[2]), float(found[3])


def test_a_candidates_link_opens_the_pair_view_whose_numbers_add_up(explorer):
    from genejobs import api

    job = explorer["shap"]
    key, row_id = sql(
        f"SELECT row_key, row_id FROM shap_rows WHERE job_id = '{job}' ORDER BY output DESC LIMIT 1"
    )[0]
    row = browse(
        f"{explorer['base']}/shap/{job}/row/{row_id}", explorer["folder"] / "candidates.png"
    )
    links = re.findall(r'<a class="pair" href="([^"]+)">why ◀ above this one</a>', row)
    candidates = sql(
        f"SELECT count(*) FROM shap_rows WHERE job_id = '{job}' "
        f"AND starts_with(row_key, '{key.rsplit('|', 1)[0]}|')"
    )[0][0]
    assert len(links) == candidates - 1 >= 1  # every other gene of the locus, none for itself
    link = html.unescape(links[0])
    other = re.search(r"&b=([^&]+)", link)[1]
    dom = browse(explorer["base"] + link, explorer["folder"] / "pair.png")
    other = urllib.parse.unquote(other)
    assert f"Why {key} ranks above {other}" in dom
    expected = api.shap_pair(job, key, other)
    output, base, features = _adds_up(dom)
    assert abs(output - expected["output_difference"]) < 1e-9
    assert abs(base - expected["base_difference"]) < 1e-9
    assert abs(features - expected["features"]["difference"].sum()) < 1e-9
    assert abs(output - (base + features)) < 1e-3  # SHAP values add up (to 1e-3 per row)
    top = expected["features"].iloc[0]
    plot = _plot(dom, "Per feature: SHAP of A − SHAP of B")
    assert f">{top['feature']}</text>" in plot and f"{top['difference']:+.4g}" in plot
    groups = _plot(dom, "Per feature group: SHAP sums, A − B")
    assert all(f">{g}</text>" in groups for g in expected["groups"]["group"])
    label = hover(
        explorer["base"] + link, "Per feature: SHAP of A", explorer["folder"] / "hover_pair.png"
    )  # the first bar: the feature that separates them most
    assert label.startswith(top["feature"]) and "value: A " in label, label
    assert f"SHAP: A {top['shap_a']:+.4g}, B {top['shap_b']:+.4g}" in label, label
    assert f"SHAP A − B: {top['difference']:+.4g}" in label, label


def test_two_shap_jobs_compared_row_by_row_and_feature_by_feature(explorer):
    from genejobs import api

    a, b = explorer["shap"], explorer["shap_b"]
    page = browse(f"{explorer['base']}/job/{a}", explorer["folder"] / "compare_link.png")
    assert f'href="/compare?a={a}&amp;b={b}">compare with {b}</a>' in page
    dom = browse(f"{explorer['base']}/compare?a={a}&b={b}", explorer["folder"] / "compare.png")
    expected = api.shap_compare(a, b)
    summary = expected["summary"]
    assert f"<b>{summary['matched']:,}</b> rows matched by study_id, locus_id, gene_id" in dom
    assert "0 only in A, 0 only in B" in dom
    table = dom[dom.index('<table class="moves">') :]
    shown = re.findall(
        r'<tr><td><a href="([^"]+)">([^<]+)</a></td><td class="n">[^<]*</td>'
        r'<td class="n">[^<]*</td><td class="n">([^<]+)</td>',
        table[: table.index("</table>")],
    )
    moves = expected["moves"]
    assert [k for _, k, _ in shown] == list(moves["row_key"])
    assert [m for _, _, m in shown] == [f"{m:+.4g}" for m in moves["move"]]
    ranked = _spec(dom, "Global ranking in each job")
    assert [t["name"] for t in ranked["data"]] == [f"A {a}", f"B {b}"]
    top = expected["features"].iloc[0]
    moved = _plot(dom, "Per feature: how far its SHAP moved, B − A")
    assert f">{top['feature']}</text>" in moved
    assert _plot(dom, "Per feature group: how far its SHAP sum moved")
    # A moved row's link opens its move view: what moved that prediction, adding up.
    link, key, _ = shown[0]
    view = browse(explorer["base"] + html.unescape(link), explorer["folder"] / "move.png")
    assert f"What moved {key} from {a} to {b}" in view
    one = api.shap_move(a, b, key)
    output, base, features = _adds_up(view)
    assert abs(output - (one["output_b"] - one["output_a"])) < 1e-9
    assert abs(output - moves["move"].iloc[0]) < 1e-9
    assert abs(base - one["base_move"]) < 1e-9
    assert abs(features - one["features"]["move"].sum()) < 1e-9
    first = one["features"].iloc[0]
    assert f">{first['feature']}</text>" in _plot(view, "Per feature: SHAP in B − SHAP in A")


def test_hovering_a_genes_bar_shows_its_name_and_count(explorer):
    job = explorer["importance"]
    gene, fits = sql(
        f"SELECT gene, count(*) FROM importances WHERE job_id = '{job}' AND rank <= 20 "
        "GROUP BY gene ORDER BY count(*) DESC, avg(importance) DESC, gene LIMIT 1"
    )[0]
    label = hover(
        f"{explorer['base']}/job/{job}", "Fraction of the 8 fits with the gene in their top 20",
        explorer["folder"] / "hover_gene.png",
    )  # fmt: skip
    assert label.startswith(gene), label
    assert f"selected in {fits} of 8 fits: fraction {fits / 8:.4g}" in label, label
    assert "95% interval" in label and "mean rank" in label, label


def test_hovering_a_features_bar_shows_its_mean_absolute_shap(explorer):
    job = explorer["shap"]
    feature, value = sql(
        f"SELECT f.feature, avg(abs(v.shap)) FROM shap_values v "
        f"JOIN shap_features f USING (job_id, feature_id) WHERE v.job_id = '{job}' "
        "GROUP BY f.feature ORDER BY avg(abs(v.shap)) DESC, f.feature LIMIT 2"
    )[1]  # the second bar: not only the first is labelled right
    label = hover(
        f"{explorer['base']}/job/{job}", "Mean |SHAP| of the top 20 features (overall)",
        explorer["folder"] / "hover_feature.png", mark=1,
    )  # fmt: skip
    assert label.startswith(feature), label
    assert f"mean |SHAP| {value:.4g} (log-odds)" in label, label


def test_a_multiclass_shap_job_names_its_classes(explorer):
    import gzip
    import json

    import pandas as pd

    from tests.conftest import TISSUE, frame_of, refused

    job = explorer["multiclass"]
    with gzip.open(TISSUE, "rt") as handle:
        tissues = sorted(pd.read_csv(handle)["tissue"].astype(str).unique())
    stored = json.loads(sql(f"SELECT params FROM shap_jobs WHERE job_id = '{job}'")[0][0])
    assert stored["classes"] == tissues
    by_name = frame_of(run("shap", "global", job, "--class", tissues[2], "--format", "json"))
    by_number = frame_of(run("shap", "global", job, "--class", "2", "--format", "json"))
    assert by_name.equals(by_number) and set(by_name["class_name"]) == {tissues[2]}
    title = run("shap", "presence", job, "--class", tissues[2].upper()).output
    assert f"class 2 ({tissues[2]})" in title
    line = refused("shap", "global", job, "--class", "no_such_tissue", expect="no class")
    assert f"0 {tissues[0]}" in line and f"6 {tissues[6]}" in line

    overall = browse(f"{explorer['base']}/job/{job}", explorer["folder"] / "multiclass.png")
    assert all(f"({name})</a>" in overall for name in tissues)
    assert "drawn for one class: choose one above" in overall
    assert "Signed SHAP is drawn for one class" in overall
    chosen = browse(
        f"{explorer['base']}/job/{job}?class={tissues[2]}", explorer["folder"] / "class.png"
    )
    assert f"Global contribution (overall, class 2 ({tissues[2]}))" in chosen
    rows = sql(f"SELECT count(*) FROM shap_rows WHERE job_id = '{job}' AND class = 2")[0][0]
    swarm = f"SHAP values of every prediction, {rows:,} rows, binned (overall, class 2"
    assert f"{swarm} ({tissues[2]}))" in chosen
    assert f"present and when absent (all models, class 2 ({tissues[2]}))" in chosen
    # The SHAP job says which run it explains; the importance job links to the SHAP job.
    assert f'href="/job/{explorer["tree"]}"' in chosen
    tree = browse(f"{explorer['base']}/job/{explorer['tree']}", explorer["folder"] / "tree.png")
    assert "Explained by SHAP jobs" in tree and job in tree


def fetch(url: str) -> tuple[int, str]:
    """GET `url`: the status and the page, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_a_bad_parameter_is_a_400_line_that_names_it_and_logs_no_traceback(explorer):
    base, importance, shap = explorer["base"], explorer["importance"], explorer["shap"]
    whole = "a whole number from 1 to 10000"
    bad = {
        f"/job/{importance}?top=abc": ("top: " + whole, "'abc'"),
        f"/job/{importance}?top=-5": ("top: " + whole, "'-5'"),
        f"/job/{importance}?top=0": ("top: " + whole, "'0'"),
        f"/job/{importance}?top=1000000000": ("top: " + whole, "'1000000000'"),
        f"/job/{importance}?top=1e3": ("top: " + whole, "'1e3'"),
        f"/job/{importance}?top={'9' * 5000}": ("top: " + whole, "…"),
        f"/job/{importance}?q=x": ("unknown parameter 'q'", "takes top"),
        f"/job/{shap}?class=--1": ("class: a class name or number", "'--1'"),
        f"/job/{shap}?class={quote('²')}": ("class: a class name or number", "'²'"),
        f"/job/{shap}?class=7": ("no class 7 in SHAP job", "classes are 1"),
        f"/job/{shap}?by=gene": ("by: only 'model'", "'gene'"),
        f"/job/{shap}?feature=no_such": ("feature: no feature 'no_such'", "links each one"),
        f"/job/{shap}?q={'x' * 201}": ("q: at most 200 characters", "not 201"),
        f"/job/{shap}?q=%ff": ("q: not UTF-8 text", ""),
        f"/job/{shap}?top=5": ("unknown parameter 'top'", "takes q, feature, class, by"),
        f"/shap/{shap}/row/abc": ("row id: a whole number from 0 to 2147483647", "'abc'"),
        f"/shap/{shap}/row/-1": ("row id: a whole number from 0", "'-1'"),
        f"/shap/{shap}/row/{'9' * 30}": ("row id: a whole number from 0", "'999"),
        f"/shap/{shap}/row/0?top=1": ("unknown parameter 'top'", "takes no parameters"),
        "/?top=3": ("unknown parameter 'top'", "the jobs page takes no parameters"),
        "/scope/tissue/lr?top=3": ("unknown parameter 'top'", "takes no parameters"),
    }
    for path, (says, quoting) in bad.items():
        started = time.monotonic()
        status, page = fetch(base + path)
        assert (status, time.monotonic() - started < 10) == (400, True), (path, page[-400:])
        line = re.search(r"<h1>Cannot show this</h1>\n<p>(.*)</p>", page)
        shown = html.unescape(line[1]) if line else page
        assert says in shown and quoting in shown, (path, shown)
    # The same parameters, well formed, still work; a blank one is its default.
    for path in (f"/job/{importance}?top=5", f"/job/{importance}?top=", f"/job/{shap}?by=model"):
        assert fetch(base + path)[0] == 200, path
    log = explorer["log"].read_text(errors="replace")
    assert "Traceback" not in log and not re.search(r"^500 ", log, re.M), log[-3000:]


def test_pair_and_compare_refuse_bad_parameters_with_one_line(explorer):
    base, shap, shap_b, multi = (
        explorer["base"], explorer["shap"], explorer["shap_b"], explorer["multiclass"]
    )  # fmt: skip
    key = quote(
        sql(f"SELECT row_key FROM shap_rows WHERE job_id = '{shap}' AND source_row = 1")[0][0]
    )
    pair = f"/job/{shap}/pair"
    bad = {
        f"{pair}?a={key}": (400, "b: required, a prediction's key", "or row number"),
        f"{pair}?b={key}": (400, "a: required", ""),
        f"{pair}?a={key}&b={key}": (400, "compare two different predictions", ""),
        f"{pair}?a=no_such&b={key}": (400, f"a: no row 'no_such' in SHAP job {shap}", ""),
        f"{pair}?a={key}&b=7777777": (400, f"b: no row '7777777' in SHAP job {shap}", ""),
        f"{pair}?a={key}&b=0&top=3": (400, "unknown parameter 'top'", "takes a, b, class"),
        f"{pair}?a={key}&b=0&class=9": (400, "no class 9 in SHAP job", "classes are 1"),
        f"/job/{multi}/pair?a=0&b=1": (400, "class: SHAP job", "choose one with ?class="),
        "/job/shap-none/pair?a=0&b=1": (404, "unknown SHAP job 'shap-none'", ""),
        f"/compare?a={shap}": (400, "b: required, a SHAP job's id", ""),
        f"/compare?a={shap}&b=a%2Fb": (400, "b: a SHAP job's id, not 'a/b'", ""),
        f"/compare?a={shap}&b={shap}": (400, "compare two different SHAP jobs", ""),
        f"/compare?a={shap}&b=shap-none": (404, "unknown SHAP job 'shap-none'", ""),
        f"/compare?a={shap}&b={multi}&class=1": (400, "different id columns", "cannot be matched"),
        f"/compare?a={shap}&b={multi}": (400, f"class: SHAP job {multi} explains several", ""),
        f"/compare?a={shap}&b={shap_b}&top=0": (400, "top: a whole number from 1 to 1000", "'0'"),
        f"/compare?a={shap}&b={shap_b}&row=no_such": (400, "row: no row 'no_such'", shap),
        f"/compare?a={shap}&b={shap_b}&x=1": (400, "unknown parameter 'x'", "takes a, b, row"),
    }
    for path, (code, says, quoting) in bad.items():
        status, page = fetch(base + path)
        assert status == code, (path, status, page[-400:])
        line = re.search(r"<h1>(?:Cannot show this|Not found)</h1>\n<p>(.*)</p>", page)
        shown = html.unescape(line[1]) if line else page
        assert says in shown and quoting in shown, (path, shown)
    for path in (f"{pair}?a={key}&b=0", f"/compare?a={shap}&b={shap_b}&top=3"):
        assert fetch(base + path)[0] == 200, path
    log = explorer["log"].read_text(errors="replace")
    assert "Traceback" not in log and not re.search(r"^500 ", log, re.M), log[-3000:]


def test_percent_and_underscore_in_a_search_match_only_themselves(explorer):
    job = explorer["shap"]
    keys = sql(f"SELECT row_key FROM shap_rows WHERE job_id = '{job}' ORDER BY row_key LIMIT 1")
    key = keys[0][0]
    # Wildcards would find the key with one character replaced by `_`, or by `%`.
    for wild in (key[:-1] + "_", key[:-2] + "%", "%", "_"):
        page = fetch(f"{explorer['base']}/job/{job}?q={quote(wild)}")[1]
        assert "No prediction's id contains" in page and key not in page, wild
    page = fetch(f"{explorer['base']}/job/{job}?q={quote(key.lower())}")[1]
    assert f"Predictions matching {key.lower()}" in page and key in page


def test_a_search_with_more_than_50_matches_says_so(explorer):
    job = explorer["shap"]
    matches = sql(f"SELECT count(*) FROM shap_rows WHERE job_id = '{job}' AND row_key LIKE '%|%'")
    assert matches[0][0] > 50
    page = fetch(f"{explorer['base']}/job/{job}?q=%7C")[1]  # `|`, in every key
    assert "Showing the first 50 (highest output) of more than 50 matches" in page
    assert page.count(f'href="/shap/{job}/row/') == 50
    key = sql(f"SELECT row_key FROM shap_rows WHERE job_id = '{job}' LIMIT 1")[0][0]
    page = fetch(f"{explorer['base']}/job/{job}?q={quote(key)}")[1]
    assert key in page and "more than 50" not in page


def _views_job(job_id: str) -> dict | None:
    """A job's row of the jobs page's query, read from the views."""
    import duckdb

    from genejobs.config import settings
    from genejobs.storage import queries

    try:
        with duckdb.connect(str(settings().views_dir / "genejobs.duckdb"), read_only=True) as con:
            frame = queries.jobs(con)
    except duckdb.Error:
        return None
    found = frame[frame["job_id"] == job_id]
    return None if found.empty else found.iloc[0].to_dict()


def test_the_jobs_page_shows_each_jobs_status_and_cancelled_units(explorer, tissue):
    from genejobs.worker import inbox
    from tests.test_importance_jobs import start_job

    job_id = start_job(tissue, "--model", "ada", "--runs", "40")
    wait_until(lambda: inbox.progress(job_id).get("done", 0) >= 1, 120, 0.1, "a first run")
    run("jobs", "cancel", job_id)
    wait_until(lambda: not sql(f"SELECT 1 FROM runs WHERE job_id = '{job_id}' "
                               "AND status = 'pending'"), 120, what="no pending run")  # fmt: skip
    counts = dict(sql(f"SELECT status, count(*) FROM runs WHERE job_id = '{job_id}' GROUP BY 1"))
    cancelled = counts.get("cancelled", 0)
    assert cancelled > 0
    wait_until(
        lambda: (_views_job(job_id) or {}).get("cancelled") == cancelled, 60, what="the views"
    )
    dom = browse(explorer["base"] + "/", explorer["folder"] / "jobs_cancelled.png")
    assert "<th>status</th>" in dom
    rows = {
        found[1]: found[0]
        for found in re.finditer(r'<tr><td><a href="/job/([^"]+)">.*?</tr>', dom, re.S)
    }
    assert ">cancelled</td>" in rows[job_id] and f"{cancelled} cancelled" in rows[job_id]
    assert f"{counts.get('done', 0)} done, 0 failed, 0 pending" in rows[job_id]
    assert ">done</td>" in rows[explorer["importance"]]
    assert "8 done, 0 failed, 0 pending, 0 cancelled" in rows[explorer["importance"]]
    page = fetch(f"{explorer['base']}/job/{job_id}")[1]
    assert f"cancelled: {counts.get('done', 0)} done" in page
    assert f"0 pending, {cancelled} cancelled" in page


def test_a_jobs_summaries_are_computed_once_and_again_when_its_rows_grow():
    import threading

    import duckdb

    from genejobs.cli.explorer.summaries import Summaries

    con = duckdb.connect()
    con.execute("CREATE TABLE shap_rows AS SELECT 'shap-a' AS job_id FROM range(3)")
    kept, calls = Summaries(keep=2), []

    def compute():
        calls.append(1)
        time.sleep(0.2)  # long enough for both threads to ask before it is kept
        return len(calls)

    key = ("shap-a", kept.of(con, "shap-a").rows, "global")
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(kept.get(key, compute)))
               for _ in range(2)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [1, 1] and len(calls) == 1  # the second asker waited for the first
    assert kept.get(key, compute) == 1 and len(calls) == 1
    con.execute("INSERT INTO shap_rows VALUES ('shap-a')")  # a shard landed: 4 rows
    assert kept.of(con, "shap-a").rows == 4 and key[1] == 3
    assert kept.get(("shap-a", 4, "global"), compute) == 2
    kept.get(("shap-b", 1, "global"), compute)  # a third summary: the oldest one goes
    assert kept.get(key, compute) == 4


def test_a_slow_summary_is_computed_on_a_thread_while_its_page_says_so():
    from genejobs.cli.explorer.summaries import Summaries
    from genejobs.errors import InputError

    kept, calls = Summaries(), []

    def slow():
        calls.append(1)
        time.sleep(0.6)
        return "compared"

    assert kept.soon(("compare", "a", "b"), slow, 0.05) is None  # not ready: the thread goes on
    assert kept.soon(("compare", "a", "b"), slow, 0.05) is None  # asked again: no second thread
    assert kept.soon(("compare", "a", "b"), slow, 2) == "compared" and len(calls) == 1
    assert kept.soon(("compare", "a", "b"), slow, 0) == "compared"  # kept

    def refused():
        raise InputError("compare two different SHAP jobs")

    with pytest.raises(InputError, match="compare two different"):  # a quick refusal: its line
        kept.soon(("compare", "a", "a"), refused, 2)
