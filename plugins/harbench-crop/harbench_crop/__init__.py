"""CRoP as a harbench method plugin: context-robust static personalization by tolerated pruning and model mixing.

Kaur et al., "CRoP: Context-wise Robust Static Human-Sensing Personalization", IMWUT 9(2) 2025, arXiv 2409.17994.
"""

from .diagnostics import StageGIP, gip, gip_by_stage
from .layers import classifier, prunable_weights, regularised_weights
from .method import CRoP
from .mixing import mix_with_generic
from .objective import L1Objective
from .pipeline import CropConfig, CropRun, finetune_with_l1, run_crop
from .pruning import PruneOutcome, PruneStep, apply_masks, magnitude_masks, tolerated_prune
from .summary import crop_summary

__all__ = [
    "CRoP", "CropConfig", "CropRun", "L1Objective", "PruneOutcome", "PruneStep", "StageGIP", "apply_masks",
    "classifier", "crop_summary", "finetune_with_l1", "gip", "gip_by_stage", "magnitude_masks", "mix_with_generic",
    "prunable_weights", "regularised_weights", "run_crop", "tolerated_prune",
]
