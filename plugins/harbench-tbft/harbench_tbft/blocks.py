"""Which block to fine-tune, freezing the rest, and a forward pass whose backward really stops at that block.

TBFT's energy saving comes from not back-propagating below the first trainable block. Autograd would already
skip those activation gradients when every lower parameter has ``requires_grad=False``; :func:`cut_forward` makes
the cut explicit by running the frozen prefix under ``torch.no_grad()``, so the guarantee does not depend on
the caller's tensors and the prefix's activations are not even kept for backward.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from harbench import Backbone

from .paper import BLOCK_CHOICES, DRIFT_TO_BLOCK, SINGLE_BLOCKS  # noqa: F401  (the paper's names, re-exported)


@dataclass(frozen=True)
class BlockPlan:
    """The parameters an adapt run trains and where its backward pass stops.

    ``cut`` is the index (in ``Backbone.blocks()`` order) of the first trainable block: blocks before it run
    without autograd. ``trainable`` names every parameter handed to the optimizer.
    """

    block: str
    cut: int
    trainable: tuple[str, ...]


def named_blocks(model: Backbone) -> "OrderedDict[str, nn.Module]":
    blocks = model.blocks()
    missing = [b for b in SINGLE_BLOCKS if b not in blocks]
    if missing:
        raise ValueError(f"TBFT needs a backbone with blocks {SINGLE_BLOCKS}; {type(model).__name__} lacks {missing}")
    return blocks


def plan_for(model: Backbone, block: str) -> BlockPlan:
    """Freeze every parameter except those of ``block`` (``all``: none frozen) and say where to cut the backward."""
    blocks = named_blocks(model)
    if block == "all":
        chosen = list(blocks)
    elif block in blocks:
        chosen = [block]
    else:
        raise ValueError(f"unknown block {block!r}; expected one of {(*SINGLE_BLOCKS, 'all')}")
    chosen_params = {id(p) for name in chosen for p in blocks[name].parameters()}
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(id(p) in chosen_params)
        if id(p) in chosen_params:
            trainable.append(name)
    cut = list(blocks).index(chosen[0])
    return BlockPlan(block=block, cut=cut, trainable=tuple(trainable))


def _apply_block(model: Backbone, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A block's step of ``Backbone.forward``: the head sees the time-pooled features, the others the sequence."""
    return block(x.mean(dim=-1)) if block is model.head else block(x)


def cut_forward(model: Backbone, x: torch.Tensor, cut: int) -> torch.Tensor:
    """``model(x)``, with blocks ``[0, cut)`` evaluated under ``no_grad`` so nothing below the cut is differentiated."""
    blocks = list(named_blocks(model).values())
    with torch.no_grad():
        for block in blocks[:cut]:
            x = _apply_block(model, block, x)
    for block in blocks[cut:]:
        x = _apply_block(model, block, x)
    return x


def cut_loss(cut: int) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A ``loss_fn`` for :func:`harbench.fit` that back-propagates only down to block ``cut``."""

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(cut_forward(model, x, cut), y)  # type: ignore[arg-type]

    return loss


def train_mode(model: Backbone, plan: BlockPlan, freeze_bn: bool) -> Callable[[nn.Module], None]:
    """The ``train_mode`` for :func:`harbench.fit`.

    As in the paper's code, the whole model goes to ``train()``, so BatchNorm layers in frozen blocks keep
    updating their running statistics (and normalise with batch statistics). ``freeze_bn`` puts those layers in
    eval mode instead, which makes every frozen block bit-for-bit unchanged.
    """
    frozen_bn = []
    if freeze_bn:
        trainable = set(plan.trainable)
        for name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                own = [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)]
                if not any(p in trainable for p in own):
                    frozen_bn.append(module)

    def set_mode(m: nn.Module) -> None:
        m.train()
        for bn in frozen_bn:
            bn.eval()

    return set_mode
