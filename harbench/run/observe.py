"""What an adapt phase actually executed, observed while it runs (inside the sandbox's job process).

Estimated targets cost the adapt phase from its workload; a method that trains for 20 epochs and reports no
optimizer steps must not be estimated at the cost of one forward pass. The observer installs process-wide hooks
(harmless: the job's process is thrown away afterwards) and counts

* optimizer steps of every ``torch.optim`` optimizer, with its class, learning rate and the parameters stepped;
* windows through **root** module calls on (N, C, T) inputs (a call not nested in another module's forward), and
  the windows whose output a backward pass reached (a gradient hook on the output).

:meth:`Observer.apply` puts the observed counts into the result's :class:`~harbench.AdaptFacts` (the fields every
estimator reads) and keeps what the method reported, with a note when the two disagree.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from ..api import AdaptResult

_FIELDS = ("optimizer_steps", "forward_samples", "backward_samples")


class Observer:
    def __init__(self) -> None:
        self.optimizer_steps = 0
        self.forward_samples = 0
        self.backward_samples = 0
        self.backward_batches: collections.Counter[int] = collections.Counter()
        self.optimizers: set[str] = set()
        self.lr: float | None = None
        self.stepped: set[int] = set()
        self._depth = threading.local()
        self._handles: list[Any] = []

    # ------------------------------------------------------------------------------------------- hooks
    def _pre(self, module: nn.Module, args: tuple) -> None:
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        if depth == 0 and args and isinstance(args[0], torch.Tensor) and args[0].dim() == 3:
            self._depth.root = int(args[0].shape[0])
        elif depth == 0:
            self._depth.root = None

    def _post(self, module: nn.Module, args: tuple, output: Any) -> None:
        self._depth.n = max(getattr(self._depth, "n", 1) - 1, 0)
        if self._depth.n or getattr(self._depth, "root", None) is None:
            return
        n = self._depth.root
        self._depth.root = None
        self.forward_samples += n
        out = output if isinstance(output, torch.Tensor) else next(
            (o for o in (output if isinstance(output, (tuple, list)) else ()) if isinstance(o, torch.Tensor)), None)
        if out is not None and out.requires_grad:
            out.register_hook(lambda grad, n=n: self._backward(n))

    def _backward(self, n: int) -> None:
        self.backward_samples += n
        self.backward_batches[n] += 1

    def _step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.optimizer_steps += 1
        self.optimizers.add(type(optimizer).__name__.lower())
        for group in optimizer.param_groups:
            if self.lr is None and "lr" in group:
                self.lr = float(group["lr"])
            self.stepped.update(id(p) for p in group["params"] if p.grad is not None)

    def __enter__(self) -> "Observer":
        self._handles = [
            nn.modules.module.register_module_forward_pre_hook(self._pre),
            nn.modules.module.register_module_forward_hook(self._post, always_call=True),
            register_optimizer_step_post_hook(self._step),
        ]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # ------------------------------------------------------------------------------------------- facts
    def observed(self, model: nn.Module) -> dict[str, Any]:
        trainable = [n for n, p in model.named_parameters() if id(p) in self.stepped]
        batch = self.backward_batches.most_common(1)[0][0] if self.backward_batches else 0
        return {"optimizer_steps": self.optimizer_steps, "forward_samples": self.forward_samples,
                "backward_samples": self.backward_samples, "batch_size": batch, "trainable": trainable,
                "optimizer": sorted(self.optimizers)[0] if self.optimizers else None, "lr": self.lr}

    def apply(self, result: AdaptResult) -> None:
        """Replace the self-reported workload by the observed one; keep the report and say when they differ.

        ``forward_samples`` is taken from the observation only when the method reported fewer (methods may push
        windows through sub-modules, which root calls do not count)."""
        facts = result.facts
        seen = self.observed(result.model)
        reported = {f: getattr(facts, f) for f in _FIELDS}
        reported.update(batch_size=facts.batch_size, trainable=list(facts.trainable))
        notes = []
        for f in ("optimizer_steps", "backward_samples"):
            if reported[f] != seen[f]:
                notes.append(f"reported {reported[f]} {f.replace('_', ' ')}, observed {seen[f]}")
        facts.optimizer_steps = seen["optimizer_steps"]
        facts.backward_samples = seen["backward_samples"]
        facts.forward_samples = max(seen["forward_samples"], facts.forward_samples)
        if seen["batch_size"] and (not facts.batch_size or notes):
            facts.batch_size = seen["batch_size"]
        if seen["trainable"]:
            facts.trainable = seen["trainable"]
        if seen["optimizer"]:
            facts.optimizer, facts.lr = seen["optimizer"], seen["lr"]
        facts.extra["observed"] = {k: v for k, v in seen.items() if k != "trainable"}
        if notes:
            facts.extra["reported"] = {k: v for k, v in reported.items() if k != "trainable"}
            facts.extra["cost_check"] = "; ".join(notes)
