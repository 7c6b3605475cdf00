"""Step 3 of CRoP: put the generic model's weights back exactly where ToleratedPrune removed personalized ones.

The pruned (near-zero, least important) personalized weights are where the user's data pushed the model least;
filling them with the generic weights restores context-general knowledge at almost no cost on the available
context. Biases, normalisation layers and the classifier keep their personalized values (they are not in the
masks).
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn


@torch.no_grad()
def mix_with_generic(personal: nn.Module, generic: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """A new model: ``personal``'s weights where the mask is 1, ``generic``'s (bit-exact) where it is 0.

    ``personal`` may be the pruned or the unpruned fine-tuned model; where the mask is 1 both agree. Neither input
    is modified.
    """
    mixed = copy.deepcopy(personal)
    mixed_params = dict(mixed.named_parameters())
    generic_params = dict(generic.named_parameters())
    for name, mask in masks.items():
        target = mixed_params[name]
        target.copy_(torch.where(mask.bool(), target, generic_params[name].detach()))
    return mixed
