"""The writer's requests: each applied in a transaction of its own, then acted on.

`Requests.apply` runs inside the writer's transaction and changes only the
results file (through `storage.store.Store`, with the request's frozen
message); `Requests.after` runs once the change is committed and does what
lives outside the file: send the units a plan or a retry created, tell tasks
of a cancelled job, remove a deleted job's files, publish progress. A request
applied twice (a writer that died before dropping it) finds its plan made and
sends nothing new.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING

from genejobs import contract
from genejobs.errors import GenejobsError
from genejobs.storage import job_control, units
from genejobs.storage.schema import RunStatus
from genejobs.units import JobKind
from genejobs.worker import inbox

if TYPE_CHECKING:
    from genejobs.worker.writer import Writer

log = logging.getLogger("genejobs.writer")

# Where a job's units are counted for its progress: seeded runs, SHAP shards,
# or a search's folds and an evaluation's tests (the search store counts those).
RUNS, SHARDS, MODELS = "runs", "shap_shards", "models"
KIND_COUNTS = {
    JobKind.IMPORTANCE: RUNS,
    JobKind.SEARCH: MODELS,
    JobKind.EVALUATE: MODELS,
    JobKind.SHAP: SHARDS,
}
# The requests that create a job, and its kind.
PLANS = {
    contract.PlanImportance: JobKind.IMPORTANCE,
    contract.PlanSearch: JobKind.SEARCH,
    contract.PlanEvaluate: JobKind.EVALUATE,
    contract.PlanShap: JobKind.SHAP,
}
# The requests that add a dataset (the views publish the datasets table after them).
DATASET_OPS = {contract.RegisterDataset.op, contract.FilterDataset.op}


class Requests:
    """Apply the writer's requests and act on their replies (see the module doc)."""

    def __init__(self, writer: Writer):
        self.writer = writer

    # in the transaction ---------------------------------------------------------

    def apply(self, request: contract.Message) -> dict:
        """Change the results file as `request` asks; return the reply."""
        store, con = self.writer.store, self.writer.con
        match request:
            case contract.RegisterDataset():
                return store.datasets.register_dataset(request)
            case contract.FilterDataset():
                return store.datasets.filter_dataset(request)
            case contract.PlanImportance():
                return store.importance.plan_importance(request)
            case contract.PlanSearch():
                return store.search.plan_search(request)
            case contract.PlanEvaluate():
                return store.evaluation.plan_evaluate(request)
            case contract.PlanShap():
                return store.shap.plan(request)
            case contract.FinalizeModel():
                return store.search.request_finalize(request)
            case contract.CancelJob():
                reply = job_control.cancel(con, request)
                if reply["kind"] == JobKind.SHAP.value:
                    # Shards already computed wait in the spool: with nothing left
                    # to compute they go in now.
                    store.shap.ingest_due(request.job_id)
                return reply
            case contract.RetryJob():
                return job_control.retry(con, request)
            case contract.DeleteJob():
                return job_control.delete(con, request)
            case contract.Ping():
                return {"writer": self.writer.identity}
        raise GenejobsError(f"the writer does not know the operation '{request.op}'")

    # after the commit -----------------------------------------------------------

    def after(self, request: contract.Message, reply: dict) -> None:
        """Send the units a request created, tell tasks of a cancelled job, publish progress."""
        job_id = reply.get("job_id")
        if job_id is None:
            return
        writer = self.writer
        dispatcher, con = writer.dispatcher, writer.con
        match request:
            case contract.FinalizeModel():
                if reply["artifact_path"] is None:
                    wanted = f"{reply['model_id']}-finalize"
                    found = [u for u in units.finalize_steps(con, {job_id}) if u.unit_id == wanted]
                    dispatcher.resend(found)
                return
            case contract.PlanImportance() if reply.get("created"):
                # Made a chunk at a time as they go: memory does not grow with the job.
                seeds, make = units.planned_runs_maker(con, reply)
                reply["sent"] = dispatcher.send_later(job_id, seeds, make)
                if not reply["rounds"]:
                    # Committed without rounds: its results need not look for any.
                    writer.store.importance.settled_rounds.add(job_id)
                # A new job's runs are all pending: its counts need no query.
                counts = dict.fromkeys((s.value for s in RunStatus), 0)
                counts.update(pending=len(seeds), total=len(seeds))
                inbox.publish_progress(job_id, counts)
                return
            case (
                contract.PlanImportance()
                | contract.PlanSearch()
                | contract.PlanEvaluate()
                | contract.PlanShap()
            ):
                # A new job, or a plan applied again: its pending units, unless sent already.
                found = units.pending(con, {job_id}, PLANS[type(request)])
                reply["sent"] = dispatcher.send_new(found)
            case contract.RetryJob():
                if reply.pop("uncancelled"):
                    # Else its tasks would answer "cancelled" at once, and the sweep
                    # would send them again for ever.
                    inbox.clear_cancelled(job_id)
                wanted = set(reply.pop("unit_ids"))
                found = units.pending(con, {job_id}, JobKind(reply["kind"]))
                reply["sent"] = dispatcher.resend([u for u in found if u.unit_id in wanted])
            case contract.CancelJob():
                if reply["finished"]:
                    return
                inbox.mark_cancelled(job_id)
                # Units not sent yet stay here: none of them goes out after the cancel.
                reply["unsent"] = dispatcher.drop(job_id)
            case contract.DeleteJob():
                dispatcher.drop(job_id)
                writer.store.importance.settled_rounds.discard(job_id)
                inbox.forget_job(job_id)
                self._remove_files(reply.pop("files"))
                if writer.views is not None:
                    writer.views.forget(job_id)
                return
        kind = PLANS.get(type(request)) or reply.get("kind")
        if kind is not None:
            # Progress before the reply: whoever gets it may start polling at once.
            writer.publish({job_id: KIND_COUNTS[JobKind(kind)]})

    def _remove_files(self, paths: list[str]) -> None:
        """Remove a deleted job's files (relative to the data dir), after its commit; a path
        outside the data dir is left alone."""
        home = self.writer.config.home.resolve()
        for name in paths:
            path = (home / name).resolve()
            if not path.is_relative_to(home) or path == home:
                log.warning("not removing %s: outside the data dir", path)
                continue
            try:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            except OSError as exc:  # the rows are gone; a file left behind is only space
                log.warning("could not remove %s: %s", path, exc)
