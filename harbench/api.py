"""The contract between the harness and its plugins: typed containers and the four plugin interfaces.

Everything a plugin may rely on is defined here and re-exported by ``harbench/__init__.py``. The runner,
the store and the CLI are deliberately absent: a plugin never sees them.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping, Sequence

import torch

from .params import Param, ParamValues

Mode = Literal["measured", "estimated"]
DriftType = Literal["input", "feature", "output"]


# --------------------------------------------------------------------------------------------- data containers


@dataclass
class Windows:
    """A batch of sensor windows with enough provenance to prove that splits never overlap in time.

    ``recording`` identifies one continuous recording and ``start`` is the window's first sample in it: two
    windows overlap exactly when they share a recording and their sample ranges intersect.
    ``y`` is ``None`` when labels are withheld (label-free methods never receive them).
    """

    x: torch.Tensor  # (N, channels, T) float32
    y: torch.Tensor | None  # (N,) int64
    recording: torch.Tensor  # (N,) int64
    start: torch.Tensor  # (N,) int64
    user: torch.Tensor  # (N,) int64 index into DatasetInfo.users
    context: torch.Tensor  # (N,) int64 index into DatasetInfo.contexts

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.x.dim() != 3:
            raise ValueError(f"Windows.x must be (N, channels, T), got shape {tuple(self.x.shape)}")
        for name in ("y", "recording", "start", "user", "context"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(f"Windows.{name} must have shape ({n},), got {tuple(value.shape)}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: torch.Tensor | Sequence[int]) -> "Windows":
        index = torch.as_tensor(index, dtype=torch.long)
        return Windows(
            x=self.x[index],
            y=None if self.y is None else self.y[index],
            recording=self.recording[index],
            start=self.start[index],
            user=self.user[index],
            context=self.context[index],
        )

    def without_labels(self) -> "Windows":
        return dataclasses.replace(self, y=None)

    @staticmethod
    def concat(parts: Sequence["Windows"]) -> "Windows":
        labelled = all(p.y is not None for p in parts)
        return Windows(
            x=torch.cat([p.x for p in parts]),
            y=torch.cat([p.y for p in parts]) if labelled else None,
            recording=torch.cat([p.recording for p in parts]),
            start=torch.cat([p.start for p in parts]),
            user=torch.cat([p.user for p in parts]),
            context=torch.cat([p.context for p in parts]),
        )


@dataclass(frozen=True)
class ContextInfo:
    """A named recording condition; ``drift`` says what kind of shift it applies relative to the population."""

    name: str
    drift: DriftType | None = None
    description: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    channels: int
    window: int  # samples per window
    rate_hz: float
    classes: tuple[str, ...]
    users: tuple[str, ...]
    contexts: tuple[ContextInfo, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def context(self, name: str) -> ContextInfo:
        for c in self.contexts:
            if c.name == name:
                return c
        raise KeyError(f"unknown context {name!r}; known: {[c.name for c in self.contexts]}")


@dataclass
class TargetSplit:
    """One personalization target. Only ``adapt`` ever reaches a method (see :class:`UserData`)."""

    user: str
    adapt_context: str
    unseen_contexts: tuple[str, ...]
    adapt: Windows
    test_seen: Windows
    test_unseen: Windows


@dataclass
class Splits:
    info: DatasetInfo
    population: Windows
    targets: dict[str, TargetSplit]


@dataclass(frozen=True)
class UserData:
    """What a method sees of a target user: the personal data of one context, nothing else.

    Built by the harness from a :class:`TargetSplit`; the test windows are not reachable from here, which makes
    using the unseen context structurally impossible. ``adapt.y`` is ``None`` for label-free methods.
    """

    user: str
    context: ContextInfo
    adapt: Windows


# ---------------------------------------------------------------------------------------------- method types


@dataclass
class MethodContext:
    """Run-time facts a method may use. ``seed`` drives all of the method's randomness."""

    seed: int
    info: DatasetInfo
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    hardware: HardwareInfo | None = None  # the target the adapt phase runs on (None during prepare)
    radio_joules_per_byte: float | None = None  # the target's device<->cloud transfer energy, when known

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + salt)


@dataclass
class MethodState:
    """What ``prepare`` hands to ``adapt``: tensors (cached as safetensors) and JSON-able metadata."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class AdaptFacts:
    """What an ``adapt`` call executed: enough to count its cost and to replay it on a device.

    ``forward_samples`` and ``backward_samples`` count windows pushed through forward and backward passes;
    ``trainable`` names the parameters that were given to an optimizer. ``flops`` is the adapt phase's own FLOP
    count when the method computes it (forward + backward), otherwise the harness leaves it empty.
    ``optimizer`` (``"adam"``, ``"sgd"``, ...) and ``lr`` are the optimizer that took the steps and its learning
    rate: device estimators replay the workload with them. When it observed an optimizer stepping, the harness
    records that one and its learning rate (what was executed, not what was reported). ``extra`` holds anything
    else a method wants recorded.
    """

    params_trained: int = 0
    optimizer_steps: int = 0
    forward_samples: int = 0
    backward_samples: int = 0
    batch_size: int = 0
    epochs: int = 0
    trainable: list[str] = field(default_factory=list)
    flops: float | None = None
    optimizer: str | None = None
    lr: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class AdaptResult:
    model: torch.nn.Module
    facts: AdaptFacts = field(default_factory=AdaptFacts)


class Plugin(ABC):
    """Shared by the four kinds: a registered name, declared parameters, and resolved values in ``self.params``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: Any) -> None:
        self.params = ParamValues.resolve(self.parameters, params, owner=self.name)


class Method(Plugin):
    """A personalization method: ``prepare`` once on the cloud (host), ``adapt`` once per user on the device.

    ``backbone`` names the generic model the harness trains for it (see ``harbench list backbones``).
    ``requires`` lists capabilities, e.g. ``"blocks"`` (a block-structured backbone) or ``"context-drift"``.
    ``label_free`` methods receive ``user.adapt.y is None``.
    """

    backbone: ClassVar[str] = "resnet1d"
    requires: ClassVar[frozenset[str]] = frozenset()
    label_free: ClassVar[bool] = False

    def skip(self, info: DatasetInfo) -> str | None:
        """Return a reason when this method cannot run on the dataset, else ``None``."""
        return None

    def prepare(self, generic: torch.nn.Module, population: Windows, ctx: MethodContext) -> MethodState:
        return MethodState()

    @abstractmethod
    def adapt(
        self, generic: torch.nn.Module, state: MethodState, user: UserData, ctx: MethodContext
    ) -> AdaptResult:
        """Return the personalized model. Must not modify ``generic`` (it is shared across users)."""


class Dataset(Plugin):
    @abstractmethod
    def describe(self) -> DatasetInfo: ...

    @abstractmethod
    def load(self, seed: int, targets: Sequence[str]) -> Splits:
        """Build the population and one :class:`TargetSplit` per target user, deterministically per seed."""

    def size_hint(self) -> int | None:
        """An upper bound on the windows ``load`` will hold in memory, when it is cheap to know (None: unknown).

        The harness multiplies it by channels x window x 4 bytes and refuses, before anything runs, a suite whose
        data would not fit (``max_memory_gb``), instead of letting it exhaust the machine."""
        return None

    def check_targets(self, targets: Sequence[str]) -> str | None:
        """Why this set of target users cannot be personalised together (None: it can).

        Called when a suite is validated, before anything runs, with users ``describe()`` lists: a dataset whose
        population depends on who the targets are (e.g. a crossed split whose targets must share one group)
        refuses a bad set here, in one line, instead of failing every job of the run."""
        return None


# -------------------------------------------------------------------------------------------- hardware types


@dataclass(frozen=True)
class HardwareInfo:
    name: str
    processor: str
    memory_gb: float
    mode: Mode
    power: Mapping[str, float] = field(default_factory=dict)  # e.g. {"idle_w": 2.7, "load_w": 6.4}
    extra: Mapping[str, Any] = field(default_factory=dict)
    # memory an adapt phase may use on the device (MB); None: not limited (the host itself). A job whose
    # adapt_peak_mb exceeds it is skipped with "needs N MB, device has M MB" (suite setting memory_check)
    usable_memory_mb: float | None = None


@dataclass
class PhaseCost:
    """Time and energy of one phase. ``joules_net`` subtracts idle power measured in the same process.

    ``peak_mb``: the phase's peak memory (MB) above what the process held when it started, measured or estimated
    (None: unknown); ``extra["memory"]`` says how it was obtained."""

    seconds: float
    joules: float | None
    joules_net: float | None
    energy_method: str
    extra: dict[str, Any] = field(default_factory=dict)
    peak_mb: float | None = None


@dataclass
class InferenceCost:
    """Batch-1 inference: the raw latency samples (seconds) and energy per window; ``peak_mb`` is the memory
    one batch-1 inference needs (weights, input and activations, MB; None: unknown)."""

    latency_s: list[float]
    joules_per_window: float | None
    joules_net_per_window: float | None
    energy_method: str
    extra: dict[str, Any] = field(default_factory=dict)
    peak_mb: float | None = None


class Hardware(Plugin):
    """A target that runs (``measured``) or models (``estimated``) the adapt phase and batch-1 inference.

    ``measures_host``: its measurements happen on this host, so parallel work must pause while it measures.
    """

    measures_host: ClassVar[bool] = False

    @abstractmethod
    def describe(self) -> HardwareInfo: ...

    @abstractmethod
    def run_adapt(self, adapt: Callable[[], AdaptResult]) -> tuple[AdaptResult, PhaseCost]:
        """Run ``adapt`` (or run it and model its cost) and return its result with the phase's cost."""

    @abstractmethod
    def run_inference(self, model: torch.nn.Module, example: torch.Tensor) -> InferenceCost:
        """Measure or model batch-1 inference of ``model`` on ``example`` (shape (1, channels, T))."""

    def radio_joules_per_byte(self) -> float | None:
        """Energy to move one byte between device and cloud, for methods that communicate (None = unknown)."""
        return None


# ---------------------------------------------------------------------------------------------- metric types


@dataclass
class JobOutputs:
    """Everything a finished job produced; metrics are functions of this."""

    info: DatasetInfo
    y_seen: torch.Tensor
    pred_seen: torch.Tensor
    y_unseen: torch.Tensor
    pred_unseen: torch.Tensor
    generic_acc_seen: float | None
    adapt: PhaseCost
    facts: AdaptFacts
    inference: InferenceCost
    model_stats: Mapping[str, float]  # params, model_kb, flops
    # class probabilities (softmax of the personalized model's logits), (N, C) per test split; None when the
    # caller has none (JobOutputs built before they existed), so calibration metrics report nothing
    prob_seen: torch.Tensor | None = None
    prob_unseen: torch.Tensor | None = None


class Metric(Plugin):
    unit: ClassVar[str] = ""
    higher_is_better: ClassVar[bool | None] = True  # None: neither (e.g. a label)

    @abstractmethod
    def compute(self, out: JobOutputs) -> float | str | None: ...
