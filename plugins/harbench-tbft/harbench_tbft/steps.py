"""Cost of one training step per block, as the paper measures it, beside the whole adapt phase.

The paper's energy table (``power.py`` in the authors' code) times **one** training step of **one** sample per
block on a Raspberry Pi. harbench's ``cpu`` target measures the whole adapt call instead (every epoch, the
validation passes, checkpoint copies). Two per-step figures complement it:

* :class:`StepTimer` times every real optimizer step inside ``adapt`` (from the start of the loss's forward pass
  to the end of ``optimizer.step()``), at the recipe's batch size, under the hardware target's measurement; the
  median goes to ``AdaptFacts.extra["step_s"]``.
* :func:`time_steps` is ``power.py``'s protocol on this host: for every block, warm-up steps, then repeated single
  training steps at batch 1 and at the recipe's batch, median CPU seconds per step (``harbench tbft-steps``).

:func:`block_shares` gives each block's share of the forward FLOPs and of the backward FLOPs of full
fine-tuning, which is what bounds the per-step saving of training one block.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from harbench import Backbone, make_optimizer

from .blocks import SINGLE_BLOCKS, cut_loss, named_blocks, plan_for, train_mode
from .flops import StepFlops
from .recipes import Recipe

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class StepTimer:
    """Durations of the optimizer steps of a :func:`harbench.fit` run: ``wrap`` the loss and ``attach`` the
    optimizer; each step runs from the loss's forward pass to the end of ``optimizer.step()``.

    Both wall time (``durations``) and this thread's CPU time (``cpu``) are kept: on a shared machine the wall
    time of a step includes the time the process waited for a core, its CPU time does not (with one torch
    thread, as the ``cpu`` target runs, the thread's CPU time is the step's compute).
    """

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.cpu: list[float] = []
        self._start: tuple[float, float] | None = None

    def wrap(self, loss_fn: LossFn) -> LossFn:
        def timed(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if model.training:  # validation passes (eval mode) are not steps
                self._start = (time.perf_counter(), time.thread_time())
            return loss_fn(model, x, y)

        return timed

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        def stop(*_: object) -> None:
            if self._start is not None:
                self.durations.append(time.perf_counter() - self._start[0])
                self.cpu.append(time.thread_time() - self._start[1])
                self._start = None

        optimizer.register_step_post_hook(stop)

    @staticmethod
    def _median(values: list[float]) -> float | None:
        steps = values[1:] or values  # the first step (allocation, warm-up) is left out when there are others
        return statistics.median(steps) if steps else None

    def median(self) -> float | None:
        """Median wall time of a step."""
        return self._median(self.durations)

    def median_cpu(self) -> float | None:
        """Median CPU time of a step (this thread)."""
        return self._median(self.cpu)


def block_shares(model: Backbone, step: StepFlops) -> dict[str, dict[str, float]]:
    """Per block: its share of one window's forward FLOPs and of the backward FLOPs of full fine-tuning.

    In full fine-tuning every conv/linear layer computes a weight gradient and, except the very first one (its
    input is the data), an input gradient, each as many FLOPs as its forward pass (see :mod:`.flops`).
    """
    owner: dict[str, str] = {}
    blocks = named_blocks(model)
    for block_name, block in blocks.items():
        ids = {id(m) for m in block.modules()}
        for name, module in model.named_modules():
            if id(module) in ids:
                owner.setdefault(name, block_name)
    forward = {b: 0.0 for b in blocks}
    backward = {b: 0.0 for b in blocks}
    for i, layer in enumerate(step.layers):
        block = owner[layer.name]
        forward[block] += layer.forward
        backward[block] += layer.forward * (2.0 if i > 0 else 1.0)
    total_f, total_b = sum(forward.values()) or 1.0, sum(backward.values()) or 1.0
    return {b: {"forward": forward[b] / total_f, "backward": backward[b] / total_b} for b in blocks}


@dataclass(frozen=True)
class StepTime:
    block: str  # a single block, "all", or "forward" (a forward pass of the whole network in train mode)
    batch: int
    median_s: float  # CPU time of this thread per step (robust to waiting for a core on a shared machine)
    q1_s: float
    q3_s: float
    repeats: int
    wall_median_s: float = float("nan")


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def time_steps(model: Backbone, recipe: Recipe, batches: tuple[int, ...] = (1, 16), *, channels: int | None = None,
               window: int = 128, classes: int | None = None, repeats: int = 30, warmup: int = 5,
               blocks: tuple[str, ...] = (*SINGLE_BLOCKS, "all"), seed: int = 0) -> list[StepTime]:
    """``power.py`` on this host: one training step per block (random windows and labels, the recipe's optimizer
    and learning rate, the whole model in train mode), ``warmup`` untimed steps, then ``repeats`` timed ones.

    Each block trains on its own copy of ``model``, which is left untouched. ``forward`` rows time the forward pass
    alone (train mode, autograd off), the part of every step that no block choice removes. Times are this
    thread's CPU time (run with one torch thread), so other processes on the machine do not inflate them.
    """
    gen = torch.Generator().manual_seed(seed)
    channels = channels or next(m for m in model.modules() if isinstance(m, nn.Conv1d)).in_channels
    classes = classes or model.head.out_features
    out: list[StepTime] = []
    for batch in batches:
        x = torch.randn(batch, channels, window, generator=gen)
        y = torch.randint(0, classes, (batch,), generator=gen)
        for block in (*blocks, "forward"):
            probe = copy.deepcopy(model)
            plan = plan_for(probe, "all" if block == "forward" else block)
            set_mode = train_mode(probe, plan, freeze_bn=False)
            set_mode(probe)
            lr = recipe.lr_fc if block == "fc" else recipe.lr
            optimizer = make_optimizer(probe.parameters(), recipe.optimizer, lr, recipe.weight_decay, recipe.momentum)
            loss = cut_loss(plan.cut)
            times, walls = [], []
            for i in range(warmup + repeats):
                start, wall = time.thread_time(), time.perf_counter()
                if block == "forward":
                    with torch.no_grad():
                        probe(x)
                else:
                    optimizer.zero_grad(set_to_none=True)
                    loss(probe, x, y).backward()
                    optimizer.step()
                if i >= warmup:
                    times.append(time.thread_time() - start)
                    walls.append(time.perf_counter() - wall)
            q1, med, q3 = _quartiles(times)
            out.append(StepTime(block, batch, med, q1, q3, repeats, statistics.median(walls)))
    return out


def step_table(times: list[StepTime]) -> list[list[str]]:
    """Rows: batch, then per block the median ms per step (and the saving versus ``all``), then fc/all."""
    rows = []
    for batch in sorted({t.batch for t in times}):
        by = {t.block: t for t in times if t.batch == batch}
        full = by["all"].median_s
        cells = [f"{1e3 * by[b].median_s:.2f} ({100 * (1 - by[b].median_s / full):.0f} %)"
                 for b in (*SINGLE_BLOCKS, "all") if b in by]
        fwd = by["forward"].median_s
        rows.append([str(batch), *cells, f"{1e3 * fwd:.2f}", f"{by['fc'].median_s / full:.2f}",
                     f"{(full - fwd) / fwd:.2f}"])
    return rows


STEP_HEADERS = ["batch", *(f"{b} ms (saving)" for b in SINGLE_BLOCKS), "all ms", "forward ms", "fc/all",
                "(all-forward)/forward"]
