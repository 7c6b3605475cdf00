"""What every backbone exposes, so methods can address parts of a model without knowing its class."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections import OrderedDict

import torch
from torch import nn


class Backbone(nn.Module, metaclass=ABCMeta):
    """A HAR classifier split into named blocks, ending in a linear ``head``.

    ``blocks()`` are in forward order and partition the parameters: TBFT fine-tunes them one at a time,
    SMLDist distils ``stage_outputs``, DUET and CRoP swap or mix the ``head``.
    """

    head: nn.Module  # usually a Linear; methods may install other heads, so core code must not assume linearity

    @abstractmethod
    def blocks(self) -> "OrderedDict[str, nn.Module]": ...

    def stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of every block before the head, in order."""
        outs = []
        for name, block in self.blocks().items():
            if block is self.head:
                break
            x = block(x)
            outs.append(x)
        return outs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled vector the head classifies."""
        return self.stage_outputs(x)[-1].mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
