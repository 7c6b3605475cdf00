"""The intuition-memory head (the paper code's SIMH): an associative-memory branch and a linear branch, mixed.

The paper's memory branch is a ``hflayers.Hopfield`` layer applied to the pooled feature as a length-1 sequence,
where the association is trivial. Here the memory is a modern-Hopfield retrieval over *learned stored patterns*
(Ramsauer et al.): the pooled feature is projected to a query, updated ``update_steps`` times towards the stored
patterns it resembles, and the retrieved pattern is mapped to classes by an output projection, as in a Hopfield
layer. It keeps the paper's two ideas (a
memory that recalls prototypes, an intuition that maps features linearly) at a size a ~100 k student can afford.

The head returns log-probabilities: ``log(w_m softmax(memory) + w_i softmax(intuition))`` with ``w = softmax(mix)``
(``mix`` learnable, initialised to zero as in the code). Being log-probabilities they are valid logits
(``softmax`` recovers the mixture), so the harness's cross-entropy and argmax work unchanged; the code's quirk of
applying cross-entropy to probabilities is not reproduced.
"""

from __future__ import annotations

import math

import torch
from torch import nn

HEAD_MODES = ("memory", "intuition", "fused")


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
    """Memory and intuition branches; ``mode`` picks memory-only, intuition-only or the learned mixture.

    ``compress()`` drops what the chosen mode does not use, so a deployed student carries only its winning head
    (the code's ``compress()``, generalised to any of the three modes).
    """

    def __init__(self, features: int, classes: int, slots: int = 32, dim: int = 64, update_steps: int = 2):
        super().__init__()
        self.memory: AssociativeMemory | None = AssociativeMemory(features, classes, slots, dim, update_steps)
        self.intuition: nn.Linear | None = nn.Linear(features, classes)
        self.mix: nn.Parameter | None = nn.Parameter(torch.zeros(2))
        self.mode = "fused"

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

    def branch_log_probs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        if self.memory is not None:
            out["memory"] = torch.log_softmax(self.memory(features), dim=-1)
        if self.intuition is not None:
            out["intuition"] = torch.log_softmax(self.intuition(features), dim=-1)
        return out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.mode == "memory":
            return torch.log_softmax(self.memory(features), dim=-1)
        if self.mode == "intuition":
            return torch.log_softmax(self.intuition(features), dim=-1)
        branches = self.branch_log_probs(features)
        weights = torch.log_softmax(self.mix, dim=0)
        stacked = torch.stack([weights[0] + branches["memory"], weights[1] + branches["intuition"]])
        return torch.logsumexp(stacked, dim=0)
