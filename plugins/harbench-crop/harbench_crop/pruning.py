"""Step 2 of CRoP: ToleratedPrune — the largest one-shot magnitude pruning whose score drop stays within τ.

Each candidate amount p = k, k + k′, k + 2k′, … is applied to the *fine-tuned* weights (one-shot, not iterative:
the paper's ablation found one-shot magnitude pruning best). The mask of the last amount whose score (balanced
accuracy by default, as ``get_good_pruning`` in the authors' ``run_EXTRASENSORY_PERSONAL_aaai.py``) on the
available-context training data is at most τ below the unpruned score is returned.

Two thresholds are offered:

* ``erk`` (default, what the authors' code always runs): one importance score |w| pooled over every prunable tensor
  **and the classifier** (``magnitude_prune_unstruct`` collects every Conv/Linear of ``generate_mod_list``), and
  per layer the global quantile of that pool at an Erdős–Rényi-kernel-scaled amount
  (``prune_model_structured_erdos_renyi_kernel``). The code's ``Prune(model, loader, amount, method,
  saved_model_name, erk, device)`` is called as ``Prune(model, loader, amount, method, erk, device)``, so ``erk``
  receives the device, which is truthy: the ERK branch is the only one that runs. The classifier's own mask is
  computed but never applied (``apply_mask`` skips the Linear whose ``out_features`` is the class count).
  When already the first amount breaks the tolerance, the code prunes at amount 0 (``prune_amount -= .05``):
  that still removes weights at or below the pool's minimum, and 2 % of any hidden Linear layer (the +0.02).
* ``global``: one magnitude ranking over the prunable weights only (the paper's "conventional unstructured
  magnitude pruning"), exactly round(p·N) weights; nothing is pruned when the first amount already fails.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal, Mapping

import torch
from torch import nn

from harbench import Windows, predict

from .layers import classifier_weight, prunable_layers, prunable_weights
from .scores import Metric, score

Scheme = Literal["global", "erk"]
Masks = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PruneStep:
    """One candidate amount: the share of prunable weights actually zeroed and the resulting train score."""

    amount: float
    sparsity: float
    accuracy: float  # the tolerance metric's value (balanced accuracy by default)
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
    metric: str = "balanced_accuracy"


def _scores(weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([w.detach().abs().flatten() for w in weights.values()])


def global_masks(weights: Mapping[str, torch.Tensor], amount: float) -> Masks:
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


def erk_layer_amount(module: nn.Module, amount: float) -> float:
    """The code's per-layer quantile (``prune_model_structured_erdos_renyi_kernel``), from the module's sizes.

    Conv: p·(1 − (in + out + Σk)/(in·out·Πk)) with the module's ``in_channels``/``out_channels`` (not the weight's
    per-group shape); Linear: p·(1 − (in + out)/(in·out)) + 0.02 while p < 0.98; RNN: the same with
    ``input_size``/``hidden_size``. The code would fail on a quantile outside [0, 1]; here it is clipped.
    """
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel = list(module.kernel_size)
        ratio = amount * (1 - (module.in_channels + module.out_channels + sum(kernel))
                          / (module.in_channels * module.out_channels * math.prod(kernel)))
    elif isinstance(module, nn.Linear):
        ratio = _matrix_amount(module.in_features, module.out_features, amount)
    elif isinstance(module, nn.RNNBase):
        ratio = _matrix_amount(module.input_size, module.hidden_size, amount)
    else:
        raise TypeError(f"no ERK amount for {type(module).__name__}")
    return min(max(ratio, 0.0), 1.0)


def _matrix_amount(n_in: int, n_out: int, amount: float) -> float:
    scaled = amount * (1 - (n_in + n_out) / (n_in * n_out))
    return scaled + 0.02 if amount < 0.98 else scaled


def erk_masks(model: nn.Module, amount: float) -> Masks:
    """The code's masks: |w| at or below the pool's quantile at the layer's ERK amount is pruned (``<=``)."""
    layers = prunable_layers(model)
    weights = prunable_weights(model)
    pool = _scores({**weights, "__classifier__": classifier_weight(model)})
    ratios = torch.tensor([erk_layer_amount(layers[name], amount) for name in weights], dtype=pool.dtype)
    thresholds = torch.quantile(pool, ratios)  # linear interpolation, as the code's torch.quantile
    return {name: (w.detach().abs() > t).to(w.dtype) for (name, w), t in zip(weights.items(), thresholds)}


def magnitude_masks(model: nn.Module, amount: float, scheme: Scheme = "erk") -> Masks:
    """Unstructured magnitude masks over ``model``'s prunable weights at ``amount``."""
    if scheme == "global":
        return global_masks(prunable_weights(model), amount)
    if scheme == "erk":
        return erk_masks(model, amount)
    raise ValueError(f"unknown pruning scheme {scheme!r}; expected 'global' or 'erk'")


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
    scheme: Scheme = "erk",
    metric: Metric = "balanced_accuracy",
) -> PruneOutcome:
    """ToleratedPrune(M, τ, D) of the paper (Algorithm 2). ``model`` is left unchanged; apply the returned masks."""
    if data.y is None:
        raise ValueError("ToleratedPrune measures accuracy and needs labelled windows")
    weights = prunable_weights(model)
    probe = copy.deepcopy(model)
    probe_weights = prunable_weights(probe)
    acc0 = score(metric, data.y, predict(model, data.x))
    if scheme == "erk":  # the code's fallback: prune at amount 0 (see the module docstring)
        fallback = magnitude_masks(model, 0.0, scheme)
        for name, w in probe_weights.items():
            w.copy_(weights[name] * fallback[name])
        acc_fallback = score(metric, data.y, predict(probe, data.x))
    else:
        fallback, acc_fallback = {n: torch.ones_like(w) for n, w in weights.items()}, acc0
    chosen = PruneOutcome(fallback, 0.0, sparsity(fallback), acc0, acc_fallback, metric=metric)
    for amount in candidate_amounts(start, step, max_amount):
        masks = magnitude_masks(model, amount, scheme)
        for name, w in probe_weights.items():
            w.copy_(weights[name] * masks[name])
        acc = score(metric, data.y, predict(probe, data.x))
        within = acc >= acc0 - tau - 1e-6  # the code fails on `score < score0 − τ`; float32 scores
        chosen.steps.append(PruneStep(amount, sparsity(masks), acc, within))
        if not within:
            break
        chosen.masks, chosen.amount, chosen.sparsity, chosen.accuracy = masks, amount, sparsity(masks), acc
    return chosen
