"""Choosing the block without a declared drift type: the relative gradient norm of surgical fine-tuning (Auto-RGN).

Lee et al. (ICLR 2023) weight each layer by ||g|| / ||theta|| of the loss gradient on the target data; the TBFT
paper leaves drift detection to future work. Here the same criterion picks one block: the block whose
weights the user's labelled data pushes hardest, relative to their size, is taken to be where the drift lives.

Two choices, both checked on the synthetic drifts (see the plugin README): the gradient is taken in train mode,
as fine-tuning will see it; and only convolution and linear weights enter the norms. BatchNorm scales and
shifts and the biases are short vectors whose relative gradient mostly reflects how far batch statistics moved;
with them in a per-tensor average, label drift pointed at the front block instead of the classifier.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from harbench import Backbone, Windows

from .blocks import SINGLE_BLOCKS, named_blocks


@dataclass(frozen=True)
class RgnChoice:
    block: str
    scores: dict[str, float]  # per single block: ||g|| / ||theta|| over its conv and linear weights


def relative_gradient_norms(model: Backbone, data: Windows) -> dict[str, float]:
    """||g|| / ||theta|| per block, with g the gradient of the mean cross-entropy over ``data``.

    Runs on a copy in train mode (the mode fine-tuning will use, so BatchNorm sees batch statistics as it will
    then) and leaves ``model`` untouched. The whole adapt set is one batch: a user's labelled data is small, and
    one batch gives the full-data gradient with batch statistics over all of it.
    """
    if data.y is None or not len(data):
        raise ValueError("Auto-RGN needs labelled adapt windows")
    probe = copy.deepcopy(model)
    for p in probe.parameters():
        p.requires_grad_(True)
        p.grad = None
    probe.train()
    nn.functional.cross_entropy(probe(data.x), data.y).backward()
    scores = {}
    for name, block in named_blocks(probe).items():
        if name not in SINGLE_BLOCKS:
            continue
        params = [p for p in block.parameters() if p.dim() > 1]  # conv kernels and linear matrices
        grad = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params if p.grad is not None))
        weight = torch.sqrt(sum((p.detach() ** 2).sum() for p in params))
        scores[name] = float(grad / weight.clamp_min(1e-12))
    return scores


def choose_by_rgn(model: Backbone, data: Windows) -> RgnChoice:
    scores = relative_gradient_norms(model, data)
    return RgnChoice(block=max(scores, key=scores.__getitem__), scores=scores)
