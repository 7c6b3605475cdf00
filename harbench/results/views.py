"""A run's views from Python, as the reading commands print them: for run hooks (a tracker plugin logging the
decision view and the figures) and notebooks. Thin: the commands' own builders, no second implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .source import open_results


def suite_budgets(run: object) -> list[str]:
    """The budgets the run's suite declared (``budgets:``): the default of ``report``'s ``--budget``."""
    import yaml

    try:
        doc = yaml.safe_load(dict(run).get("suite_yaml") or "") or {}  # type: ignore[call-overload]
    except yaml.YAMLError:
        return []
    found = doc.get("budgets") if isinstance(doc, dict) else None
    return [str(b) for b in found] if isinstance(found, list) else []


def report(run: str | int = "latest", results: str | Path = "results", fmt: str = "github") -> str:
    """The text ``harbench report RUN --results RESULTS --format FMT`` prints (the decision view first); ``results``
    is a results folder or a published bundle. ``harbench.report``: for run hooks and notebooks."""
    from .report import ReportOptions, build_report

    source = open_results(results)
    r = source.resolve_run(run)
    options = ReportOptions.parse(budgets=suite_budgets(r), summaries=fmt not in ("json", "csv"))
    return build_report(r, source.job_rows(int(r["id"])), options).text(fmt)


def figures(run: str | int = "latest", results: str | Path = "results", output: str | Path = "figures",
            formats: Sequence[str] = ("png",)) -> list[Path]:
    """``harbench plot RUN --results RESULTS -o OUTPUT``: the figures written (needs matplotlib).
    ``harbench.figures``: for run hooks and notebooks."""
    from .plots import write_figures

    source = open_results(results)
    Path(output).mkdir(parents=True, exist_ok=True)
    return write_figures(source.job_rows(int(source.resolve_run(run)["id"])), output, list(formats))
