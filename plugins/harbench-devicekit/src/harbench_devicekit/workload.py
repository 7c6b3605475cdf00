"""The adapt workload a method executed, read from its ``AdaptFacts``, in a form both the estimator and the
device agent's replay consume.

Why replay instead of running the method on the device: the harness core (Python 3.11) cannot run on JetPack 5
(Python 3.8), and accuracy is computed on the host anyway. What costs time and energy on the device is the
workload's shape: how many optimizer steps at which batch size through which trainable parameters, plus the
forward-only passes (validation, pseudo-labelling). The same model and trainable set replayed with random inputs
of the same shape cost the same.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from harbench import AdaptFacts


@dataclass(frozen=True)
class AdaptWorkload:
    """``optimizer_steps`` steps of ``batch_size`` windows through ``trainable``, then ``forward_only_samples``
    windows of inference in batches of ``eval_batch``."""

    optimizer_steps: int
    batch_size: int
    trainable: list[str]
    forward_only_samples: int
    eval_batch: int
    num_classes: int
    optimizer: str = "adam"
    lr: float = 1e-3
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.optimizer_steps == 0 and self.forward_only_samples == 0

    @property
    def eval_calls(self) -> int:
        return math.ceil(self.forward_only_samples / self.eval_batch) if self.forward_only_samples else 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_facts(facts: AdaptFacts, model: nn.Module, num_classes: int) -> "AdaptWorkload":
        """Derive the replayable workload; the average batch is backward samples per step (``fit`` drops
        single-window tail batches, so this is exact where ``batch_size`` alone is not)."""
        notes = []
        steps = int(facts.optimizer_steps)
        if steps == 0 and facts.backward_samples:
            steps = math.ceil(facts.backward_samples / max(facts.batch_size, 1))
            notes.append("optimizer_steps not reported: derived from backward_samples / batch_size")
        batch = round(facts.backward_samples / steps) if steps and facts.backward_samples else int(facts.batch_size)
        batch = max(batch, 1)
        trainable = list(facts.trainable)
        if steps and not trainable:
            trainable = [n for n, p in model.named_parameters() if p.requires_grad]
            notes.append("trainable set not reported: every parameter that requires grad")
        forward_only = max(int(facts.forward_samples) - int(facts.backward_samples), 0)
        # fit() validates once per epoch on the whole held-out set, so one forward call per epoch
        eval_batch = min(max(math.ceil(forward_only / max(int(facts.epochs), 1)), 1), 512) if forward_only else 1
        optimizer, lr = optimizer_and_lr(facts)
        if steps and optimizer is None:
            notes.append("optimizer not reported: adam assumed")
        return AdaptWorkload(
            optimizer_steps=steps, batch_size=batch, trainable=trainable, forward_only_samples=forward_only,
            eval_batch=eval_batch, num_classes=num_classes, optimizer=optimizer or "adam",
            lr=1e-3 if lr is None else lr, notes=notes,
        )


def optimizer_and_lr(facts: AdaptFacts) -> tuple[str | None, float | None]:
    """The typed ``AdaptFacts.optimizer`` / ``lr``; facts cached before those fields existed carried them in
    ``extra["optimizer"]`` / ``extra["lr"]``, which are read as a fallback."""
    extra = facts.extra or {}
    optimizer = getattr(facts, "optimizer", None) or extra.get("optimizer")
    lr = getattr(facts, "lr", None)
    if lr is None:
        lr = extra.get("lr")
    return (None if optimizer is None else str(optimizer)), (None if lr is None else float(lr))


def output_classes(model: nn.Module) -> int:
    """Classes of a classifier: the ``head`` of a harbench Backbone, else the last Linear layer."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head.out_features
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("cannot tell the number of classes: the model has no Linear layer")
    return linears[-1].out_features


class InputShapes:
    """Records the first (N, C, T) input each module sees while a method adapts.

    ``Hardware.run_adapt`` receives only a callable, yet the replay and the estimate need the window shape; the
    method runs its returned model on real windows while adapting, so the shape is read from that call.
    """

    def __init__(self) -> None:
        # weak keys: a module freed during adapt must not lend its record to a new module at the same address
        self.shapes: "weakref.WeakKeyDictionary[nn.Module, tuple[int, ...]]" = weakref.WeakKeyDictionary()

    def _hook(self, module: nn.Module, args: tuple) -> None:
        if module not in self.shapes and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 3:
            self.shapes[module] = tuple(args[0].shape[1:])

    @contextlib.contextmanager
    def recording(self) -> Iterator["InputShapes"]:
        self.shapes.clear()
        handle = nn.modules.module.register_module_forward_pre_hook(self._hook)
        try:
            yield self
        finally:
            handle.remove()

    def window_of(self, model: nn.Module) -> tuple[int, int] | None:
        shape = self.shapes.get(model)
        return None if shape is None else (int(shape[0]), int(shape[1]))
