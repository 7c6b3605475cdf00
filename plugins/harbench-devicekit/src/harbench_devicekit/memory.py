"""Peak memory of the adapt phase and of batch-1 inference on a device, estimated from the traced workload.

Adapt (one optimizer step of the observed workload, the phase's high-water mark):

    weights (every parameter and buffer)
  + the batch (``batch_size`` windows)
  + activations: the peak of operator outputs alive during one training forward at that batch. It holds what
    autograd keeps for backward (``saved_mb``: the tensors saved by that forward, read with
    ``torch.autograd.graph.saved_tensors_hooks``, so only operators above the first trainable parameter keep any:
    TBFT's backward cut shows by construction; each storage once, parameters and the batch excluded) and the
    transient outputs of the frozen layers below, which are freed as the forward moves on
  + gradients of the trainable parameters (one copy)
  + optimizer state of the trainable parameters: Adam/AdamW 2 copies (first and second moments), SGD with momentum
    1, plain SGD 0, RMSprop/Adagrad 1.

Inference: weights + input + the largest set of operator outputs alive at once in one no-grad forward.

Not captured: the runtime itself (libtorch, Python: tens to hundreds of MB on a device), the allocator's slack and
fragmentation, temporary buffers inside operators (im2col, backward workspaces), and activations of forward-only
passes (validation) beyond one batch, and gradients of activations during backward (freed as it goes). It is a model: rows carry ``estimated`` like every estimate.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from harbench import LiveBytes

MB = 2.0**20

# copies of each trainable parameter an optimizer keeps (torch.optim's state tensors)
STATE_COPIES = {"adam": 2, "adamw": 2, "nadam": 2, "radam": 2, "adamax": 2, "rmsprop": 1, "adagrad": 1,
                "adadelta": 2, "sgd": 1}


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def optimizer_copies(optimizer: str, momentum: float | None = None) -> tuple[int, str]:
    """State copies per trainable parameter, and how that was decided."""
    name = (optimizer or "adam").lower()
    if name == "sgd":
        if momentum is None:
            return 1, "sgd: momentum not reported, assumed (harbench.make_optimizer's default 0.9): 1 copy"
        return (1, "sgd with momentum: 1 copy") if momentum else (0, "sgd without momentum: no state")
    if name in STATE_COPIES:
        return STATE_COPIES[name], f"{name}: {STATE_COPIES[name]} copies"
    return 2, f"{name}: unknown optimizer, assumed 2 copies (as Adam)"


@dataclass(frozen=True)
class AdaptMemory:
    """The parts of the adapt phase's peak memory, in MB."""

    weights_mb: float
    batch_mb: float
    activations_mb: float
    gradients_mb: float
    optimizer_mb: float
    batch_size: int
    saved_mb: float = 0.0  # of activations_mb: what autograd keeps for backward (the rest is transient)
    notes: list[str] = field(default_factory=list)

    @property
    def total_mb(self) -> float:
        return self.weights_mb + self.batch_mb + self.activations_mb + self.gradients_mb + self.optimizer_mb

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total_mb": self.total_mb}


def adapt_memory(model: nn.Module, x: torch.Tensor, num_classes: int, trainable: list[str] | None,
                 optimizer: str = "adam", momentum: float | None = None) -> AdaptMemory:
    """Peak memory of one optimizer step of ``model`` on batch ``x`` through ``trainable`` (None: every
    parameter); the model is deep-copied, so nothing of the caller's changes."""
    clone = copy.deepcopy(model)
    clone.train()
    names = set(trainable) if trainable is not None else {n for n, _ in clone.named_parameters()}
    held: set[int] = set()
    weights = grads = 0
    for name, param in clone.named_parameters():
        param.requires_grad_(name in names)
        weights += _nbytes(param)
        held.add(_ptr(param))
        if name in names:
            grads += _nbytes(param)
    for buf in clone.buffers():
        weights += _nbytes(buf)
        held.add(_ptr(buf))
    held.add(_ptr(x))
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _ptr(t)
        if key and key not in held:
            saved[key] = t.untyped_storage().nbytes()
        return t

    y = torch.zeros(x.shape[0], dtype=torch.long) % max(num_classes, 1)
    live = LiveBytes(held)
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), live:
            loss = nn.functional.cross_entropy(clone(x), y)
    finally:
        torch.set_num_threads(saved_threads)
    del loss
    copies, note = optimizer_copies(optimizer, momentum) if grads else (0, "nothing trainable: no optimizer state")
    saved_mb = sum(saved.values()) / MB
    return AdaptMemory(weights / MB, _nbytes(x) / MB, max(live.peak / MB, saved_mb), grads / MB,
                       copies * grads / MB, int(x.shape[0]), saved_mb, [note])


def inference_memory(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Weights, input and peak live activations (MB) of one no-grad forward of ``model`` on ``x``."""
    tensors = [*model.parameters(), *model.buffers()]
    live = LiveBytes([*tensors, x])
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), live:
            model(x)
    finally:
        model.train(was)
    weights = sum(_nbytes(t) for t in tensors) / MB
    return {"weights_mb": weights, "input_mb": _nbytes(x) / MB, "activations_mb": live.peak / MB,
            "total_mb": weights + _nbytes(x) / MB + live.peak / MB}
