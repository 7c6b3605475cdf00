"""Teacher and student: harbench's width-scaled 1-D MobileNetV3 with the intuition-memory head on a shared neck.

Both networks have four *stage anchors* of equal length: the outputs of stages 1-3 and of the neck. Stage
widths scale with ``width`` and so differ between teacher and student; :class:`StageAdapters` bridges them with
1x1 convolutions (FitNets-style regressors, used only while distilling and then discarded). The neck width is set
explicitly and kept equal in both networks, so the neck anchor needs no adapter and the teacher's head can be
copied into the student verbatim (memory distillation), as the paper's code does with its 512-wide neck.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from harbench import MobileNet1d

from .heads import IntuitionMemoryHead

NUM_ANCHORS = 4  # stage1, stage2, stage3, neck


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a network from its state_dict (it travels in ``MethodState.meta``)."""

    channels: int
    classes: int
    width: float
    neck: int = 256
    memory_slots: int = 32
    memory_dim: int = 64
    update_steps: int = 2

    def to_meta(self) -> dict:
        return asdict(self)


class SMLNet(MobileNet1d):
    """harbench's MobileNet1d whose linear classifier is replaced by the intuition-memory head."""

    def __init__(self, config: NetworkConfig):
        super().__init__(config.channels, config.classes, width=config.width, last=config.neck / config.width)
        self.config = config
        neck_width = self.neck[1].num_features
        if neck_width != config.neck:
            raise ValueError(f"neck width {neck_width} != requested {config.neck}; use a multiple of 4")
        self.classifier = IntuitionMemoryHead(
            neck_width, config.classes, config.memory_slots, config.memory_dim, config.update_steps
        )

    @property
    def anchor_channels(self) -> list[int]:
        return [*self.stage_channels, self.config.neck]

    def anchor(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """The output of stage anchor ``index`` (0-3), computing nothing deeper (the code's ``model.stage(s)``)."""
        x = self.stem(x)
        for i, part in enumerate((self.stage1, self.stage2, self.stage3, self.neck)):
            x = part(x)
            if i == index:
                return x
        raise IndexError(f"anchor index {index} out of range 0..{NUM_ANCHORS - 1}")


class StageAdapters(nn.Module):
    """One 1x1 convolution per anchor mapping student channels to teacher channels (identity where equal)."""

    def __init__(self, student_channels: list[int], teacher_channels: list[int]):
        super().__init__()
        self.maps = nn.ModuleList(
            nn.Identity() if s == t else nn.Conv1d(s, t, 1, bias=False)
            for s, t in zip(student_channels, teacher_channels, strict=True)
        )

    def forward(self, features: torch.Tensor, index: int) -> torch.Tensor:
        return self.maps[index](features)


def state_tensors(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """A model's state_dict as independent contiguous tensors, ready for safetensors."""
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def load_network(tensors: dict[str, torch.Tensor], prefix: str, config: NetworkConfig) -> SMLNet:
    model = SMLNet(config)
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    model.load_state_dict(own)
    model.eval()
    return model
