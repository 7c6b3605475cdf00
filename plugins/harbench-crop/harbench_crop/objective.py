"""CRoP's training objective: cross-entropy plus a trainable, non-negative L1 coefficient times Σ|W|.

The paper makes α trainable and puts it in the model's optimizer; its code leaves it unconstrained, so it can go
negative (rewarding large weights). Here α = softplus(a), which keeps it non-negative; since ∂loss/∂α = Σ|W| > 0,
α only ever shrinks during training, and the reported ``alpha_end`` shows by how much.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harbench import cross_entropy

from .layers import regularised_weights


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))  # log(exp(v) - 1), stable for small and large v


class L1Objective(nn.Module):
    """``loss(model, x, y)`` for :func:`harbench.fit`: CE + α·Σ|W| while training, CE alone while evaluating.

    The penalty is a training device, not a quality measure: :func:`harbench.fit` scores validation with the same
    loss function after switching the model to eval mode, so dropping the penalty there makes model selection
    compare cross-entropy only (otherwise the selection would prefer small weights over good predictions).
    ``alpha0 = 0`` turns the penalty off (no trainable coefficient at all).
    """

    def __init__(self, alpha0: float):
        super().__init__()
        if alpha0 < 0:
            raise ValueError(f"alpha0 must be non-negative, got {alpha0}")
        self.raw_alpha = nn.Parameter(torch.tensor(_inverse_softplus(alpha0))) if alpha0 > 0 else None

    @property
    def alpha(self) -> float:
        return 0.0 if self.raw_alpha is None else float(nn.functional.softplus(self.raw_alpha.detach()))

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return sum(w.abs().sum() for w in regularised_weights(model).values())  # type: ignore[return-value]

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        loss = cross_entropy(model, x, y)
        if self.raw_alpha is not None and model.training:
            loss = loss + nn.functional.softplus(self.raw_alpha) * self.penalty(model)
        return loss
