"""TBFT for harbench: fine-tune only the block that matches the drift type (Huang et al., EuroMLSys '24)."""

from .blocks import BLOCK_CHOICES, DRIFT_TO_BLOCK, SINGLE_BLOCKS, BlockPlan, cut_forward, plan_for
from .flops import StepFlops, step_flops
from .method import TBFT, BlockChoice, TBFTPreAct
from .recipes import RECIPES, Recipe, resolve_recipe
from .rgn import RgnChoice, choose_by_rgn, relative_gradient_norms
from .steps import StepTimer, block_shares, time_steps

__all__ = [
    "BLOCK_CHOICES", "DRIFT_TO_BLOCK", "SINGLE_BLOCKS", "BlockChoice", "BlockPlan", "RgnChoice", "StepFlops", "TBFT", "TBFTPreAct", "RECIPES", "Recipe", "resolve_recipe", "StepTimer", "block_shares", "time_steps",
    "choose_by_rgn", "cut_forward", "plan_for", "relative_gradient_norms", "step_flops",
]
