"""Step 2 of CRoP: ToleratedPrune — the largest one-shot magnitude pruning whose accuracy drop stays within τ.

Each candidate amount p = k, k + k′, k + 2k′, … is applied to the *fine-tuned* weights (one-shot, not iterative:
the paper's ablation found one-shot magnitude pruning best). The mask of the last amount whose accuracy on the
available-context training data is at most τ below the unpruned accuracy is returned; when already the first
amount breaks the tolerance the mask is all ones (nothing pruned, so mixing changes nothing).

Two thresholds are offered: ``global`` (one magnitude ranking over every prunable weight, the paper's
"conventional unstructured magnitude pruning") and ``erk`` (the paper's code: a per-layer amount scaled by the
Erdős–Rényi-kernel factor, thresholded at the global score quantile of that amount, so thin layers keep more).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal, Mapping

import torch
from torch import nn

from harbench import Windows, accuracy, predict

from .layers import prunable_weights

Scheme = Literal["global", "erk"]
Masks = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PruneStep:
    """One candidate amount: the share of prunable weights actually zeroed and the resulting train accuracy."""

    amount: float
    sparsity: float
    accuracy: float
    within_tolerance: bool


@dataclass
class PruneOutcome:
    """What ToleratedPrune chose. ``masks`` hold 1 where the personalized weight is kept, 0 where it was pruned."""

    masks: Masks
    amount: float  # 0.0 when nothing was within tolerance
    sparsity: float
    accuracy_unpruned: float
    accuracy: float
    steps: list[PruneStep] = field(default_factory=list)


def magnitude_masks(weights: Mapping[str, torch.Tensor], amount: float, scheme: Scheme = "global") -> Masks:
    """Unstructured magnitude masks over ``weights`` at ``amount`` (0 = keep everything)."""
    if scheme == "global":
        return _global_masks(weights, amount)
    if scheme == "erk":
        return _erk_masks(weights, amount)
    raise ValueError(f"unknown pruning scheme {scheme!r}; expected 'global' or 'erk'")


def _scores(weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([w.detach().abs().flatten() for w in weights.values()])


def _global_masks(weights: Mapping[str, torch.Tensor], amount: float) -> Masks:
    """Zero exactly round(amount·N) weights of smallest magnitude across all tensors (ties broken by position)."""
    scores = _scores(weights)
    flat = torch.ones_like(scores)
    n_prune = int(round(amount * scores.numel()))
    if n_prune > 0:
        flat[torch.argsort(scores, stable=True)[:n_prune]] = 0.0
    masks: Masks = {}
    offset = 0
    for name, w in weights.items():
        masks[name] = flat[offset : offset + w.numel()].view_as(w).clone()
        offset += w.numel()
    return masks


def erk_layer_amount(shape: torch.Size, amount: float) -> float:
    """The paper code's per-layer amount: p·(1 − (in+out+Σk)/(in·out·Πk)) for convolutions and
    p·(1 − (in+out)/(in·out)) + 0.02 (the bonus only while p < 0.98) for matrices."""
    out_dim, in_dim, *kernel = shape
    if kernel:
        k_prod = 1
        for k in kernel:
            k_prod *= k
        ratio = amount * (1 - (in_dim + out_dim + sum(kernel)) / (in_dim * out_dim * k_prod))
    else:
        ratio = amount * (1 - (in_dim + out_dim) / (in_dim * out_dim)) + (0.02 if amount < 0.98 else 0.0)
    return min(max(ratio, 0.0), 1.0)


def _quantile(sorted_scores: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile`` (linear interpolation) on already sorted scores: one sort serves every layer."""
    position = q * (sorted_scores.numel() - 1)
    low = int(position)
    high = min(low + 1, sorted_scores.numel() - 1)
    return sorted_scores[low] + (position - low) * (sorted_scores[high] - sorted_scores[low])


def _erk_masks(weights: Mapping[str, torch.Tensor], amount: float) -> Masks:
    sorted_scores = torch.sort(_scores(weights)).values
    masks: Masks = {}
    for name, w in weights.items():
        ratio = erk_layer_amount(w.shape, amount) if amount > 0 else 0.0
        if ratio <= 0.0:
            masks[name] = torch.ones_like(w)
            continue
        masks[name] = (w.detach().abs() > _quantile(sorted_scores, ratio)).to(w.dtype)
    return masks


def sparsity(masks: Mapping[str, torch.Tensor]) -> float:
    total = sum(m.numel() for m in masks.values())
    return float(sum(int((m == 0).sum()) for m in masks.values()) / total) if total else 0.0


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Zero the pruned weights of ``model`` in place (the names are ``model.named_parameters()`` names)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask)
    return model


def candidate_amounts(start: float, step: float, max_amount: float) -> list[float]:
    """k, k + k′, … up to ``max_amount`` (computed by multiplication so rounding never adds or drops a step)."""
    if start <= 0 or step <= 0:
        raise ValueError("the pruning schedule needs positive k and k'")
    amounts = []
    i = 0
    while (p := round(start + i * step, 9)) <= max_amount + 1e-9:
        amounts.append(p)
        i += 1
    return amounts


@torch.no_grad()
def tolerated_prune(
    model: nn.Module,
    data: Windows,
    *,
    tau: float,
    start: float = 0.05,
    step: float = 0.05,
    max_amount: float = 0.95,
    scheme: Scheme = "global",
) -> PruneOutcome:
    """ToleratedPrune(M, τ, D) of the paper (Algorithm 2). ``model`` is left unchanged; apply the returned masks."""
    if data.y is None:
        raise ValueError("ToleratedPrune measures accuracy and needs labelled windows")
    weights = prunable_weights(model)
    probe = copy.deepcopy(model)
    probe_weights = prunable_weights(probe)
    acc0 = accuracy(data.y, predict(model, data.x))
    chosen = PruneOutcome({n: torch.ones_like(w) for n, w in weights.items()}, 0.0, 0.0, acc0, acc0)
    for amount in candidate_amounts(start, step, max_amount):
        masks = magnitude_masks(weights, amount, scheme)
        for name, w in probe_weights.items():
            w.copy_(weights[name] * masks[name])
        acc = accuracy(data.y, predict(probe, data.x))
        within = acc >= acc0 - tau - 1e-6  # a drop of exactly τ is still tolerated (float32 accuracies)
        chosen.steps.append(PruneStep(amount, sparsity(masks), acc, within))
        if not within:
            break
        chosen.masks, chosen.amount, chosen.sparsity, chosen.accuracy = masks, amount, sparsity(masks), acc
    return chosen
