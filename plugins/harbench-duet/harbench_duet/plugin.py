"""Entry point of the ``harbench-duet`` distribution: registers the method and the report summary."""

from __future__ import annotations

from harbench import hookimpl

from .summary import duet_summary  # torch-free: `harbench claims` loads this module and no method


@hookimpl
def harbench_register_methods(register):
    from .method import Duet  # torch: imported only when the methods are registered

    register(Duet)


@hookimpl
def harbench_report_summary(rows):
    return duet_summary(rows)
