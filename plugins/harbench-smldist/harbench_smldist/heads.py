"""The intuition-memory head (the paper code's SIMH): a memory branch and a linear intuition branch, mixed.

Two memory branches are offered (``memory_form``):

* ``code`` (default) is what the authors' code computes. Their memory branch is ``hflayers.Hopfield(n, n, classes)``
  applied to the pooled feature as a *length-1 sequence*: the softmax over a single stored pattern is exactly 1
  (whatever the update steps), so the layer reduces to ``out_proj(W_v LayerNorm(x) + b_v)``, a layer-normed
  two-layer linear head. The query/key projections and their LayerNorms receive no gradient and never change the
  output, so they are left out (they would only add dead parameters to the count).
* ``associative`` is harbench's earlier reconstruction: a modern-Hopfield retrieval over ``slots`` *learned stored
  patterns* (Ramsauer et al.), kept as a documented variant.

Outputs follow the code's ``forward``: in training mode the head returns the learned mixture
``w_m softmax(memory) + w_i softmax(intuition)`` (``w = softmax(mix)``, ``mix`` initialised to zero), here as its
logarithm so that it is a valid logit vector (``exp`` gives the code's probabilities back); in eval mode it returns
the branch named by ``mode`` — ``memory`` is the code's default ``eval_mode='M'`` and returns the memory branch's
raw output (the code's ``y_h``), ``intuition`` the linear branch, ``fused`` the log-mixture.
"""

from __future__ import annotations

import math

import torch
from torch import nn

HEAD_MODES = ("memory", "intuition", "fused")
MEMORY_FORMS = ("code", "associative")


class CodeHopfieldMemory(nn.Module):
    """``hflayers.Hopfield(features, features, classes)`` on a length-1 sequence: LayerNorm -> value -> output."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.norm = nn.LayerNorm(features)  # hflayers' norm_pattern_projection (affine, eps 1e-5)
        self.value = nn.Linear(features, features)  # the value part of HopfieldCore.in_proj
        self.output = nn.Linear(features, classes)  # HopfieldCore.out_proj
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """hflayers' initialisation: N(0, 0.02) weights, zero biases (TASNeModel re-draws out_proj with N(0, 0.01))."""
        for linear, std in ((self.value, 0.02), (self.output, 0.01)):
            nn.init.normal_(linear.weight, 0.0, std)
            nn.init.zeros_(linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.output(self.value(self.norm(features)))


class AssociativeMemory(nn.Module):
    """Hopfield retrieval of ``slots`` learned patterns from a query projected out of the pooled feature."""

    def __init__(self, features: int, classes: int, slots: int = 32, dim: int = 64, update_steps: int = 2):
        super().__init__()
        self.query = nn.Sequential(nn.Linear(features, dim), nn.LayerNorm(dim))
        self.patterns = nn.Parameter(torch.randn(slots, dim) / math.sqrt(dim))
        self.pattern_norm = nn.LayerNorm(dim)
        self.output = nn.Linear(dim, classes)
        self.update_steps = update_steps
        self.beta = 1.0 / math.sqrt(dim)

    def association(self, features: torch.Tensor) -> torch.Tensor:
        """Softmax weights over stored patterns after ``update_steps`` Hopfield updates ``xi <- softmax(beta xi P^T) P``."""
        patterns = self.pattern_norm(self.patterns)
        xi = self.query(features)
        for _ in range(self.update_steps):
            xi = torch.softmax(self.beta * xi @ patterns.T, dim=-1) @ patterns
        return torch.softmax(self.beta * xi @ patterns.T, dim=-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        retrieved = self.association(features) @ self.pattern_norm(self.patterns)
        return self.output(retrieved)


class IntuitionMemoryHead(nn.Module):
    """Memory and intuition branches; ``mode`` is the eval-mode output (the code's ``eval_mode``).

    ``compress()`` drops what the chosen mode does not use, so a deployed network carries only its head (the
    code's ``compress()`` keeps the memory branch; here it works for any of the three modes).
    """

    def __init__(self, features: int, classes: int, memory_form: str = "code", slots: int = 32, dim: int = 64,
                 update_steps: int = 2, mode: str = "memory"):
        super().__init__()
        if memory_form == "code":
            memory: nn.Module = CodeHopfieldMemory(features, classes)
        elif memory_form == "associative":
            memory = AssociativeMemory(features, classes, slots, dim, update_steps)
        else:
            raise ValueError(f"unknown memory form {memory_form!r}; expected one of {MEMORY_FORMS}")
        self.memory: nn.Module | None = memory
        self.intuition: nn.Linear | None = nn.Linear(features, classes)
        self.mix: nn.Parameter | None = nn.Parameter(torch.zeros(2))
        self.mode = "fused"
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        if mode not in HEAD_MODES:
            raise ValueError(f"unknown head mode {mode!r}; expected one of {HEAD_MODES}")
        needs_memory = mode in ("memory", "fused")
        needs_intuition = mode in ("intuition", "fused")
        if (needs_memory and self.memory is None) or (needs_intuition and self.intuition is None):
            raise ValueError(f"head mode {mode!r} needs a branch that compress() removed")
        self.mode = mode

    def compress(self) -> None:
        if self.mode == "memory":
            self.intuition, self.mix = None, None
        elif self.mode == "intuition":
            self.memory, self.mix = None, None

    @property
    def fused_available(self) -> bool:
        return self.memory is not None and self.intuition is not None

    def branch_outputs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs of the branches still present (memory: the code's ``y_h``; intuition: ``y_l``)."""
        out = {}
        if self.memory is not None:
            out["memory"] = self.memory(features)
        if self.intuition is not None:
            out["intuition"] = self.intuition(features)
        return out

    def mixture_log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """log(w_m softmax(memory) + w_i softmax(intuition)): the log of the code's training output ``y_f``."""
        branches = self.branch_outputs(features)
        weights = torch.log_softmax(self.mix, dim=0)
        stacked = torch.stack([weights[0] + torch.log_softmax(branches["memory"], dim=-1),
                               weights[1] + torch.log_softmax(branches["intuition"], dim=-1)])
        return torch.logsumexp(stacked, dim=0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.training and self.fused_available:
            return self.mixture_log_probs(features)
        return self.eval_output(features)

    def eval_output(self, features: torch.Tensor) -> torch.Tensor:
        """What the head returns in eval mode, whatever mode the module is in."""
        if self.mode == "memory":
            return self.memory(features)
        if self.mode == "intuition":
            return self.intuition(features)
        return self.mixture_log_probs(features)
