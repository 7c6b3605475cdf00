"""CRoP's training objective: cross-entropy plus a trainable L1 coefficient α times Σ|W|.

Three ways to hold α (parameter ``alpha_mode``):

* ``code`` (default, the authors' code): ``CostumLoss.gamma = nn.Parameter(α0)`` is a raw parameter in the model's
  Adam (``run_EXTRASENSORY_PERSONAL_aaai.py``, ``train()``). Since ∂loss/∂α = Σ|W| > 0 always, Adam lowers it by
  about the learning rate per step, so on a long enough run it passes through zero and goes on falling: the
  penalty then *rewards* large weights. Nothing bounds it; that is the code's behaviour.
* ``softplus``: α = softplus(a), kept positive; at α0 = 1e-4 it barely moves (about 1e-4 → 9e-5 over ~90 steps),
  so it acts as a constant.
* ``fixed``: α = α0, not trained.

``alpha0 = 0`` turns the penalty off in every mode (no trainable coefficient at all); the code has no such switch.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from harbench import cross_entropy

from .layers import regularised_weights

AlphaMode = Literal["code", "softplus", "fixed"]
ALPHA_MODES = ("code", "softplus", "fixed")


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))  # log(exp(v) - 1), stable for small and large v


class L1Objective(nn.Module):
    """``loss(model, x, y)`` for :func:`harbench.fit`: CE + α·Σ|W| while training, CE alone while evaluating.

    The penalty is a training device, not a quality measure: the validation score (cross-entropy when selecting
    by loss) is computed in eval mode, where the penalty is dropped.
    """

    def __init__(self, alpha0: float, mode: AlphaMode = "code"):
        super().__init__()
        if alpha0 < 0:
            raise ValueError(f"alpha0 must be non-negative, got {alpha0}")
        if mode not in ALPHA_MODES:
            raise ValueError(f"unknown alpha mode {mode!r}; expected one of {', '.join(ALPHA_MODES)}")
        self.mode = mode
        self.raw_alpha: nn.Parameter | None = None
        if alpha0 > 0 and mode == "code":
            self.raw_alpha = nn.Parameter(torch.tensor(float(alpha0)))
        elif alpha0 > 0 and mode == "softplus":
            self.raw_alpha = nn.Parameter(torch.tensor(_inverse_softplus(alpha0)))
        elif alpha0 > 0:
            self.register_buffer("fixed_alpha", torch.tensor(float(alpha0)))
        self._off = alpha0 == 0

    def coefficient(self) -> torch.Tensor | None:
        if self._off:
            return None
        if self.mode == "code":
            return self.raw_alpha
        if self.mode == "softplus":
            return nn.functional.softplus(self.raw_alpha)
        return self.fixed_alpha

    @property
    def alpha(self) -> float:
        c = self.coefficient()
        return 0.0 if c is None else float(c.detach())

    def penalty(self, model: nn.Module) -> torch.Tensor:
        return sum(w.abs().sum() for w in regularised_weights(model).values())  # type: ignore[return-value]

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        loss = cross_entropy(model, x, y)
        c = self.coefficient()
        if c is not None and model.training:
            loss = loss + c * self.penalty(model)
        return loss
