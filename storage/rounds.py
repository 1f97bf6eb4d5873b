"""Importance jobs that run in rounds until their answer is stable (`--until-stable`).

Such a job starts with one round of runs. Whenever a result leaves it with at
most half a round pending, the writer, in the same transaction, evaluates the
rule of `storage.stability.stopping_decision` on the fits finished so far:

    a fit selects its top K genes; stop when at least `min_runs` fits are in
    and either every gene's Wilson 95% interval for its selection frequency
    lies wholly above or below `pi`, or the K most often selected genes are
    those of the previous evaluation and the Nogueira stability interval of
    the selections is narrower than `tolerance`.

If the rule holds, or `max_runs` runs are planned, no round is added and the
job's remaining runs finish; otherwise a new round of unused seeds is added at
once, so the workers never wait for a round to end. The rule, the rounds and
every evaluation's reason are kept in the job's params (`until_stable`), which
`genejobs jobs show` prints.
"""

from __future__ import annotations

import json

from genejobs.storage import queries, selection, stability
from genejobs.storage.db import first
from genejobs.storage.schema import RunStatus
from genejobs.storage.seeds import draw_seeds

DEFAULTS = {"pi": 0.6, "top": 20, "tolerance": 0.05, "min_runs": 100, "max_runs": 2000}


def rule(values: dict, round_size: int) -> dict:
    """The rule a job starts with: the given values over the defaults, and its state."""
    chosen = {**DEFAULTS, **{k: v for k, v in values.items() if v is not None}}
    return {
        **chosen,
        "round_size": round_size,
        "rounds": 1,
        "previous_top": None,
        "stopped": False,
        "reason": "first round running",
    }


def advance(store, job_ids: set[str]) -> dict[str, list[int]]:
    """Evaluate the until-stable jobs among `job_ids`; return the seeds of the rounds added."""
    con = store.con
    added: dict[str, list[int]] = {}
    # Jobs without rounds, or whose rounds stopped, stay so: they are not read again.
    settled = store.settled_rounds
    for job_id in sorted(job_ids - settled):
        row = first(
            con.execute(
                "SELECT params, cancelled, dataset_id, model FROM jobs "
                "WHERE job_id = ? AND kind = 'importance'",
                [job_id],
            ).fetchall()
        )
        if row is None:
            continue
        params, cancelled, dataset_id, model = json.loads(row[0]), row[1], row[2], row[3]
        state = params.get("until_stable")
        if not state or state["stopped"]:
            settled.add(job_id)
            continue
        if cancelled:
            continue
        pending, planned = first(
            con.execute(
                "SELECT count(*) FILTER (WHERE status = ?), count(*) FROM runs WHERE job_id = ?",
                [RunStatus.PENDING.value, job_id],
            ).fetchall()
        )
        if pending > state["round_size"] // 2:
            continue
        decision = _decide(con, job_id, dataset_id, state)
        state["previous_top"] = sorted(decision.top)
        state["evaluations"] = state.get("evaluations", 0) + 1
        if decision.stop:
            state.update(stopped=True, reason=f"stopped: {decision.reason}")
        elif planned >= state["max_runs"]:
            state.update(
                stopped=True,
                reason=f"reached --max-runs {state['max_runs']} before the rule held: "
                f"{decision.reason}",
            )
        else:
            size = min(state["round_size"], state["max_runs"] - planned)
            found = queries.dataset(con, params["dataset"])
            seeds = draw_seeds(con, found, model, size, params["seed_max"])
            store.add_runs(job_id, dataset_id, model, seeds, params["test_size"])
            state["rounds"] += 1
            state["reason"] = f"round {state['rounds']} added: {decision.reason}"
            added[job_id] = seeds
        params["until_stable"] = state
        params["runs"] = planned + len(added.get(job_id, []))
        con.execute(
            "UPDATE jobs SET params = ?, n_runs = ? WHERE job_id = ?",
            [json.dumps(params), params["runs"], job_id],
        )
    return added


def _decide(con, job_id: str, dataset_id: str, state: dict) -> stability.Decision:
    where = queries.Scope("job_id = ?", (job_id,), f"job {job_id}", dataset_id)
    found = selection.selections(con, where, state["top"])
    if found.fits < 2:
        return stability.Decision(False, f"only {found.fits} fits so far", frozenset())
    return stability.stopping_decision(
        counts=found.counts,
        runs=found.fits,
        threshold=state["pi"],
        top_k=state["top"],
        previous_top=state["previous_top"],
        stability=stability.nogueira(found.matrix),
        tolerance=state["tolerance"],
        min_runs=state["min_runs"],
    )
