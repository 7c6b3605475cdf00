"""A 1-D pre-activation ResNet-26 with the structure of TBFT's network and its balanced stage costs.

TBFT (Huang et al., EuroMLSys '24) fine-tunes blocks of ``ResNetCifar(depth=26)`` from the TTT/MEMO code:
a 3x3 stem convolution to 16 channels, three stages of N = 4 pre-activation basic blocks (BN -> ReLU -> conv,
twice) with 16, 32 and 64 channels, parameter-free shortcuts where the shape changes (average pooling, then the
new channels padded with zeros), a final BN + ReLU, global average pooling and a linear classifier.

In 2-D each stage halves both spatial sides: a quarter of the positions times four times the multiply-accumulates
per position, so the three stages cost about the same. A 1-D network that halves its length at every stage
doubles its cost at every stage instead (``ResNet1d``: 17 / 28 / 55 % of the forward FLOPs). Here each stage
divides the length by ``stride`` = 4 (128 -> 32 -> 8 samples, as 32x32 -> 16x16 -> 8x8 has 1024 -> 256 -> 64
positions), so the stages' forward FLOPs are equal up to the first convolution of each stage, and the
parameters are distributed as in the paper (the last stage holds about three quarters).

Blocks: ``front`` (stem + stage 1, the paper's Block 1), ``stage2``, ``stage3``, ``neck`` (the final BN + ReLU,
which belongs to none of the paper's blocks and is trained only when the whole network is) and ``fc``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from .base import Backbone


class PreActBlock1d(nn.Module):
    """BN -> ReLU -> conv -> BN -> ReLU -> conv, added to the (downsampled) input; no post-addition activation."""

    def __init__(self, cin: int, cout: int, stride: int = 1, kernel: int = 5):
        super().__init__()
        pad = kernel // 2
        self.bn1 = nn.BatchNorm1d(cin)
        self.conv1 = nn.Conv1d(cin, cout, kernel, stride, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, kernel, 1, pad, bias=False)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = ZeroPadShortcut1d(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv1(torch.relu(self.bn1(x)))
        residual = self.conv2(torch.relu(self.bn2(residual)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return shortcut + residual


class ZeroPadShortcut1d(nn.Module):
    """The paper's parameter-free ``Downsample``: average-pool by ``stride``, then pad the new channels with zeros."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cout % cin:
            raise ValueError(f"a zero-padding shortcut needs cout to be a multiple of cin, got {cin} -> {cout}")
        self.pool = nn.AvgPool1d(stride, stride, ceil_mode=True) if stride > 1 else nn.Identity()
        self.expand = cout // cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return torch.cat([x] + [torch.zeros_like(x)] * (self.expand - 1), dim=1)


def _stage(cin: int, cout: int, blocks: int, stride: int, kernel: int) -> nn.Sequential:
    layers = [PreActBlock1d(cin, cout, stride, kernel)]
    layers += [PreActBlock1d(cout, cout, 1, kernel) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class PreActResNet1d(Backbone):
    """``depth`` = 6N + 2 (26: N = 4 blocks per stage); widths ``width`` x (1, 2, 4); stage strides 1, ``stride``,
    ``stride``. With the defaults: about 0.2 M parameters and, per 128-sample window, ~7.7 MFLOPs whose shares
    are front 35 %, stage2 32 %, stage3 32 % (the paper's 2-D network: 35 / 32 / 32)."""

    def __init__(self, channels: int, classes: int, width: int = 16, depth: int = 26, kernel: int = 5,
                 stride: int = 4, stem_kernel: int = 3):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6N + 2 with N >= 1 (e.g. 26), got {depth}")
        n = (depth - 2) // 6
        w = width
        stem = nn.Conv1d(channels, w, stem_kernel, 1, stem_kernel // 2, bias=False)
        self.front = nn.Sequential(OrderedDict(stem=stem, stage1=_stage(w, w, n, 1, kernel)))
        self.stage2 = _stage(w, 2 * w, n, stride, kernel)
        self.stage3 = _stage(2 * w, 4 * w, n, stride, kernel)
        self.neck = nn.Sequential(nn.BatchNorm1d(4 * w), nn.ReLU())
        self.fc = nn.Linear(4 * w, classes)
        for m in self.modules():  # the authors' initialisation: N(0, 2 / (kernel x out_channels))
            if isinstance(m, nn.Conv1d):
                m.weight.data.normal_(0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.out_channels)))

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.fc

    def blocks(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(front=self.front, stage2=self.stage2, stage3=self.stage3, neck=self.neck, fc=self.fc)
