"""harbench's one home for statistics: estimates, intervals, tests, multiplicity, Pareto fronts and verdicts.

* :mod:`.describe` — means, standard deviations, flat Student-t intervals, worst decile, harm rate;
* :mod:`.intervals` — the interval of a mean over users and seeds (every view's cells and every verdict use it);
* :mod:`.cells` — a table cell's figures (mean, spread, interval), one or a column at once;
* :mod:`.significance` — one-sided t tests, TOST, Wilcoxon;
* :mod:`.multiplicity` — Holm over a declared family;
* :mod:`.power` — users needed to decide a claim;
* :mod:`.pareto` — trade-off fronts;
* :mod:`.units` — per-unit (user × seed) values from rows;
* :mod:`.verdicts` — claims, families and verdicts;
* :mod:`.simulate` — the measured coverage of the interval (``python -m harbench.stats.simulate --markdown``).

Names are imported on first use, so ``import harbench.stats`` does not import scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cells import cell_estimate, cell_estimates
    from .describe import (
        Estimate,
        estimate,
        estimate_array,
        finite,
        harm_rate,
        mean_std,
        means_by,
        stdev,
        t_quantile,
        worst_decile,
    )
    from .intervals import (
        MIN_SEEDS,
        MIN_USERS,
        Interval,
        StatsInputError,
        Unit,
        bootstrap_interval,
        grid_intervals,
        interval,
    )
    from .multiplicity import holm, holm_levels
    from .pareto import pareto_front
    from .power import users_for_power
    from .samples import Stats
    from .significance import Paired, signed_rank_p, tost_p, wilcoxon
    from .units import paired, per_person, per_unit_mean, per_user_mean, ratio
    from .verdicts import Claim, ClaimResult, Family, PaperClaim, Verdict, judge, judge_family

_WHERE: dict[str, str] = {
    **dict.fromkeys(["Estimate", "estimate", "estimate_array", "finite", "harm_rate", "mean_std", "means_by", "stdev",
                     "t_quantile", "worst_decile"], ".describe"),
    **dict.fromkeys(["MIN_SEEDS", "MIN_USERS", "Interval", "StatsInputError", "Unit", "bootstrap_interval",
                     "grid_intervals", "interval"], ".intervals"),
    **dict.fromkeys(["cell_estimate", "cell_estimates"], ".cells"),
    **dict.fromkeys(["holm", "holm_levels"], ".multiplicity"),
    "pareto_front": ".pareto",
    "users_for_power": ".power",
    "Stats": ".samples",
    **dict.fromkeys(["Paired", "signed_rank_p", "tost_p", "wilcoxon"], ".significance"),
    **dict.fromkeys(["paired", "per_person", "per_unit_mean", "per_user_mean", "ratio"], ".units"),
    **dict.fromkeys(["Claim", "ClaimResult", "Family", "PaperClaim", "Verdict", "judge", "judge_family"],
                   ".verdicts"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'harbench.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "Claim", "ClaimResult", "Estimate", "Family", "Interval", "MIN_SEEDS", "MIN_USERS", "Paired", "Stats",
    "StatsInputError", "Unit", "Verdict", "bootstrap_interval", "cell_estimate", "cell_estimates", "estimate", "estimate_array",
    "finite", "grid_intervals", "harm_rate", "holm", "holm_levels", "interval", "judge", "judge_family", "mean_std",
    "means_by", "paired", "PaperClaim", "pareto_front", "per_person", "per_unit_mean", "per_user_mean", "ratio", "stdev", "t_quantile",
    "signed_rank_p", "tost_p", "users_for_power", "wilcoxon", "worst_decile",
]
