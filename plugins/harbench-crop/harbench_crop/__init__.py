"""CRoP as a harbench method plugin: context-robust static personalization by tolerated pruning and model mixing.

Kaur et al., "CRoP: Context-wise Robust Static Human-Sensing Personalization", IMWUT 9(2) 2025, arXiv 2409.17994.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harbench import lazy_exports

if TYPE_CHECKING:  # the eager imports, for type checkers and editors
    from .conventional import CRoPFinetune
    from .diagnostics import StageGIP, gip, gip_by_stage
    from .layers import classifier, prunable_weights, regularised_weights
    from .method import CRoP, random_split
    from .metrics import BalancedAccuracySeen, BalancedAccuracyUnseen
    from .mixing import mix_with_generic
    from .objective import L1Objective
    from .paper import CLAIMS, PaperClaim
    from .pipeline import CropConfig, CropRun, PhaseReport, run_conventional, run_crop, train_phase, validation_score
    from .pruning import (
                          PruneOutcome,
                          PruneStep,
                          apply_masks,
                          erk_layer_amount,
                          erk_masks,
                          global_masks,
                          magnitude_masks,
                          tolerated_prune,
    )
    from .scores import balanced_accuracy
    from .summary import crop_claims, crop_detail, crop_summary, scenario_verdict

# Imported on first use: the report summary (and so `harbench claims`) must not import torch.
_WHERE: dict[str, str] = {
    "CRoPFinetune": ".conventional",
    **dict.fromkeys(["StageGIP", "gip", "gip_by_stage"], ".diagnostics"),
    **dict.fromkeys(["classifier", "prunable_weights", "regularised_weights"], ".layers"),
    **dict.fromkeys(["CRoP", "random_split"], ".method"),
    **dict.fromkeys(["BalancedAccuracySeen", "BalancedAccuracyUnseen"], ".metrics"),
    "mix_with_generic": ".mixing",
    "L1Objective": ".objective",
    **dict.fromkeys(["CLAIMS", "PaperClaim"], ".paper"),
    **dict.fromkeys(["CropConfig", "CropRun", "PhaseReport", "run_conventional", "run_crop", "train_phase", "validation_score"], ".pipeline"),
    **dict.fromkeys(["PruneOutcome", "PruneStep", "apply_masks", "erk_layer_amount", "erk_masks", "global_masks", "magnitude_masks", "tolerated_prune"], ".pruning"),
    "balanced_accuracy": ".scores",
    **dict.fromkeys(["crop_claims", "crop_detail", "crop_summary", "scenario_verdict"], ".summary"),
}
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "CLAIMS", "BalancedAccuracySeen", "BalancedAccuracyUnseen", "CRoPFinetune", "PaperClaim", "run_conventional",
    "CRoP", "CropConfig", "CropRun", "L1Objective", "PhaseReport", "PruneOutcome", "PruneStep", "StageGIP",
    "apply_masks", "balanced_accuracy", "classifier", "crop_claims", "crop_detail", "crop_summary", "scenario_verdict", "erk_layer_amount", "erk_masks", "gip",
    "gip_by_stage", "global_masks", "magnitude_masks", "mix_with_generic", "prunable_weights", "random_split",
    "regularised_weights", "run_crop", "tolerated_prune", "train_phase", "validation_score",
]
