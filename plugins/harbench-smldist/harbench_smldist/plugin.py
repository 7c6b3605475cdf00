"""Entry point of the ``harbench`` plugin group: registers the method and its report summary."""

from __future__ import annotations

from harbench import hookimpl

from .method import SMLDist
from .summary import summarize


@hookimpl
def harbench_register_methods(register):
    register(SMLDist)


@hookimpl
def harbench_report_summary(rows):
    return summarize(rows)
