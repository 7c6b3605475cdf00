"""The hooks a harbench plugin may implement. One registration hook per kind, in the style of simonw/llm."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("harbench")
hookimpl = pluggy.HookimplMarker("harbench")


@hookspec
def harbench_register_datasets(register):
    """Call ``register(DatasetClass)`` for each dataset the plugin provides."""


@hookspec
def harbench_register_methods(register):
    """Call ``register(MethodClass)`` for each personalization method the plugin provides."""


@hookspec
def harbench_register_hardware(register):
    """Call ``register(HardwareClass)`` for each hardware target the plugin provides."""


@hookspec
def harbench_register_metrics(register):
    """Call ``register(MetricClass)`` for each metric the plugin provides."""


@hookspec
def harbench_skip_job(job):
    """Return a reason string to skip ``job`` (a :class:`harbench.JobSpec`), or ``None`` to allow it."""


@hookspec
def harbench_job_finished(record):
    """Called with each job's :class:`harbench.JobRecord` right after it is committed to the store."""


@hookspec
def harbench_run_finished(run):
    """Called with the :class:`harbench.RunSummary` when a run ends."""


@hookspec
def harbench_report_summary(rows):
    """Return a paper-style summary of a run, or ``None`` when ``rows`` lack its ingredients.

    ``rows`` is the run's export: a list of dicts, one per job, with the export columns (``method``,
    ``method_params``, ``variant``, ``user``, ``seed``, ``hardware``, ``status``, metric columns, and ``facts``,
    the method's own AdaptFacts.extra). Return ``{"title": str, "headers": [...], "rows": [[...], ...],
    "note": str}``; ``harbench report`` and ``harbench claims`` print one table per non-None answer.

    Reading commands call it with only the plugin's entry-point module imported (its registration hooks are not
    called; ``harbench.plugins.hooks_only``), and only when the rows use a dataset, method or hardware target of a
    plugin with this hook (or a plugin with it registers none): it must depend on the rows and its own code only.
    Answers are cached by the rows.
    """


@hookspec
def harbench_register_commands(cli):
    """Add click commands to the ``harbench`` command group (e.g. ``harbench calibrate``)."""
