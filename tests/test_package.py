"""The project installs and imports under one name, and its notebook API works on a stack."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import genejobs
from tests.conftest import REPO, TISSUE, snapshot


def test_the_wheel_holds_one_top_level_package(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("genejobs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "genejobs",
        wheel.name.split("-py3")[0] + ".dist-info",
    }
    for package in ("cli", "tasks", "worker", "storage"):
        assert f"genejobs/{package}/__init__.py" in names
    assert "genejobs/storage/demo/" not in names or any(n.endswith(".csv") for n in names)


def test_a_users_tasks_module_is_not_shadowed(tmp_path):
    (tmp_path / "tasks.py").write_text("WHO = 'the user'\n")
    (tmp_path / "worker.py").write_text("WHO = 'the user'\n")
    probe = (
        "import tasks, worker, genejobs.worker.app, genejobs.tasks.importance;"
        "print(tasks.WHO, worker.WHO, genejobs.worker.app.app.main)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["the", "user", "the", "user", "genejobs"]


def test_notebook_api_runs_a_job_and_reads_it_back(tissue):
    job = genejobs.importance(tissue, "lr", runs=6)
    counts = job.wait(timeout=180, progress=False)
    assert counts["done"] == 6 and counts["pending"] == 0
    genes = genejobs.gene_counts(job=job.id)
    assert genes.attrs["runs"] == 6
    assert genes["runs"].between(1, 6).all() and genes["runs"].is_monotonic_decreasing
    assert job.summary()["kind"] == "importance"
    assert job.id in set(genejobs.jobs()["job_id"])
    assert tissue in set(genejobs.datasets()["name"])
    rows = genejobs.sql(f"SELECT count(*) AS n FROM runs WHERE job_id = '{job.id}'")
    assert rows["n"].tolist() == [6]


def test_notebook_api_registers_a_dataset(stack):
    reply = genejobs.add_dataset(TISSUE, "tissue", id_col="sample_id", name="tissue-api")
    assert reply["genes"] == 500 and reply["classes"] == 7 and reply["samples"] == 189


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (
            lambda: genejobs.importance("no-such-data", "lr", runs=2),
            genejobs.NotFoundError,
            "no-such-data",
        ),
        (lambda: genejobs.importance("tissue", "lr", runs=0), genejobs.InputError, "at least 1"),
        (
            lambda: genejobs.importance("tissue", "xyz", runs=2),
            genejobs.InputError,
            "unknown model",
        ),
        (lambda: genejobs.job("imp-none"), genejobs.NotFoundError, "unknown job"),
        (lambda: genejobs.sql("COPY (SELECT 1) TO 'x.csv'"), genejobs.InputError, "only reads"),
        (
            lambda: genejobs.add_dataset(Path("/nonexistent.csv"), "tissue"),
            genejobs.InputError,
            "nonexistent",
        ),
    ],
)
def test_notebook_api_errors_are_the_clis_and_write_nothing(tissue, call, error, text):
    before = snapshot()
    with pytest.raises(error, match=text):
        call()
    assert snapshot() == before
