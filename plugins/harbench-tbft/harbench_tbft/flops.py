"""Analytic FLOPs of a TBFT training step, following the paper's cost argument.

Per window, a training step costs
  * the forward FLOPs of every layer (the frozen prefix still has to run),
  * an activation gradient (grad w.r.t. the layer's input, as many FLOPs as its forward) only for layers whose
    input carries a gradient, i.e. layers above the first trainable one,
  * a weight gradient (as many FLOPs as its forward) only for trainable layers.
Only convolutions and linear layers are counted (2 FLOPs per multiply-accumulate), the convention of
``harbench.flops_per_window`` and ``torch.utils.flop_counter``. Whether a layer's input carries a gradient is read
from the real graph built by :func:`~harbench_tbft.blocks.cut_forward`, so the count is a statement about the
backward pass that actually runs, not about what it should be.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from harbench import Backbone

from .blocks import cut_forward


@dataclass(frozen=True)
class LayerCost:
    name: str
    forward: float  # FLOPs of one window's forward pass through the layer
    input_grad: bool  # the backward computes the gradient w.r.t. the layer's input
    weight_grad: bool  # the layer's weight is trainable


@dataclass(frozen=True)
class StepFlops:
    """FLOPs per window of one forward pass and of one training step (forward + backward)."""

    forward: float
    activation_grad: float
    weight_grad: float
    layers: tuple[LayerCost, ...] = field(default=(), repr=False)

    @property
    def train(self) -> float:
        return self.forward + self.activation_grad + self.weight_grad


def _layer_forward_flops(module: nn.Module, out: torch.Tensor) -> float:
    if isinstance(module, nn.Conv1d):
        in_per_group = module.in_channels // module.groups
        return 2.0 * out.numel() * in_per_group * module.kernel_size[0]
    if isinstance(module, nn.Linear):
        return 2.0 * out.numel() * module.in_features
    raise TypeError(f"no FLOP formula for {type(module).__name__}")


def step_flops(model: Backbone, example: torch.Tensor, cut: int) -> StepFlops:
    """Count one training step on ``example`` (a few windows) with the backward cut at block ``cut``.

    Parameters must already be frozen as the adapt run freezes them. The model's weights and running
    statistics are left as they were (the probe runs in eval mode and nothing is back-propagated).
    """
    records: list[tuple[str, nn.Module, float, bool]] = []

    def hook(name: str):
        def record(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            records.append((name, module, _layer_forward_flops(module, out), bool(args[0].requires_grad)))

        return record

    handles = [
        m.register_forward_hook(hook(name))
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv1d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        cut_forward(model, example, cut)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    n = example.shape[0]
    layers = tuple(
        LayerCost(name, flops / n, input_grad, bool(module.weight.requires_grad))
        for name, module, flops, input_grad in records
    )
    return StepFlops(
        forward=sum(layer.forward for layer in layers),
        activation_grad=sum(layer.forward for layer in layers if layer.input_grad),
        weight_grad=sum(layer.forward for layer in layers if layer.weight_grad),
        layers=layers,
    )


def adapt_phase_flops(step: StepFlops, trained_windows: int, forward_only_windows: int) -> float:
    """FLOPs of a whole adapt phase: training steps plus forward-only passes (validation, probes)."""
    return step.train * trained_windows + step.forward * forward_only_windows
