"""Trace a model's executed operators once, with FLOPs and bytes moved per operator, for the roofline estimator.

Why per operator rather than a FLOP total: batch-1 HAR models are dominated by per-operator overheads and
memory traffic (a 1-D convolution on 128 samples is tiny), so the estimator needs the operator count and each
operator's bytes as much as its FLOPs. FLOPs come from ``torch.utils.flop_counter``'s formula registry (the one
``FlopCounterMode`` uses, so totals agree with ``harbench.flops_per_window``); bytes are the sizes of the operator's
tensor inputs and outputs. Views (reshape, transpose, detach...) move no data and are not counted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

_FREE_OPS = {"detach", "alias", "lift_fresh", "_to_copy_noop", "empty", "empty_like", "zeros_like", "ones_like"}


@dataclass(frozen=True)
class OpCost:
    """One executed operator: its name, FLOPs (0 for element-wise ops without a formula), bytes touched, and the
    phase that issued it. Optimizer updates are issued one small operator at a time from Python, so their
    per-operator overhead differs from the forward/backward graph's and is calibrated separately."""

    op: str
    flops: float
    bytes: float
    phase: str = "graph"  # graph (forward and backward) | optimizer
    kind: str = ""  # convolutions: "pointwise" (1x1 kernel), "spatial" or "grouped" (groups > 1)


@dataclass
class OpTrace:
    """The operators one call executed, in order."""

    ops: list[OpCost] = field(default_factory=list)

    @property
    def flops(self) -> float:
        return sum(o.flops for o in self.ops)

    @property
    def bytes(self) -> float:
        return sum(o.bytes for o in self.ops)

    def count(self, phase: str) -> int:
        return sum(1 for o in self.ops if o.phase == phase)

    def __len__(self) -> int:
        return len(self.ops)

    def scaled(self, times: float) -> "OpTrace":
        """The same operator list repeated ``times`` (an integer count of calls)."""
        return OpTrace(self.ops * int(times))

    def __add__(self, other: "OpTrace") -> "OpTrace":
        return OpTrace(self.ops + other.ops)


def _tensor_bytes(values) -> float:
    seen: set[int] = set()
    total = 0.0
    for value in tree_flatten(values)[0]:
        if isinstance(value, torch.Tensor) and id(value) not in seen:
            seen.add(id(value))
            total += value.numel() * value.element_size()
    return total


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.trace = OpTrace()
        self.phase = "graph"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if getattr(func, "is_view", False) or name in _FREE_OPS:
            return out
        formula = flop_registry.get(func.overloadpacket)
        flops = float(formula(*args, **kwargs, out_val=out)) if formula is not None else 0.0
        self.trace.ops.append(OpCost(name, flops, _tensor_bytes((args, kwargs)) + _tensor_bytes(out), self.phase,
                                     _conv_kind(name, args)))
        return out


def _conv_kind(name: str, args: tuple) -> str:
    """The efficiency class of a convolution: boards run 1x1, k x k and grouped kernels at different fractions of
    peak (a 1x1 convolution is a plain GEMM; k x k ones pay for im2col or use Winograd; grouped ones are
    memory-bound)."""
    if name not in ("convolution", "_convolution") or len(args) < 2 or not isinstance(args[1], torch.Tensor):
        return ""
    weight = args[1]
    groups = args[8] if len(args) > 8 and isinstance(args[8], int) else 1
    if groups > 1:
        return "grouped"
    return "pointwise" if weight[0, 0].numel() == 1 else "spatial"


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Trace on one thread: the operator list does not depend on it, and tiny operators run with several
    threads on a busy host spend milliseconds waiting for each other."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def trace_forward(model: nn.Module, x: torch.Tensor) -> OpTrace:
    """Operators of one inference call (eval mode, no autograd) on input ``x``."""
    was = model.training
    model.eval()
    recorder = _Recorder()
    try:
        with _one_thread(), torch.no_grad(), recorder:
            model(x)
    finally:
        model.train(was)
    return recorder.trace


def trace_train_step(
    model: nn.Module, x: torch.Tensor, num_classes: int, trainable: list[str] | None = None, optimizer: str = "adam"
) -> OpTrace:
    """Operators of one optimizer step: forward, cross-entropy, backward through ``trainable`` and the update.

    The model is deep-copied so tracing never changes the caller's weights or BatchNorm statistics.
    """
    import copy

    clone = copy.deepcopy(model)
    clone.train()
    names = set(trainable) if trainable is not None else {n for n, _ in clone.named_parameters()}
    params = []
    for name, param in clone.named_parameters():
        param.requires_grad_(name in names)
        if name in names:
            params.append(param)
    opt = (torch.optim.SGD(params, lr=1e-3, momentum=0.9) if optimizer == "sgd" else torch.optim.Adam(params, lr=1e-3)) if params else None
    y = torch.zeros(x.shape[0], dtype=torch.long) % max(num_classes, 1)
    recorder = _Recorder()
    with _one_thread(), recorder:
        loss = nn.functional.cross_entropy(clone(x), y)
        if opt is not None:
            loss.backward()
            recorder.phase = "optimizer"
            opt.step()
    return recorder.trace
