"""TBFT for harbench: fine-tune only the block that matches the drift type (Huang et al., EuroMLSys '24)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harbench import lazy_exports

if TYPE_CHECKING:  # the eager imports, for type checkers and editors
    from .blocks import BlockPlan, cut_forward, plan_for
    from .flops import StepFlops, step_flops
    from .method import TBFT, BlockChoice, TBFTPreAct
    from .paper import BLOCK_CHOICES, DRIFT_TO_BLOCK, SINGLE_BLOCKS
    from .recipes import RECIPES, Recipe, resolve_recipe
    from .rgn import RgnChoice, choose_by_rgn, relative_gradient_norms
    from .steps import StepTimer, block_shares, time_steps

# Imported on first use: the report summary (and so `harbench claims`) must not import torch.
_WHERE: dict[str, str] = {
    **dict.fromkeys(["BlockPlan", "cut_forward", "plan_for"], ".blocks"),
    **dict.fromkeys(["StepFlops", "step_flops"], ".flops"),
    **dict.fromkeys(["TBFT", "BlockChoice", "TBFTPreAct"], ".method"),
    **dict.fromkeys(["BLOCK_CHOICES", "DRIFT_TO_BLOCK", "SINGLE_BLOCKS"], ".paper"),
    **dict.fromkeys(["RECIPES", "Recipe", "resolve_recipe"], ".recipes"),
    **dict.fromkeys(["RgnChoice", "choose_by_rgn", "relative_gradient_norms"], ".rgn"),
    **dict.fromkeys(["StepTimer", "block_shares", "time_steps"], ".steps"),
}
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "BLOCK_CHOICES", "DRIFT_TO_BLOCK", "SINGLE_BLOCKS", "BlockChoice", "BlockPlan", "RgnChoice", "StepFlops", "TBFT", "TBFTPreAct", "RECIPES", "Recipe", "resolve_recipe", "StepTimer", "block_shares", "time_steps",
    "choose_by_rgn", "cut_forward", "plan_for", "relative_gradient_norms", "step_flops",
]
