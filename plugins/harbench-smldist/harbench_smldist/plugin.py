"""Entry point of the ``harbench`` plugin group: registers the method and its report summary."""

from __future__ import annotations

from harbench import hookimpl

from .summary import summarize  # torch-free: `harbench claims` loads this module and no method


@hookimpl
def harbench_register_methods(register):
    from .method import SMLDist  # torch: imported only when the methods are registered

    register(SMLDist)


@hookimpl
def harbench_report_summary(rows):
    return summarize(rows)
