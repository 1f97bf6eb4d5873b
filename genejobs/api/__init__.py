"""The front door: every action of the CLI and of notebooks, as functions over a running stack.

The CLI parses and prints; what it asks for lives here, once: checking the
arguments, the requests to the writer, the queries of the results file, and
waiting on a job. One module per noun:

    _reading     reading(): a read-only connection that takes turns with the writer
    _checks      InvalidOption: bad input that names the option it came by
    _waiting     Progress, progress(), wait(): a job's unit counts and the one waiter
    _jobs        Job, job(), jobs(), cancel_job(), retry_job(), delete_job()
    _datasets    add_dataset(), datasets(), demo_dataset(), synth_l2g(), train_l2g_models()
    _importance  plan_importance(), importance()
    _genes       gene_counts(), gene_stability(), stable_genes(), compare_genes(), filter_genes()
    _search      plan_search(), leaderboard()
    _evaluate    plan_evaluate(), holdout_tests(), accuracy_spread(), confusion_total()
    _models      models(), model(), finalize(), wait_saved(), model_runs(), predict()
    _shap        shap_jobs(), shap_job(), shap_global(), shap_groups(), shap_beeswarm(),
                 shap_local(), shap_presence(), shap_views()
    _shap_compare  shap_pair(), shap_compare(), shap_move(), shap_beeswarm_bins(),
                 shap_dependence_bins(): side by side, and plots from every row
    _shap_plan   plan_shap(): a SHAP job's input checked, written to the data dir, planned
    _sql         sql(), tables()
    _stack       up(), down(), status(): the local stack

Every function reads the stack named by GENEJOBS_HOME / GENEJOBS_REDIS_URL and
raises `genejobs.GenejobsError` (or a subclass) with the CLI's one-line message.

Names load on first use (PEP 562), and the modules import pandas, DuckDB and
Celery inside their functions, so `genejobs --help` and `genejobs status`,
which reach this package, stay cheap.
"""

from __future__ import annotations

import importlib

# Each public name and the module (of this package) that defines it.
_MODULES = {
    "reading": "_reading",
    "InvalidOption": "_checks",
    "Progress": "_waiting",
    "progress": "_waiting",
    "wait": "_waiting",
    "Job": "_jobs",
    "job": "_jobs",
    "jobs": "_jobs",
    "cancel_job": "_jobs",
    "retry_job": "_jobs",
    "delete_job": "_jobs",
    "IMPUTERS": "_datasets",
    "add_dataset": "_datasets",
    "datasets": "_datasets",
    "demo_dataset": "_datasets",
    "synth_l2g": "_datasets",
    "train_l2g_models": "_datasets",
    "plan_importance": "_importance",
    "importance": "_importance",
    "gene_counts": "_genes",
    "Stability": "_genes",
    "gene_stability": "_genes",
    "StableGenes": "_genes",
    "stable_genes": "_genes",
    "compare_genes": "_genes",
    "filter_genes": "_genes",
    "plan_search": "_search",
    "leaderboard": "_search",
    "plan_evaluate": "_evaluate",
    "holdout_tests": "_evaluate",
    "accuracy_spread": "_evaluate",
    "confusion_total": "_evaluate",
    "models": "_models",
    "model": "_models",
    "finalize": "_models",
    "wait_saved": "_models",
    "model_runs": "_models",
    "predict": "_models",
    "shap_jobs": "_shap",
    "shap_job": "_shap",
    "shap_global": "_shap",
    "shap_groups": "_shap",
    "shap_beeswarm": "_shap",
    "shap_local": "_shap",
    "shap_presence": "_shap",
    "ShapViews": "_shap",
    "shap_views": "_shap",
    "shap_pair": "_shap_compare",
    "shap_compare": "_shap_compare",
    "shap_move": "_shap_compare",
    "shap_beeswarm_bins": "_shap_compare",
    "shap_dependence_bins": "_shap_compare",
    "plan_shap": "_shap_plan",
    "sql": "_sql",
    "tables": "_sql",
    "up": "_stack",
    "down": "_stack",
    "status": "_stack",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'genejobs.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"genejobs.api.{module}"), name)
    globals()[name] = value  # found here from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
