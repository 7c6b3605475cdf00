"""Entry point of the ``harbench`` plugin group: registers the method and its paper-style report summary."""

from __future__ import annotations

from typing import Any

from harbench import hookimpl

from .method import TBFT, TBFTPreAct
from .summary import summarize


@hookimpl
def harbench_register_methods(register):
    register(TBFT)
    register(TBFTPreAct)


@hookimpl
def harbench_report_summary(rows: list[dict[str, Any]]):
    return summarize(rows)
