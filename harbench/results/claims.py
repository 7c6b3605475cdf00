"""Moved to :mod:`harbench.stats` (verdicts, intervals, per-unit values); these names stay importable from here."""

from __future__ import annotations

from ..stats.intervals import MIN_USERS, bootstrap_interval
from ..stats.units import paired, per_user_mean
from ..stats.verdicts import ClaimResult, judge
from ..stats.verdicts import Outcome as Verdict
from ..stats.verdicts import Verdict as _Verdict

__all__ = ["MIN_USERS", "ClaimResult", "Verdict", "_Verdict", "bootstrap_interval", "judge", "paired",
           "per_user_mean"]
