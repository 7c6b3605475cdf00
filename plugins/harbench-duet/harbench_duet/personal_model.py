"""Installing a generated head on the device: the backbone stays as it is, the classifier is replaced."""

from __future__ import annotations

import torch
from torch import nn

from harbench import Backbone

from .generator import GeneratorConfig, LayerParams, ParameterGenerator, activation_module


def build_head(cfg: GeneratorConfig, layers: list[LayerParams]) -> nn.Module:
    """Plain ``nn.Linear`` layers holding one device's generated weights (batch index 0), frozen.

    The weights are cloned outside inference mode so the returned module is an ordinary one (inference tensors
    cannot be deep-copied into parameters or used by later autograd-aware code).
    """
    linears = []
    for (d_in, d_out), (weight, bias) in zip(cfg.layer_shapes, layers):
        linear = nn.Linear(d_in, d_out)
        with torch.no_grad():
            linear.weight.copy_(weight[0].clone())
            linear.bias.copy_(bias[0].clone())
        linears.append(linear)
    head: nn.Module = (linears[0] if len(linears) == 1
                       else nn.Sequential(linears[0], activation_module(cfg.activation), linears[1]))
    for p in head.parameters():
        p.requires_grad_(False)
    return head


class PerSampleHead(nn.Module):
    """``granularity=sample``: a head that generates its own weights for every window it classifies, from the
    buffer's encoder state followed by that window's features (the paper's per-sample parameter generation).

    It holds a frozen copy of the generator (encoder, decoders, UMN head) and the buffer's state, so one call
    costs one encoder step and one decoder pass per window on top of the head itself: that cost is inference
    cost (``latency_ms``, ``infer_mj``, ``params``), not adapt cost. A device either holds these weights or asks
    the cloud once per window; harbench bills them to the device model either way.
    """

    def __init__(self, generator: ParameterGenerator, state: torch.Tensor):
        super().__init__()
        self.generator = generator
        self.register_buffer("buffer_state", state.detach().clone())
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.generator.per_sample_logits(self.buffer_state, features.unsqueeze(0))[0]


def swap_head(model: Backbone, head: nn.Module) -> Backbone:
    """Replace the module that ``model.head`` points to (``fc`` for ResNet1d, ``classifier`` for MobileNet1d)."""
    for name, child in model.named_children():
        if child is model.head:
            setattr(model, name, head)
            return model
    raise ValueError(f"{type(model).__name__}.head is not a direct child module; DUET cannot swap it")


class HeadSwapped(Backbone):
    """The device's model after DUET: the generic model's static blocks, *shared* rather than copied (the device
    keeps its backbone in place and only replaces the dynamic layers), followed by the generated head.

    Sharing is safe because nothing here or in the harness writes to those blocks: they are evaluated only, and
    the generic model's weights and flags are left as they were. Inherits ``stage_outputs``/``features`` from
    :class:`harbench.Backbone`, which chain ``blocks()`` up to the head, as both built-in backbones do.
    """

    def __init__(self, generic: Backbone, head: nn.Module):
        super().__init__()
        self.static = nn.ModuleDict({k: m for k, m in generic.blocks().items() if m is not generic.head})
        self.fc = head
        self.train(False)

    def train(self, mode: bool = True) -> "HeadSwapped":
        """Switch the generated head only. The static blocks belong to the generic model and keep its mode:
        ``predict`` and the harness call ``model.train(was)``, which would otherwise put the shared backbone's
        BatchNorm into training mode (batch statistics, running-stat updates) for every later user and job."""
        self.training = mode
        self.fc.train(mode)
        return self

    @property
    def head(self) -> nn.Module:  # type: ignore[override]
        return self.fc

    def blocks(self):
        from collections import OrderedDict

        return OrderedDict([*self.static.items(), ("fc", self.fc)])
