"""Gradient inner product (GIP) between contexts — the paper's explanation of why CRoP generalises.

GIP = ‖Σᵢ Gᵢ‖² − Σᵢ ‖Gᵢ‖² = 2 Σ_{i<j} ⟨Gᵢ, Gⱼ⟩, where Gᵢ is the loss gradient on context i's data (Shi et al.
2021, "Fish"). Negative values mean the contexts pull the weights in conflicting directions. The paper reports
it strongly negative after plain fine-tuning, higher after pruning and ≥ 0 after mixing.

This needs data of the unseen context, which a method never receives by design; so it is a diagnostic run
*outside* the harness (see ``scripts/gip_stages.py``), never part of ``adapt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from harbench import Windows, cross_entropy

from .pipeline import CropRun

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def context_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = cross_entropy) -> torch.Tensor:
    """The flattened gradient of the loss on one context's windows, with the model in eval mode (as deployed)."""
    was = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss_fn(model, x, y), params, allow_unused=True)
    model.train(was)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])


def gip(model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], loss_fn: LossFn = cross_entropy) -> float:
    """‖Σᵢ Gᵢ‖² − Σᵢ ‖Gᵢ‖² over one (x, y) batch per context."""
    if len(batches) < 2:
        raise ValueError("GIP compares at least two contexts")
    grads = [context_gradient(model, x, y, loss_fn) for x, y in batches]
    total = torch.stack(grads).sum(0)
    return float(total.pow(2).sum() - sum(g.pow(2).sum() for g in grads))


@dataclass(frozen=True)
class StageGIP:
    generic: float
    finetuned: float
    pruned: float
    mixed: float
    final: float


def gip_by_stage(generic: nn.Module, run: CropRun, available: Windows, unseen: Windows) -> StageGIP:
    """GIP between the available and the unseen context for the generic model and each CRoP stage."""
    batches = [(available.x, available.y), (unseen.x, unseen.y)]
    return StageGIP(*(gip(m, batches) for m in (generic, run.finetuned, run.pruned, run.mixed, run.final)))
