"""Built-in backbones, looked up by name so that methods and suites can refer to them."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from .base import Backbone
from .mobilenet import MobileNet1d
from .preact import PreActResNet1d
from .resnet import ResNet1d

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "resnet1d": ResNet1d, "mobilenet1d": MobileNet1d, "preact1d": PreActResNet1d,
}


def build_backbone(name: str, channels: int, classes: int, **kwargs: Any) -> Backbone:
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}") from None
    return factory(channels, classes, **kwargs)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["Backbone", "ResNet1d", "MobileNet1d", "PreActResNet1d", "BACKBONES", "build_backbone", "count_params"]
