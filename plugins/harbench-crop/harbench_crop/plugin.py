"""Entry point of the ``harbench`` group: registers the method, its ΔG baseline, its scores and its summary."""

from __future__ import annotations

from harbench import hookimpl

from .conventional import CRoPFinetune
from .method import CRoP
from .metrics import BalancedAccuracySeen, BalancedAccuracyUnseen
from .summary import crop_summary


@hookimpl
def harbench_register_methods(register):
    register(CRoP)
    register(CRoPFinetune)


@hookimpl
def harbench_register_metrics(register):
    register(BalancedAccuracySeen)
    register(BalancedAccuracyUnseen)


@hookimpl
def harbench_report_summary(rows):
    return crop_summary(rows)
