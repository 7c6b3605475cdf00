"""Methods with one planted bug each, written as a third-party author would (importing only ``harbench``).

Loaded by ``tests/test_integrity.py`` through ``HARBENCH_PLUGINS=planted_methods`` (so worker processes load them
too). Each must either fail its own job with the reason, or gain nothing from its cheat, and never change another
job's numbers.
"""

from __future__ import annotations

import gc
import sys

import torch

from harbench import (AdaptFacts, AdaptResult, Hardware, HardwareInfo, InferenceCost, Method, PhaseCost, Splits,
                      TargetSplit, Windows, fit, frozen_copy, hookimpl, make_optimizer)


class BnReestimate(Method):
    """Re-estimates BatchNorm statistics on the shared generic model in place (forgot to copy)."""

    name = "planted-bn-reestimate"

    def adapt(self, generic, state, user, ctx):
        generic.train()
        with torch.no_grad():
            generic(user.adapt.x)
        generic.eval()
        return AdaptResult(frozen_copy(generic))


class SwapRows(Method):
    """Swaps two classifier rows of the shared model in place (every sum is unchanged)."""

    name = "planted-swap-rows"

    def adapt(self, generic, state, user, ctx):
        with torch.no_grad():
            w = generic.head.weight
            w[[0, 1]] = w[[1, 0]].clone()
        return AdaptResult(frozen_copy(generic))


class BnMomentum(Method):
    """Changes a BatchNorm attribute of the shared model (no tensor changes)."""

    name = "planted-bn-momentum"

    def adapt(self, generic, state, user, ctx):
        for m in generic.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.9
        return AdaptResult(frozen_copy(generic))


class NegativeVariance(Method):
    """Returns finite weights whose BatchNorm running variance is negative: NaN logits."""

    name = "planted-negative-variance"

    def adapt(self, generic, state, user, ctx):
        model = frozen_copy(generic)
        bn = next(m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
        with torch.no_grad():
            bn.running_var.fill_(-1.0)
        return AdaptResult(model)


def _train_head(generic, x, y, ctx, report: bool):
    model = frozen_copy(generic)
    for p in model.head.parameters():
        p.requires_grad_(True)
    rep = fit(model, Windows(x, y, torch.zeros(len(x), dtype=torch.long), torch.arange(len(x)),
                             torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.long)),
              epochs=20, batch_size=8, optimizer=make_optimizer(model.head.parameters(), "adam", 5e-3),
              generator=ctx.generator())
    facts = AdaptFacts(optimizer_steps=rep.optimizer_steps, backward_samples=rep.backward_samples,
                       forward_samples=rep.forward_samples, batch_size=8) if report else AdaptFacts()
    return AdaptResult(model, facts)


class OrderAsLabels(Method):
    """"Label-free", but takes ``arange(n) // k`` as labels (the adapt windows used to come sorted by class)."""

    name = "planted-order-as-labels"
    label_free = True

    def adapt(self, generic, state, user, ctx):
        n, c = len(user.adapt), ctx.info.num_classes
        y = torch.clamp(torch.arange(n) // max(n // c, 1), max=c - 1)
        return _train_head(generic, user.adapt.x, y, ctx, report=True)


class RecordingAsLabels(Method):
    """"Label-free", but ranks the recording ids (they used to be numbered in class order)."""

    name = "planted-recording-as-labels"
    label_free = True

    def adapt(self, generic, state, user, ctx):
        c = ctx.info.num_classes
        ids = sorted(set(user.adapt.recording.tolist()))
        per = max(len(ids) // c, 1)
        rank = {r: min(i // per, c - 1) for i, r in enumerate(ids)}
        y = torch.tensor([rank[int(r)] for r in user.adapt.recording], dtype=torch.long)
        return _train_head(generic, user.adapt.x, y, ctx, report=True)


class SilentTrainer(Method):
    """Trains its head for 20 epochs on the labelled windows and reports no work at all."""

    name = "planted-silent-trainer"

    def adapt(self, generic, state, user, ctx):
        return _train_head(generic, user.adapt.x, user.adapt.y, ctx, report=False)


class GcSpy(Method):
    """Searches the process for the test splits: the garbage collector, every frame's locals, module globals."""

    name = "planted-gc-spy"

    def adapt(self, generic, state, user, ctx):
        mine = user.adapt.x.untyped_storage().data_ptr()
        shape = tuple(user.adapt.x.shape[1:])
        found = {"splits": 0, "windows": 0, "tensors": 0, "frames": 0, "globals": 0}
        for obj in gc.get_objects():
            if isinstance(obj, (Splits, TargetSplit)):
                found["splits"] += 1
            elif isinstance(obj, Windows) and obj.x.untyped_storage().data_ptr() != mine:
                found["windows"] += 1
            elif (isinstance(obj, torch.Tensor) and obj.dim() == 3 and tuple(obj.shape[1:]) == shape
                  and obj.untyped_storage().data_ptr() != mine):
                found["tensors"] += 1
        for frame in sys._current_frames().values():
            f = frame
            while f is not None:
                found["frames"] += sum(isinstance(v, (Splits, TargetSplit)) for v in f.f_locals.values())
                f = f.f_back
        for module in list(sys.modules.values()):
            found["globals"] += sum(isinstance(v, (Splits, TargetSplit)) for v in vars(module).values())
        return AdaptResult(frozen_copy(generic), AdaptFacts(extra={"found": found}))


PLANTED = [BnReestimate, SwapRows, BnMomentum, NegativeVariance, OrderAsLabels, RecordingAsLabels, SilentTrainer,
           GcSpy]


class StepCounter(Hardware):
    """An estimated target that costs 1 ms per optimizer step of the workload it is handed (as devicekit does)."""

    name = "planted-step-counter"

    def describe(self):
        return HardwareInfo(self.name, "model", 1.0, "estimated")

    def run_adapt(self, adapt):
        result = adapt()
        s = 1e-3 * result.facts.optimizer_steps
        return result, PhaseCost(s, 2 * s, s, "estimate:steps")

    def run_inference(self, model, example):
        return InferenceCost([1e-3], 2e-3, 1e-3, "estimate:steps")


@hookimpl
def harbench_register_hardware(register):
    register(StepCounter)


@hookimpl
def harbench_register_methods(register):
    for cls in PLANTED:
        register(cls)


class HashSeeded(Method):
    """Seeds its randomness from ``hash()`` of a string: the same in one process, different in the next."""

    name = "planted-hash-seeded"
    description = "seeds from hash()"

    def adapt(self, generic, state, user, ctx):
        model = frozen_copy(generic)
        g = torch.Generator().manual_seed(hash("harbench") % 2**31)
        with torch.no_grad():
            model.head.bias.add_(0.1 * torch.randn(model.head.bias.shape, generator=g))
        return AdaptResult(model)
