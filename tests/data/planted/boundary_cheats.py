"""Plugins that attack the device boundary, written as a third-party author would (importing only ``harbench``).

Loaded by ``tests/test_boundary.py`` through ``HARBENCH_PLUGINS=boundary_cheats`` and by the conformance kit's
tests. Each must fail its own job with the reason, or gain nothing, and never change another job's numbers.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time

import torch

from harbench import (
    AdaptResult,
    Hardware,
    HardwareInfo,
    InferenceCost,
    Method,
    MethodState,
    Metric,
    PhaseCost,
    Splits,
    TargetSplit,
    frozen_copy,
    hookimpl,
)

# ------------------------------------------------------------------------ global changes made in prepare/adapt


def _scramble(module, inputs, output):
    return output * -3.0 + 1.0 if isinstance(output, torch.Tensor) else output


class PrepareHook(Method):
    """Registers a global forward hook in ``prepare`` that scrambles every module's output, for every method."""

    name = "cheat-prepare-hook"
    description = "planted: cheat-prepare-hook"

    def prepare(self, generic, population, ctx):
        torch.nn.modules.module.register_module_forward_hook(_scramble)
        return MethodState()

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(frozen_copy(generic))


class PreparePatches(Method):
    """Monkeypatches ``torch.relu``/``F.relu``, the default dtype, the thread count and the RNG in ``prepare``."""

    name = "cheat-prepare-patches"
    description = "planted: cheat-prepare-patches"

    def prepare(self, generic, population, ctx):
        torch.relu = lambda x, *a, **k: x * 0.0  # type: ignore[assignment]
        torch.nn.functional.relu = lambda x, *a, **k: x * 0.0  # type: ignore[assignment]
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(2)
        torch.manual_seed(12345)
        return MethodState(meta={"patched": True})

    def adapt(self, generic, state, user, ctx):
        torch.nn.functional.relu = lambda x, *a, **k: x * 0.0  # type: ignore[assignment]
        return AdaptResult(frozen_copy(generic))


class PrepareSpy(Method):
    """Searches ``prepare``'s process for the test splits and ships their labels in its state."""

    name = "cheat-prepare-spy"
    description = "planted: cheat-prepare-spy"

    def prepare(self, generic, population, ctx):
        found = sum(isinstance(o, (Splits, TargetSplit)) for o in gc.get_objects())
        labels = [o.test_seen.y for o in gc.get_objects() if isinstance(o, TargetSplit)]
        return MethodState(tensors={"labels": torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)},
                           meta={"found": found})

    def adapt(self, generic, state, user, ctx):
        from harbench import AdaptFacts

        return AdaptResult(frozen_copy(generic), AdaptFacts(extra={"found": state.meta["found"],
                                                                   "labels": len(state.tensors["labels"])}))


class _LabelThief(torch.nn.Module):
    """A model whose forward looks for the test labels in its process (the garbage collector, the callers'
    frames) and answers them when it finds a match for the batch; otherwise it is the generic model."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x)
        for obj in gc.get_objects():
            if isinstance(obj, TargetSplit):
                for part in (obj.test_seen, obj.test_unseen):
                    if len(part) == len(x) and torch.equal(part.x, x):
                        return torch.nn.functional.one_hot(part.y, out.shape[1]).float() * 100.0
        frame = sys._getframe(1)
        while frame is not None:
            for v in frame.f_locals.values():
                if isinstance(v, torch.Tensor) and v.dtype == torch.long and v.dim() == 1 and len(v) == len(x):
                    return torch.nn.functional.one_hot(v.clamp(0, out.shape[1] - 1), out.shape[1]).float() * 100.0
            frame = frame.f_back
        return out

    def __setstate__(self, state):  # unpickled in a host, it would poison every later job there
        torch.nn.modules.module.register_module_forward_hook(_scramble)
        super().__setstate__(state)


class ModelSpy(Method):
    """Returns a model whose forward steals the labels where it is evaluated, and whose unpickling installs a
    global hook."""

    name = "cheat-model-spy"
    description = "planted: cheat-model-spy"

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(_LabelThief(frozen_copy(generic)))


# ------------------------------------------------------------------------------------------ transduction


class _PinnedTrain(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def train(self, mode: bool = True):  # eval() is train(False): ignored, BatchNorm keeps batch statistics
        return super().train(True)

    def forward(self, x):
        return self.inner(x)


class PinnedTrain(Method):
    """Returns a model pinned to train(): BatchNorm normalises with the test batch's statistics."""

    name = "cheat-pinned-train"
    description = "planted: cheat-pinned-train"

    def adapt(self, generic, state, user, ctx):
        model = frozen_copy(generic)
        return AdaptResult(_PinnedTrain(model).train())


class _BatchStandardised(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner((x - x.mean(dim=0, keepdim=True)) / (x.std(dim=0, keepdim=True) + 1e-3))


class BatchStandardise(Method):
    """Re-standardises each input from the batch it is evaluated on."""

    name = "cheat-batch-standardise"
    description = "planted: cheat-batch-standardise"

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(_BatchStandardised(frozen_copy(generic)))


# --------------------------------------------------------------------------------------------- dying


class PrepareSysExit(Method):
    name = "cheat-prepare-sysexit"
    description = "planted: cheat-prepare-sysexit"

    def prepare(self, generic, population, ctx):
        sys.exit(0)

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(frozen_copy(generic))


class PrepareOsExit(Method):
    name = "cheat-prepare-osexit"
    description = "planted: cheat-prepare-osexit"

    def prepare(self, generic, population, ctx):
        os._exit(0)

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(frozen_copy(generic))


class PrepareSegfault(Method):
    name = "cheat-prepare-segfault"
    description = "planted: cheat-prepare-segfault"

    def prepare(self, generic, population, ctx):
        os.kill(os.getpid(), signal.SIGSEGV)
        return MethodState()

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(frozen_copy(generic))


class KillParent(Method):
    """Kills the process that started its adapt process (the zygote)."""

    name = "cheat-kill-parent"
    description = "planted: cheat-kill-parent"

    def adapt(self, generic, state, user, ctx):
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(5)
        return AdaptResult(frozen_copy(generic))


# ------------------------------------------------------------------------------------------ data on disk


class ReadsData(Method):
    """Reads the dataset's files from disk (``$HARBENCH_DATA``) and reports how many bytes it got."""

    name = "cheat-reads-data"
    description = "planted: cheat-reads-data"

    def adapt(self, generic, state, user, ctx):
        from harbench import AdaptFacts

        got, denied = 0, 0
        for folder, _, files in os.walk(os.environ.get("HARBENCH_DATA", "/nonexistent"), onerror=lambda e: None):
            for name in files:
                try:
                    with open(os.path.join(folder, name), "rb") as f:
                        got += len(f.read())
                except OSError:
                    denied += 1
        try:
            os.listdir(os.environ.get("HARBENCH_DATA", "/nonexistent"))
        except OSError:
            denied += 1
        return AdaptResult(frozen_copy(generic), AdaptFacts(extra={"bytes_read": got, "denied": denied}))


# -------------------------------------------------------------------------------------------- burners


def _burn_forever() -> None:
    pidfile = os.environ.get("BOUNDARY_PIDS")
    if pidfile:
        with open(pidfile, "a") as f:
            f.write(f"{os.getpid()}\n")
    x = 0
    while True:
        x += 1


class ForkBurner(Method):
    """Forks a child that burns a core forever; the fork's parent returns at once."""

    name = "cheat-fork-burner"
    description = "planted: cheat-fork-burner"
    setsid = False

    def adapt(self, generic, state, user, ctx):
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:  # a grandchild: its parent exits, it is re-parented
                if self.setsid:
                    os.setsid()
                _burn_forever()
            os._exit(0)
        os.waitpid(pid, 0)
        return AdaptResult(frozen_copy(generic))


class SetsidBurner(ForkBurner):
    name = "cheat-setsid-burner"
    description = "planted: cheat-setsid-burner"
    setsid = True


# --------------------------------------------------------------------------------- outputs out of range


class NegativeTarget(Hardware):
    """An estimating target that reports negative energy and time."""

    name = "cheat-negative-target"
    description = "planted: cheat-negative-target"

    def describe(self):
        return HardwareInfo(self.name, "model", 1.0, "estimated")

    def run_adapt(self, adapt):
        return adapt(), PhaseCost(-0.5, -0.67, -0.7, "estimate:negative")

    def run_inference(self, model, example):
        return InferenceCost([-0.5], 1e-3, 1e-3, "estimate:negative")


class TooLarge(Metric):
    """A fraction metric that reports 1.5."""

    name = "cheat-fraction"
    description = "planted: cheat-fraction"
    unit = "fraction"

    def compute(self, out):
        return 1.5


PLANTED = [PrepareHook, PreparePatches, PrepareSpy, ModelSpy, PinnedTrain, BatchStandardise, PrepareSysExit,
           PrepareOsExit, PrepareSegfault, KillParent, ForkBurner, SetsidBurner, ReadsData]


@hookimpl
def harbench_register_methods(register):
    for cls in PLANTED:
        register(cls)


@hookimpl
def harbench_register_hardware(register):
    register(NegativeTarget)


@hookimpl
def harbench_register_metrics(register):
    register(TooLarge)
