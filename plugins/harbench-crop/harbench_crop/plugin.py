"""Entry point of the ``harbench`` group: registers the method and its paper-style report summary."""

from __future__ import annotations

from harbench import hookimpl

from .method import CRoP
from .summary import crop_summary


@hookimpl
def harbench_register_methods(register):
    register(CRoP)


@hookimpl
def harbench_report_summary(rows):
    return crop_summary(rows)
