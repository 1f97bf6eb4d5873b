"""Selection stability end to end: intervals on gene counts, stability, stable sets with the
bound, comparisons, the pairs scheme, and jobs that stop when their answer is stable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genejobs.storage import synth
from genejobs.storage.datasets import ExpressionMatrix
from genejobs.storage.stability import false_selection_bound
from genejobs.tasks.fit import fit_pair
from tests.conftest import frame_of, refused, run, sql, wait_until

PLANTED = {f"SIG{i:02d}" for i in range(1, 13)}


@pytest.fixture(scope="module")
def planted(stack, tmp_path_factory):
    """The demo data (12 planted genes of 200) registered as `planted`."""
    path = tmp_path_factory.mktemp("planted") / "planted.csv"
    run("datasets", "demo", "--out", str(path))
    run("datasets", "add", str(path), "--label", "tissue", "--id-col", "sample_id")
    return "planted"


@pytest.fixture(scope="module")
def pairs_job(planted):
    out = run("importance", planted, "--model", "lr", "--scheme", "pairs", "--runs", "30", "--wait")
    return out.output.split()[1].rstrip(":")


@pytest.fixture(scope="module")
def split_job(planted):
    out = run("importance", planted, "--model", "lr", "--runs", "30", "--wait")
    return out.output.split()[1].rstrip(":")


def test_pairs_runs_are_two_fits_on_complementary_halves(pairs_job):
    rows = sql(f"SELECT DISTINCT n_train, n_test FROM runs WHERE job_id = '{pairs_job}'")
    assert rows == [(75, 75)]
    halves = sql(
        f"SELECT half, count(DISTINCT seed) FROM importances WHERE job_id = '{pairs_job}' "
        "GROUP BY half ORDER BY half"
    )
    assert halves == [(0, 30), (1, 30)]


def test_gene_counts_carry_intervals(pairs_job):
    table = frame_of(run("genes", "count", "--job", pairs_job, "--top", "12", "--format", "json"))
    assert np.allclose(table["fraction"], table["runs"] / 60)  # 30 pairs = 60 fits
    assert (table["fraction_lo"] <= table["fraction"]).all()
    assert (table["fraction"] <= table["fraction_hi"]).all()
    assert (table["fraction_hi"] <= 1).all() and (table["fraction_lo"] >= 0).all()
    several = table[table["runs"] >= 2]
    assert (several["mean_rank_lo"] <= several["mean_rank"]).all()
    assert (several["mean_rank"] <= several["mean_rank_hi"]).all()
    # Wilson, not Wald: a gene in every fit still has an interval below 1.
    always = table[table["runs"] == 60]
    assert (always["fraction_lo"] < 1).all() and (always["fraction_lo"] > 0.9).all()


def test_stability_with_interval_and_convergence_plot(pairs_job, tmp_path):
    plot = tmp_path / "stability.png"
    out = run(
        "genes", "stability", "--job", pairs_job, "--top", "12", "--plot", str(plot),
        "--format", "json",
    )  # fmt: skip
    table = frame_of(out)
    assert list(table["selection"]) == ["top 12", "non-zero importance"]
    top = table.iloc[0]
    assert top["fits"] == 60 and top["genes"] == 200 and top["mean_selected"] == 12
    assert top["lo"] <= top["stability"] <= top["hi"] and 0.3 < top["stability"] <= 1
    # lr gives every gene a coefficient: all fits select everything, stability undefined.
    assert np.isnan(table.iloc[1]["stability"])
    assert plot.stat().st_size > 10_000


def test_stable_set_of_a_pairs_job_is_planted_and_the_bound_applies(pairs_job):
    out = json.loads(
        run(
            "genes", "stable", "--job", pairs_job, "--pi", "0.75", "--top", "12",
            "--format", "json",
        ).output
    )  # fmt: skip
    found = {row["gene"] for row in out["genes_stable"]}
    assert found <= PLANTED and len(found) >= 8
    assert out["bound"].startswith("applies")
    assert out["expected_false_selections_at_most"] == pytest.approx(12 * 12 / (0.5 * 200))


def test_the_bound_does_not_apply_to_split_jobs(split_job):
    out = run("genes", "stable", "--job", split_job, "--pi", "0.75", "--top", "12").output
    assert "does not apply" in out and "--scheme pairs" in out


def test_compare_two_jobs(pairs_job, split_job):
    out = json.loads(
        run(
            "genes", "compare", pairs_job, split_job, "--top", "12", "--pi", "0.75",
            "--format", "json",
        ).output
    )  # fmt: skip
    assert out["a_fits"] == 60 and out["b_fits"] == 30
    assert 0 <= out["difference_p_value"] <= 1
    assert set(out["both"]) <= PLANTED and out["jaccard"] > 0.5
    text = run("genes", "compare", pairs_job, split_job, "--top", "12").output
    assert "difference: z =" in text and "in both" in text


def test_filter_makes_a_dataset_of_the_stable_set(pairs_job):
    stable = json.loads(
        run("genes", "stable", "--job", pairs_job, "--top", "12", "--format", "json").output
    )
    out = run(
        "genes", "filter", "--job", pairs_job, "--top", "12", "--min-fraction", "0.6",
        "--name", "planted-stable",
    ).output  # fmt: skip
    assert f"with {stable['stable_genes']} genes" in out


def test_a_job_run_until_stable_stops_by_itself(planted):
    out = run(
        "importance", planted, "--model", "lr", "--until-stable", "--runs", "10",
        "--top", "12", "--min-runs", "20", "--tolerance", "0.5", "--max-runs", "200",
        "--no-wait",
    ).output  # fmt: skip
    job_id = out.strip()

    def stopped():
        params = json.loads(sql(f"SELECT params FROM jobs WHERE job_id = '{job_id}'")[0][0])
        rule = params["until_stable"]
        pending = sql(f"SELECT count(*) FROM runs WHERE job_id = '{job_id}' AND status='pending'")
        return rule if rule["stopped"] and pending == [(0,)] else None

    rule = wait_until(stopped, timeout=240, what="the job to stop by itself")
    assert rule["reason"].startswith("stopped:")
    runs = sql(f"SELECT count(*) FROM runs WHERE job_id = '{job_id}' AND status = 'done'")[0][0]
    assert 20 <= runs < 200 and rule["rounds"] >= 2
    shown = json.loads(run("jobs", "show", job_id, "--format", "json").output)
    assert shown["params"]["until_stable"]["reason"] == rule["reason"]


def test_false_selections_respect_the_bound_across_repeats():
    """Complementary pairs of real lr fits on planted data, repeated: on average no more
    genes outside the planted ones are stable than the bound allows."""
    top, pi, genes = 12, 0.75, 200
    false, found = [], []
    for repeat in range(5):
        table = synth.expression(samples=150, genes=genes, classes=3, seed=100 + repeat)
        names = [c for c in table.columns if c not in ("sample_id", "tissue")]
        classes = tuple(sorted(table["tissue"].unique()))
        matrix = ExpressionMatrix(
            X=table[names].to_numpy(),
            y=np.searchsorted(classes, table["tissue"].to_numpy()),
            classes=classes,
            genes=tuple(names),
            sample_ids=tuple(table["sample_id"]),
        )
        selected = np.zeros(genes)
        for seed in range(1, 21):
            result, other = fit_pair(matrix, "lr", seed)
            for picked in (result.selection, other):
                selected[list(picked.gene_index[:top])] += 1
        stable = {names[i] for i in np.flatnonzero(selected / 40 >= pi)}
        false.append(len(stable - PLANTED))
        found.append(len(stable & PLANTED))
    assert np.mean(false) <= false_selection_bound(top, genes, pi)
    assert min(found) >= 6


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("importance", "tissue", "--model", "lr", "--runs", "5", "--max-runs", "9"),
         "--max-runs needs --until-stable"),
        (("importance", "tissue", "--model", "lr", "--until-stable", "--seeds", "1,2"),
         "draws its own seeds"),
        (("importance", "tissue", "--model", "lr", "--until-stable", "--pi", "0.4"),
         "--pi"),
        (("genes", "stable", "--dataset", "tissue", "--model", "lr", "--pi", "0.5"), "--pi"),
        (("genes", "compare", "imp-none", "imp-none2"), "unknown job"),
        (("genes", "filter", "--dataset", "tissue", "--model", "lr", "--name", "x"),
         "--min-count or --min-fraction"),
    ],
)  # fmt: skip
def test_bad_stability_input_is_refused(tissue, args, expect):
    refused(*args, expect=expect)


def test_stability_needs_two_fits(tissue):
    job_id = run("importance", tissue, "--model", "lr", "--runs", "1", "--wait").output.split()[1]
    refused("genes", "stability", "--job", job_id.rstrip(":"), expect="at least 2")


def test_a_batch_of_pairs_results_records_both_halves_once(tmp_path):
    """The writer's batch path (several messages in one UPDATE) with pairs results, repeated."""
    import duckdb

    from genejobs.storage.store import Store, create_schema
    from genejobs.tasks.fit import Selection, packed_selection

    con = duckdb.connect(str(tmp_path / "results.duckdb"))
    create_schema(con)
    con.execute(
        "INSERT INTO datasets (dataset_id, name, path, label_col, n_samples, n_genes, classes, "
        "class_counts, genes) VALUES ('d', 'd', 'd.parquet', 'y', 4, 3, ['a', 'b'], [2, 2], "
        "['g1', 'g2', 'g3'])"
    )
    con.execute(
        "INSERT INTO runs (dataset_id, model, seed, job_id, status, test_size) "
        "SELECT 'd', 'rf', seed, 'imp-p', 'pending', 0.5 FROM range(1, 4) t(seed)"
    )
    halves = (Selection((0, 2), (0.7, 0.3)), Selection((1,), (1.0,)))
    messages = [
        {
            "op": "run_done", "job_id": "imp-p", "dataset_id": "d", "model": "rf", "seed": seed,
            "n_train": 2, "n_test": 2, "accuracy": 1.0, "precision": 1.0, "recall": 1.0,
            "f1": 1.0, "fit_seconds": 0.1, "n_selected": 2, "worker": "w",
            "importances": packed_selection(halves[0]),
            "importances_b": packed_selection(halves[1]),
        }
        for seed in (1, 2, 3)
    ]  # fmt: skip
    store = Store(con).importance
    assert store.record_done(messages) == {"imp-p"}
    assert store.record_done(messages) == set()  # a redelivered batch changes nothing
    rows = con.execute(
        "SELECT seed, half, list(gene ORDER BY rank) FROM importances GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    assert rows == [(s, h, ["g1", "g3"] if h == 0 else ["g2"]) for s in (1, 2, 3) for h in (0, 1)]


def test_a_fresh_plans_units_are_the_units_read_back(tmp_path):
    """The writer sends a new importance job's units from its plan (`units.planned_runs`)
    rather than reading them back: they must be the units `units.pending` reads."""
    import duckdb

    from genejobs.contract import PlanImportance
    from genejobs.storage import units
    from genejobs.storage.store import Store, create_schema
    from genejobs.units import JobKind

    con = duckdb.connect(str(tmp_path / "results.duckdb"))
    create_schema(con)
    con.execute(
        "INSERT INTO datasets (dataset_id, name, path, label_col, n_samples, n_genes, classes, "
        "class_counts, genes) VALUES ('d', 'tissue', 'datasets/d.parquet', 'y', 40, 3, "
        "['a', 'b'], [20, 20], ['g1', 'g2', 'g3'])"
    )
    store = Store(con).importance
    for job_id, model, runs, scheme in (
        ("imp-1", "dummy", 1, "split"),
        ("imp-2", "lr", 30, "split"),
        ("imp-3", "dt", 12, "pairs"),
        ("imp-4", "ada", 5, "split"),
    ):
        request = PlanImportance(job_id, "tissue", model, runs, 0.25, 10**9, None, scheme)
        plan = store.plan_importance(request)
        assert plan["created"] and len(plan["seeds"]) == runs
        planned = units.planned_runs(con, plan)
        read_back = units.pending(con, {job_id}, JobKind.IMPORTANCE)
        assert planned == read_back  # ids, tasks, arguments, titles; packs are apart:
        assert [u.pack for u in planned] == [u.pack for u in read_back]
        packs = {u.pack for u in planned}
        assert len(packs) == 1 and (packs.pop() > 1) == (model in ("lr", "dt"))
    # Planning a job again (a request applied twice) answers the plan already made: its
    # units are then read back, as some may have run.
    again = store.plan_importance(PlanImportance("imp-2", "tissue", "lr", 30, 0.25, 10**9, None))
    assert "created" not in again and len(again["seeds"]) == 30
