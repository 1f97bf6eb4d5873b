"""The api's queries and requests that the CLI prints, used from Python on a real stack."""

from __future__ import annotations

from genejobs import api


def test_a_jobs_genes_from_python(tissue):
    job = api.importance(tissue, "lr", runs=4)
    seen: list[api.Progress] = []
    last = api.wait(job.id, timeout=180, on_progress=seen.append)
    assert last.finished and last.count("done") == 4 and last.completed == last.total == 4
    assert seen[-1] == last and all(not p.finished for p in seen[:-1])
    assert api.progress(job.id) == last

    counts = api.gene_counts(job=job.id, top=10)
    assert counts.attrs == {"runs": 4, "scope": f"job {job.id}"}
    found = api.gene_stability(job=job.id, top=10, curve=True)
    assert (found.runs, found.fits, found.scope) == (4, 4, f"job {job.id}")
    assert list(found.table["selection"]) == ["top 10", "non-zero importance"]
    assert found.curve is not None and found.curve["fits"].max() == 4
    stable = api.stable_genes(job=job.id, pi=0.6, top=10)
    assert stable.summary["scope"] == f"job {job.id}"
    assert set(stable.genes["gene"]) <= set(counts["gene"])
    compared = api.compare_genes(job.id, f"{tissue}:lr", top=10)
    assert compared["a"] == f"job {job.id}"

    # Nothing failed, so nothing to send again; a finished job is not cancelled.
    assert job.retry() == 0
    assert api.cancel_job(job.id)["finished"]
    assert job.id in set(api.jobs()["job_id"])
