"""CRoP as a harbench method plugin: context-robust static personalization by tolerated pruning and model mixing.

Kaur et al., "CRoP: Context-wise Robust Static Human-Sensing Personalization", IMWUT 9(2) 2025, arXiv 2409.17994.
"""

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

__all__ = [
    "CLAIMS", "BalancedAccuracySeen", "BalancedAccuracyUnseen", "CRoPFinetune", "PaperClaim", "run_conventional",
    "CRoP", "CropConfig", "CropRun", "L1Objective", "PhaseReport", "PruneOutcome", "PruneStep", "StageGIP",
    "apply_masks", "balanced_accuracy", "classifier", "crop_claims", "crop_detail", "crop_summary", "scenario_verdict", "erk_layer_amount", "erk_masks", "gip",
    "gip_by_stage", "global_masks", "magnitude_masks", "mix_with_generic", "prunable_weights", "random_split",
    "regularised_weights", "run_crop", "tolerated_prune", "train_phase", "validation_score",
]
