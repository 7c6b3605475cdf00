"""Teacher and student networks, in two architectures (``architecture``):

* ``code`` (default): the authors' TASNeModel (a 1-D MobileNetV3 of inverted bottlenecks with SELU/Hardswish and
  squeeze-excitation, stem stride 2, neck ``pointwise conv -> BN -> Hardswish -> average pool -> Hardswish``) built
  from the layer tables of ``examples/train_realworld.toml``, every channel count divided by ``channel_divisor``
  and rounded with the code's ``make_divisible``. Teacher (15 bottlenecks) and student (10) put their **anchors at
  equal widths and lengths**; the code distils the first ``#anchors - 1 = 2`` of them **without adapters**, and
  not the neck. The neck is equally wide in both, so the head can be copied.
* ``harbench``: harbench's width-scaled ``MobileNet1d`` (teacher ``teacher_width``, student ``student_width``,
  shared ``neck``), the plugin's earlier form: three stage anchors of different widths, bridged by learned 1x1
  adapters (:class:`StageAdapters`, FitNets-style, discarded after distillation).

``distill_neck=True`` adds the neck's output (before pooling) as a last anchor in either architecture.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
from torch import nn

from harbench import Backbone, MobileNet1d

from .heads import IntuitionMemoryHead

ARCHITECTURES = ("code", "harbench")

# The code's RealWorld tables: (kernel, expansion, in, out, squeeze-excite, activation, stride, anchor)
CODE_TEACHER = (
    (3, 64, 64, 64, True, "selu", 2, False), (3, 288, 64, 128, False, "selu", 2, False),
    (3, 352, 128, 128, False, "selu", 1, False), (5, 384, 128, 256, True, "hswish", 2, False),
    (7, 480, 256, 256, True, "selu", 1, False), (5, 480, 256, 256, True, "selu", 1, True),
    (3, 960, 256, 512, False, "hswish", 2, False), (3, 800, 512, 512, False, "hswish", 1, False),
    (3, 736, 512, 512, False, "hswish", 1, False), (3, 736, 512, 512, False, "hswish", 1, False),
    (3, 1920, 512, 1024, True, "hswish", 1, True), (3, 2688, 1024, 1024, True, "hswish", 1, False),
    (5, 2688, 1024, 2048, True, "hswish", 2, False), (7, 3840, 2048, 2048, True, "hswish", 1, True),
    (5, 3840, 2048, 2048, True, "hswish", 1, False),
)
CODE_STUDENT = (
    (3, 64, 64, 64, True, "selu", 2, False), (5, 352, 64, 128, False, "selu", 2, False),
    (5, 384, 128, 256, True, "hswish", 2, False), (9, 480, 256, 256, True, "selu", 1, True),
    (3, 960, 256, 512, False, "hswish", 1, False), (5, 800, 512, 512, False, "hswish", 2, False),
    (5, 1920, 512, 1024, True, "hswish", 1, True), (3, 2688, 1024, 1024, True, "hswish", 1, False),
    (5, 2688, 1024, 2048, True, "hswish", 2, True), (9, 3840, 2048, 2048, True, "hswish", 1, False),
)
CODE_NECK = 512


def make_divisible(v: float, divisor: int = 8) -> int:
    """The code's (MobileNet's) channel rounding: nearest multiple of ``divisor``, never below 90 % of ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild a network from its state_dict (it travels in ``MethodState.meta``)."""

    channels: int
    classes: int
    role: str = "student"  # teacher | student
    architecture: str = "code"
    channel_divisor: int = 8  # code architecture
    width: float = 1.0  # harbench architecture
    neck: int = 256  # harbench architecture (the code's neck is 512 / channel_divisor)
    memory_form: str = "code"
    memory_slots: int = 32
    memory_dim: int = 64
    update_steps: int = 2
    distill_neck: bool = False

    def to_meta(self) -> dict:
        return asdict(self)


class _SqueezeExcitation(nn.Module):
    """The code's SE: average pool, Linear(c, c/4) -> ReLU -> Linear(c/4, c) (no biases) -> hard sigmoid."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=-1))[..., None]


class _Bottleneck(nn.Module):
    """The code's Bottleneck: pw expand -> BN -> act, dw -> BN -> SE -> act, pw project -> BN (+ residual)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int, se: bool, act: str):
        super().__init__()
        Act = nn.SELU if act == "selu" else nn.Hardswish
        self.sequential = nn.Sequential(
            nn.Conv1d(cin, expansion, 1, bias=False), nn.BatchNorm1d(expansion), Act(),
            nn.Conv1d(expansion, expansion, kernel, stride, (kernel - 1) // 2, groups=expansion, bias=False),
            nn.BatchNorm1d(expansion), _SqueezeExcitation(expansion) if se else nn.Identity(), Act(),
            nn.Conv1d(expansion, cout, 1, bias=False), nn.BatchNorm1d(cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.sequential(x)
        return x + out if self.residual else out


class CodeNet(Backbone):
    """The code's TASNeModel, scaled: stem, bottlenecks (anchors flagged as in the tables), neck, SIMH head."""

    def __init__(self, config: NetworkConfig):
        super().__init__()
        self.config = config
        d = config.channel_divisor
        table = CODE_TEACHER if config.role == "teacher" else CODE_STUDENT
        stem = make_divisible(config.channels)
        self.stem = nn.Sequential(nn.Conv1d(config.channels, stem, 3, 2, 1, bias=False), nn.BatchNorm1d(stem),
                                  nn.Hardswish())
        blocks, self.anchor_blocks, cin = [], [], stem
        for i, (k, e, _cin, cout, se, act, stride, anchor) in enumerate(table):
            cout = make_divisible(cout / d)
            blocks.append(_Bottleneck(cin, cout, k, stride, make_divisible(e / d), se, act))
            cin = cout
            if anchor:
                self.anchor_blocks.append(i)
        self.bottlenecks = nn.Sequential(*blocks)
        neck = make_divisible(CODE_NECK / d)
        self.neck = nn.Sequential(nn.Conv1d(cin, neck, 1, bias=False), nn.BatchNorm1d(neck), nn.Hardswish())
        self.pool_act = nn.Hardswish()
        self.classifier = IntuitionMemoryHead(neck, config.classes, config.memory_form, config.memory_slots,
                                              config.memory_dim, config.update_steps)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        """TASNeModel's init: conv kaiming-normal (fan_out), BN 1/0, every Linear N(0, 0.01) with zero bias;
        the Hopfield value projection is a bare Parameter there, so it keeps hflayers' N(0, 0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        memory = self.classifier.memory
        if hasattr(memory, "value"):
            nn.init.normal_(memory.value.weight, 0.0, 0.02)

    @property
    def head(self) -> IntuitionMemoryHead:  # type: ignore[override]
        return self.classifier

    def blocks(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(stem=self.stem, bottlenecks=self.bottlenecks, neck=self.neck, fc=self.classifier)

    @property
    def num_anchors(self) -> int:
        """The code distils stages 0 .. num_stages-1 with num_stages = #anchors - 1; +1 with ``distill_neck``."""
        return len(self.anchor_blocks) - 1 + int(self.config.distill_neck)

    @property
    def anchor_channels(self) -> list[int]:
        chans = [self.bottlenecks[i].sequential[-1].num_features for i in self.anchor_blocks[:-1]]
        return chans + ([self.neck[1].num_features] if self.config.distill_neck else [])

    def anchor(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """Stage ``index``'s output, computing nothing deeper (the code's ``model.stage(index)``)."""
        if not 0 <= index < self.num_anchors:
            raise IndexError(f"anchor index {index} out of range 0..{self.num_anchors - 1}")
        x = self.stem(x)
        stages = self.anchor_blocks[:-1]
        if index < len(stages):
            return self.bottlenecks[: stages[index] + 1](x)
        return self.neck(self.bottlenecks(x))

    def anchors(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every distilled anchor in one pass."""
        x, outs, stages = self.stem(x), [], self.anchor_blocks[:-1]
        for i, block in enumerate(self.bottlenecks):
            x = block(x)
            if i in stages:
                outs.append(x)
        if self.config.distill_neck:
            outs.append(self.neck(x))
        return outs

    def stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.bottlenecks(self.stem(x))
        return [x, self.neck(x)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool_act(self.neck(self.bottlenecks(self.stem(x))).mean(dim=-1))


class SMLNet(MobileNet1d):
    """harbench's MobileNet1d whose linear classifier is replaced by the intuition-memory head."""

    def __init__(self, config: NetworkConfig):
        super().__init__(config.channels, config.classes, width=config.width, last=config.neck / config.width)
        self.config = config
        neck_width = self.neck[1].num_features
        if neck_width != config.neck:
            raise ValueError(f"neck width {neck_width} != requested {config.neck}; use a multiple of 4")
        self.classifier = IntuitionMemoryHead(neck_width, config.classes, config.memory_form, config.memory_slots,
                                              config.memory_dim, config.update_steps)

    @property
    def num_anchors(self) -> int:
        return 3 + int(self.config.distill_neck)

    @property
    def anchor_channels(self) -> list[int]:
        return [*self.stage_channels, self.config.neck][: self.num_anchors]

    def anchor(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """The output of stage anchor ``index``, computing nothing deeper."""
        if not 0 <= index < self.num_anchors:
            raise IndexError(f"anchor index {index} out of range 0..{self.num_anchors - 1}")
        x = self.stem(x)
        for i, part in enumerate((self.stage1, self.stage2, self.stage3, self.neck)):
            x = part(x)
            if i == index:
                return x
        raise AssertionError("unreachable")

    def anchors(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.stage_outputs(x)[: self.num_anchors]


Network = CodeNet | SMLNet


def build_network(config: NetworkConfig) -> Network:
    if config.architecture == "code":
        return CodeNet(config)
    if config.architecture == "harbench":
        return SMLNet(config)
    raise ValueError(f"unknown architecture {config.architecture!r}; expected one of {ARCHITECTURES}")


class StageAdapters(nn.Module):
    """One 1x1 convolution per anchor mapping student channels to teacher channels (identity where equal)."""

    def __init__(self, student_channels: list[int], teacher_channels: list[int]):
        super().__init__()
        self.maps = nn.ModuleList(
            nn.Identity() if s == t else nn.Conv1d(s, t, 1, bias=False)
            for s, t in zip(student_channels, teacher_channels, strict=True)
        )

    @property
    def trainable(self) -> bool:
        return any(True for _ in self.parameters())

    def forward(self, features: torch.Tensor, index: int) -> torch.Tensor:
        return self.maps[index](features)


def state_tensors(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """A model's state_dict as independent contiguous tensors, ready for safetensors."""
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def load_network(tensors: dict[str, torch.Tensor], prefix: str, config: NetworkConfig) -> Network:
    model = build_network(config)
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    model.load_state_dict(own)
    model.eval()
    return model
