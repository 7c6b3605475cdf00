"""A small 1-D ResNet whose parts are addressable as ``front`` (stem + stage 1), ``stage2``, ``stage3``, ``fc``."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .base import Backbone


class BasicBlock1d(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, kernel: int = 5):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(cin, cout, kernel, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def _stage(cin: int, cout: int, depth: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock1d(cin, cout, stride)]
    layers += [BasicBlock1d(cout, cout) for _ in range(depth - 1)]
    return nn.Sequential(*layers)


class ResNet1d(Backbone):
    """Stem, three residual stages (width w, 2w, 4w; stride 1, 2, 2) and a linear classifier.

    With the defaults (w=16, depth 2) it has about 100 k parameters and trains in seconds on two cores.
    """

    def __init__(self, channels: int, classes: int, width: int = 16, depth: int = 2):
        super().__init__()
        w = width
        stem = nn.Sequential(nn.Conv1d(channels, w, 7, 1, 3, bias=False), nn.BatchNorm1d(w), nn.ReLU())
        self.front = nn.Sequential(OrderedDict(stem=stem, stage1=_stage(w, w, depth, 1)))
        self.stage2 = _stage(w, 2 * w, depth, 2)
        self.stage3 = _stage(2 * w, 4 * w, depth, 2)
        self.fc = nn.Linear(4 * w, classes)

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.fc

    def blocks(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(front=self.front, stage2=self.stage2, stage3=self.stage3, fc=self.fc)
