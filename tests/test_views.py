"""The views: a catalog any DuckDB client opens read-only while the writer works."""

from __future__ import annotations

import threading
import time

import duckdb
import pytest

from genejobs.config import settings
from genejobs.storage.store import create_schema
from genejobs.storage.views import CATALOG, ViewPublisher
from tests.conftest import run, sql, wait_until


def _insert_run(con, job_id: str, seed: int, genes: int = 50) -> None:
    con.execute(
        "INSERT INTO runs (dataset_id, model, seed, job_id, status, test_size) "
        "VALUES ('d', 'lr', ?, ?, 'done', 0.3)",
        [seed, job_id],
    )
    con.execute(
        "INSERT INTO importances (job_id, dataset_id, model, seed, gene, importance, rank) "
        "SELECT ?, 'd', 'lr', ?, 'g' || i, 1.0 / (i + 1), i + 1 FROM range(?) t(i)",
        [job_id, seed, genes],
    )


@pytest.fixture()
def results(tmp_path):
    con = duckdb.connect(str(tmp_path / "results.duckdb"))
    create_schema(con)
    con.execute(
        "INSERT INTO jobs (job_id, kind, dataset_id, model, params, n_runs) "
        "VALUES ('imp-a', 'importance', 'd', 'lr', '{}', 0)"
    )
    yield con, ViewPublisher(tmp_path / "views")
    con.close()


def _catalog(publisher: ViewPublisher):
    return duckdb.connect(str(publisher.directory / CATALOG), read_only=True)


def test_every_row_once_through_merges_and_updates(results):
    con, publisher = results
    for seed in range(27):
        publisher.touch({"imp-a"})
        _insert_run(con, "imp-a", seed)
        con.execute("UPDATE runs SET status = 'failed' WHERE seed = 0")
        publisher.publish(con)
    with _catalog(publisher) as catalog:
        assert catalog.execute(
            "SELECT count(*), count(DISTINCT (seed, gene)) FROM importances"
        ).fetchall() == [(27 * 50, 27 * 50)]
        assert catalog.execute(
            "SELECT status, count(*) FROM runs GROUP BY ALL ORDER BY 1"
        ).fetchall() == [("done", 26), ("failed", 1)]
    # 27 publications: three parts merged from eight each, and three new ones.
    parts = sorted(key[:2] for key in publisher.files["importances"] if key != "_columns")
    assert parts == ["L0"] * 3 + ["L1"] * 3


def test_a_connection_keeps_its_snapshot_and_files_are_never_rewritten(results):
    con, publisher = results
    publisher.touch({"imp-a"})
    _insert_run(con, "imp-a", 1)
    publisher.publish(con)
    written = {p: p.stat().st_mtime_ns for p in publisher.directory.rglob("*.parquet")}
    with _catalog(publisher) as early:
        for seed in range(2, 6):
            publisher.touch({"imp-a"})
            _insert_run(con, "imp-a", seed)
            publisher.publish(con)
        # The early connection still reads its own publication, whole.
        assert early.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        assert early.execute("SELECT count(*) FROM importances").fetchone() == (50,)
    with _catalog(publisher) as late:
        assert late.execute("SELECT count(*) FROM runs").fetchone() == (5,)
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in written.items())


def test_a_new_writer_continues_where_the_last_one_published(results):
    con, publisher = results
    publisher.touch({"imp-a"})
    _insert_run(con, "imp-a", 1)
    publisher.publish(con)
    # Committed, noted as dirty, never published: the writer died.
    publisher.touch({"imp-a"})
    _insert_run(con, "imp-a", 2)
    successor = ViewPublisher(publisher.directory)
    successor.publish(con)
    with _catalog(successor) as catalog:
        assert catalog.execute("SELECT count(*) FROM runs").fetchone() == (2,)
        assert catalog.execute("SELECT count(DISTINCT seed) FROM importances").fetchone() == (2,)
        assert catalog.execute("SELECT count(*) FROM importances").fetchone() == (100,)


def test_readers_never_see_a_publication_half_done(results):
    con, publisher = results
    publisher.publish(con)
    seen: list[tuple[int, int]] = []
    failures: list[str] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                with _catalog(publisher) as catalog:
                    seen.append(
                        catalog.execute(
                            "SELECT count(*), count(DISTINCT (seed, gene)) FROM importances"
                        ).fetchone()
                    )
            except duckdb.Error as exc:
                failures.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for seed in range(40):
            publisher.touch({"imp-a"})
            _insert_run(con, "imp-a", seed, genes=200)
            publisher.publish(con)
    finally:
        stop.set()
        reader.join()
    assert not failures, failures[:3]
    assert len(seen) > 10
    assert all(total == distinct and total % 200 == 0 for total, distinct in seen)
    assert [t for t, _ in seen] == sorted(t for t, _ in seen)


def test_views_follow_a_job_and_open_while_it_runs(tissue):
    views = settings().views_dir / CATALOG
    job_id = run("importance", tissue, "--model", "lr", "--runs", "40", "--no-wait").output.strip()
    opens, done, failed = 0, 0, []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with duckdb.connect(str(views), read_only=True) as catalog:
                done = catalog.execute(
                    "SELECT count(*) FROM runs WHERE job_id = ? AND status = 'done'", [job_id]
                ).fetchone()[0]
            opens += 1
        except duckdb.Error as exc:
            failed.append(str(exc))
        if done == 40:
            break
        time.sleep(0.05)
    assert not failed, failed[:3]
    assert opens > 5 and done == 40
    # The same rows as the results file, table for table.
    queries = [
        f"SELECT count(*), sum(importance) FROM importances WHERE job_id = '{job_id}'",
        f"SELECT count(*), sum(accuracy) FROM runs WHERE job_id = '{job_id}'",
        f"SELECT job_id, kind, n_runs FROM jobs WHERE job_id = '{job_id}'",
    ]

    def same():
        with duckdb.connect(str(views), read_only=True) as catalog:
            return all(catalog.execute(q).fetchall() == sql(q) for q in queries)

    wait_until(same, timeout=30, what="the views to match the results file")


def test_a_deleted_job_leaves_the_views_even_when_row_ids_move(results):
    con, publisher = results
    con.execute(
        "INSERT INTO jobs (job_id, kind, dataset_id, model, params, n_runs) "
        "VALUES ('imp-b', 'importance', 'd', 'lr', '{}', 0)"
    )
    for seed in range(30):
        job = "imp-a" if seed % 2 else "imp-b"
        publisher.touch({job})
        _insert_run(con, job, seed, genes=400)
        publisher.publish(con)
    # Deleting imp-a's rows, then a checkpoint: DuckDB compacts the tables and
    # renumbers the row ids that views publish by.
    for table in ("importances", "runs", "jobs"):
        con.execute(f"DELETE FROM {table} WHERE job_id = 'imp-a'")
    con.execute("CHECKPOINT")
    publisher.forget("imp-a")
    publisher.publish(con)
    for seed in range(30, 40):
        publisher.touch({"imp-b"})
        _insert_run(con, "imp-b", seed, genes=400)
        con.execute("CHECKPOINT")
        publisher.publish(con)
    queries = [
        "SELECT job_id, count(*), count(DISTINCT (seed, gene)) FROM importances GROUP BY 1",
        "SELECT job_id, count(*) FROM runs GROUP BY 1",
        "SELECT job_id FROM jobs ORDER BY 1",
    ]
    with _catalog(publisher) as catalog:
        for query in queries:
            assert catalog.execute(query).fetchall() == con.execute(query).fetchall(), query
    assert con.execute(queries[0]).fetchall() == [("imp-b", 25 * 400, 25 * 400)]
