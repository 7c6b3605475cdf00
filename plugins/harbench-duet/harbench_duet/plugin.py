"""Entry point of the ``harbench-duet`` distribution: registers the method and the report summary."""

from __future__ import annotations

from harbench import hookimpl

from .method import Duet
from .summary import duet_summary


@hookimpl
def harbench_register_methods(register):
    register(Duet)


@hookimpl
def harbench_report_summary(rows):
    return duet_summary(rows)
