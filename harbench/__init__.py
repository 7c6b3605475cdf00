"""harbench: benchmark on-device personalization of human-sensing models.

This module is the whole public API for plugins: hook markers, the four plugin interfaces, the data containers,
and the shared building blocks (backbones, training loop, metrics helpers). Nothing else of the core is a
plugin's business.

Names are imported on first use (PEP 562): ``import harbench`` costs nothing, so the command line's reading
commands (``report``, ``export``, ``compare``, ``runs``, ``list``, ``plugins``, ``--help``) never import torch;
``from harbench import Method`` imports what ``Method`` needs, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

__version__ = "0.1.0"  # first: the run layer reads it while this module is still importing

if TYPE_CHECKING:  # the eager imports, for type checkers and editors
    from .api import (
        AdaptFacts,
        AdaptResult,
        ContextInfo,
        Dataset,
        DatasetInfo,
        Hardware,
        HardwareInfo,
        InferenceCost,
        JobOutputs,
        Method,
        MethodContext,
        MethodState,
        Metric,
        PhaseCost,
        Splits,
        TargetSplit,
        UserData,
        Windows,
    )
    from .device_estimate import CostEstimate, estimate
    from .hookspecs import hookimpl
    from .measure.memory import LiveBytes
    from .models import Backbone, MobileNet1d, ResNet1d, build_backbone, count_params
    from .params import Param, ParamError
    from .records import JobRecord, JobSpec, RunSummary
    from .stats import (
        Claim,
        ClaimResult,
        Family,
        PaperClaim,
        Unit,
        Verdict,
        bootstrap_interval,
        holm,
        judge,
        judge_family,
        paired,
        per_person,
        per_unit_mean,
        per_user_mean,
        ratio,
        signed_rank_p,
    )
    from .training import (
        FitReport,
        accuracy,
        cross_entropy,
        fit,
        flops_per_window,
        frozen_copy,
        macro_f1,
        make_optimizer,
        predict,
        split_train_val,
    )

_WHERE: dict[str, str] = {
    **dict.fromkeys(["AdaptFacts", "AdaptResult", "ContextInfo", "Dataset", "DatasetInfo", "Hardware", "HardwareInfo",
                     "InferenceCost", "JobOutputs", "Method", "MethodContext", "MethodState", "Metric", "PhaseCost",
                     "Splits", "TargetSplit", "UserData", "Windows"], ".api"),
    "hookimpl": ".hookspecs",
    **dict.fromkeys(["CostEstimate", "estimate"], ".device_estimate"),
    **dict.fromkeys(["Backbone", "MobileNet1d", "ResNet1d", "build_backbone", "count_params"], ".models"),
    **dict.fromkeys(["Param", "ParamError"], ".params"),
    "LiveBytes": ".measure.memory",
    **dict.fromkeys(["JobRecord", "JobSpec", "RunSummary"], ".records"),
    **dict.fromkeys(["Claim", "ClaimResult", "Family", "PaperClaim", "Unit", "Verdict", "bootstrap_interval", "holm", "judge",
                     "judge_family", "paired", "per_person", "per_unit_mean", "per_user_mean", "ratio",
                     "signed_rank_p"], ".stats"),
    **dict.fromkeys(["report", "figures"], ".results.views"),
    **dict.fromkeys(["FitReport", "accuracy", "cross_entropy", "fit", "flops_per_window", "frozen_copy", "macro_f1",
                     "make_optimizer", "predict", "split_train_val"], ".training"),
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)


def load(run: str | int = "latest", results: str = "results"):
    """A run's jobs as a pandas DataFrame, one row per job with the export columns (needs the pandas extra);
    ``results`` is a results store's folder or a published bundle."""
    from .results.source import load_frame  # lazy: plugins importing harbench never pay for pandas or the store

    return load_frame(run, results)


__all__ = [
    "AdaptFacts", "AdaptResult", "Backbone", "Claim", "ClaimResult", "CostEstimate", "estimate", "Family", "PaperClaim", "Unit", "Verdict", "bootstrap_interval",
    "holm", "judge", "judge_family", "paired", "per_person", "per_unit_mean", "per_user_mean", "ratio", "signed_rank_p", "ContextInfo", "Dataset", "DatasetInfo", "FitReport", "Hardware",
    "HardwareInfo", "InferenceCost", "JobOutputs", "JobRecord", "JobSpec", "LiveBytes", "Method", "MethodContext", "MethodState",
    "Metric", "MobileNet1d", "Param", "ParamError", "PhaseCost", "ResNet1d", "RunSummary", "Splits", "TargetSplit",
    "UserData", "Windows", "accuracy", "build_backbone", "count_params", "cross_entropy", "fit", "flops_per_window",
    "figures", "frozen_copy", "hookimpl", "lazy_exports", "load", "macro_f1", "report", "make_optimizer", "predict", "split_train_val",
]

