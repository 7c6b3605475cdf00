"""Entry point of the ``harbench`` group: registers the method, its ΔG baseline, its scores and its summary."""

from __future__ import annotations

from harbench import hookimpl

from .summary import crop_summary  # torch-free: `harbench claims` loads this module and no method

# The method and metric classes are imported in their hooks: they need torch, which a report summary does not.


@hookimpl
def harbench_register_methods(register):
    from .conventional import CRoPFinetune
    from .method import CRoP

    register(CRoP)
    register(CRoPFinetune)


@hookimpl
def harbench_register_metrics(register):
    from .metrics import BalancedAccuracySeen, BalancedAccuracyUnseen

    register(BalancedAccuracySeen)
    register(BalancedAccuracyUnseen)


@hookimpl
def harbench_report_summary(rows):
    return crop_summary(rows)
