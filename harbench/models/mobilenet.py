"""A 1-D MobileNetV3: inverted bottlenecks, depthwise convolutions, squeeze-excitation and Hardswish.

``width`` scales every channel count, so one class yields both SMLDist's teacher (width ~4, ~1 M parameters)
and its student (width 1, ~0.1 M). Stage boundaries are fixed, so teacher and student expose stage anchors of
equal length.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .base import Backbone


def _ch(c: float) -> int:
    return max(8, int(round(c / 4)) * 4)


class SqueezeExcite1d(nn.Module):
    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.fc1 = nn.Conv1d(c, _ch(c / reduction), 1)
        self.fc2 = nn.Conv1d(_ch(c / reduction), c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=-1, keepdim=True)
        return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))


class InvertedResidual1d(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int, se: bool, hswish: bool):
        super().__init__()
        hidden = cin * expand
        act: type[nn.Module] = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv1d(cin, hidden, 1, bias=False), nn.BatchNorm1d(hidden), act()]
        layers += [
            nn.Conv1d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm1d(hidden),
            act(),
        ]
        if se:
            layers.append(SqueezeExcite1d(hidden))
        layers += [nn.Conv1d(hidden, cout, 1, bias=False), nn.BatchNorm1d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


# (expand, out channels at width 1, kernel, stride, squeeze-excite, hardswish) per block, grouped into stages
_STAGES = [
    [(1, 16, 3, 1, True, False), (4, 24, 3, 2, False, False), (3, 24, 3, 1, False, False)],
    [(3, 40, 5, 2, True, True), (3, 40, 5, 1, True, True)],
    [(4, 48, 5, 1, True, True), (4, 64, 5, 2, True, True), (4, 64, 5, 1, True, True)],
]


class MobileNet1d(Backbone):
    def __init__(self, channels: int, classes: int, width: float = 1.0, last: int = 128):
        super().__init__()
        cin = _ch(16 * width)
        self.stem = nn.Sequential(nn.Conv1d(channels, cin, 3, 1, 1, bias=False), nn.BatchNorm1d(cin), nn.Hardswish())
        stages = []
        for spec in _STAGES:
            blocks = []
            for expand, cout, k, s, se, hs in spec:
                cout = _ch(cout * width)
                blocks.append(InvertedResidual1d(cin, cout, expand, k, s, se, hs))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        hidden = _ch(last * width)
        self.neck = nn.Sequential(nn.Conv1d(cin, hidden, 1, bias=False), nn.BatchNorm1d(hidden), nn.Hardswish())
        self.classifier = nn.Linear(hidden, classes)

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.classifier

    @property
    def stage_channels(self) -> list[int]:
        return [s[-1].body[-1].num_features for s in (self.stage1, self.stage2, self.stage3)]

    def blocks(self) -> "OrderedDict[str, nn.Module]":
        front = nn.Sequential(self.stem, self.stage1)
        return OrderedDict(front=front, stage2=self.stage2, stage3=self.stage3, neck=self.neck, fc=self.classifier)

    def stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The three stage anchors (after stage 1, 2, 3) followed by the neck output."""
        x = self.stage1(self.stem(x))
        outs = [x]
        for stage in (self.stage2, self.stage3):
            x = stage(x)
            outs.append(x)
        outs.append(self.neck(x))
        return outs
