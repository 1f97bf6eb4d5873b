"""`genejobs serve`: the explorer, a read-only web page over the results.

Pages (pages.py, shap_pages.py, compare_pages.py; their templates in templates/):

- `/`: every job of every kind, with its units, refreshed every 2 s;
- `/job/<id>`: an importance job's gene counts (Wilson intervals) and
  stability; a search's leaderboard and fold scores; a SHAP job's models (linked
  to the jobs that made them), global contribution (overall, per model with its
  partition values, per class by name) as bars beside a beeswarm, feature
  groups, contribution against presence with one feature's dependence
  (`?feature=`), a search box that finds predictions by any id column, and
  the other SHAP jobs over the same id columns to compare it with;
  importance jobs and searches link to the SHAP jobs that explain their models;
  it takes `?top=` (importance), `?q=`, `?feature=`, `?class=`, `?by=model` (SHAP);
- `/scope/<dataset>/<model>`: every importance job on a dataset and model
  pooled, and the reduced datasets made from them;
- `/shap/<id>/row/<row_id>`: one prediction's contributions (waterfall with
  values) beside the other candidates that share its key but the last part
  (the genes of one study and locus in the L2G layout), each linked to
- `/job/<id>/pair?a=<row>&b=<row>`: two predictions side by side, per feature and
  per group SHAP of A minus SHAP of B, adding up to their outputs' difference;
- `/compare?a=<job>&b=<job>[&row=<row>]`: two SHAP jobs over the same rows (two
  model releases): the rows that moved most, both global rankings, the mean
  move per feature and group; with `row`, what moved one prediction.

The beeswarm and the dependence plot count every prediction, binned
(storage.shap_bins); a SHAP job's aggregates are kept (summaries.py).

Plots are plotly.js figures (figures.py, shap_figures.py, bin_figures.py,
compare_figures.py): hovering a bar, a dot or a bin shows its gene or feature
and value. The server (app.py) is imported when the command runs:
`genejobs serve --help` stays light.
"""

from __future__ import annotations

import click


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=5556, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def serve(port, address):
    """Serve the explorer: jobs with live progress, gene counts, searches, SHAP views."""
    import asyncio

    from genejobs.cli.explorer.app import make_app, start_warming

    async def forever():
        make_app().listen(port, address=address)
        start_warming()
        click.echo(f"explorer at http://{address}:{port}/", err=True)
        await asyncio.Event().wait()

    asyncio.run(forever())


COMMANDS = [serve]
