"""The ``harbench compare`` command's body: read both runs (stores or bundles), compare them, print the table and
the one-line summary, and decide the exit status of the gate."""

from __future__ import annotations

import click


def compare_command(base: str, new: str, results: str, base_results: str | None, fail_on: str, allow_missing: bool,
                    match: str, metrics: str | None, alpha: float, fmt: str) -> int:
    """The exit status: 1 on a regression beyond ``--fail-on`` or, under ``--fail-on``, on cells only one run has
    (nothing was compared for them) unless ``allow_missing``; else 0."""
    from .results.compare import compare_runs, comparison_table, parse_fail_on
    from .results.source import open_results
    from .results.tables import render

    thresholds = parse_fail_on(fail_on)
    base_store, new_store = open_results(base_results or results), open_results(results)
    b_id, n_id = int(base_store.resolve_run(base)["id"]), int(new_store.resolve_run(new)["id"])
    result = compare_runs(
        base_store.job_rows(b_id), new_store.job_rows(n_id), thresholds,
        metrics=[m.strip() for m in metrics.split(",")] if metrics else None,
        base_samples=base_store.samples(b_id, "latency_s"), new_samples=new_store.samples(n_id, "latency_s"),
        base_repeats={t.metric: list(base_store.samples(b_id, t.metric)) for t in thresholds},
        new_repeats={t.metric: list(new_store.samples(n_id, t.metric)) for t in thresholds}, alpha=alpha,
        match=match)
    click.echo(render(*comparison_table(result), fmt, numparse=False))
    click.echo(result.summary(), err=fmt != "github")
    if result.regressions:
        click.echo(f"{len(result.regressions)} regression(s) beyond --fail-on", err=True)
        return 1
    if thresholds and result.unmatched and not allow_missing:
        click.echo(f"{result.cells('missing') + result.cells('new')} cell(s) are in only one run, so --fail-on "
                   "cannot pass them: --match method pairs a changed configuration, --allow-missing accepts it",
                   err=True)
        return 1
    if fmt == "github":
        click.echo(f"no regression beyond {fail_on!r}" if thresholds else "no --fail-on thresholds given")
    return 0
