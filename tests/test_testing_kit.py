"""harbench.testing: the conformance suite passes the built-ins and catches each kind of broken plugin."""

from __future__ import annotations

import inspect
import time

import pytest
import torch

from harbench import AdaptResult, Method, MethodState, Param, Splits, frozen_copy
from harbench.builtin.datasets import SyntheticDrift
from harbench.builtin.hardware import Cpu
from harbench.builtin.methods import FineTuneLast
from harbench.builtin.metrics import METRICS
from harbench.testing import (
    FAST_CPU,
    TINY_DATA,
    ConformanceError,
    check_dataset,
    check_hardware,
    check_method,
    check_metric,
)


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch):
    monkeypatch.setenv("HARBENCH_LOAD_PLUGINS", "")


def failed_checks(exc: pytest.ExceptionInfo) -> list[str]:
    return [line.split("FAIL ", 1)[1].split(":")[0] for line in str(exc.value).splitlines() if "FAIL " in line]


# ---------------------------------------------------------------------------------------------- methods


def test_builtin_method_conforms():
    report = check_method(FineTuneLast, {"epochs": 1})
    names = [c.name for c in report.checks]
    assert not report.failed and "no use of forbidden data" in names and names[-1] == "short run through the runner"


class Blind(Method):
    name = "blind"
    description = "label-free: adapts nothing, but must cope without labels"
    label_free = True

    def adapt(self, generic, state, user, ctx):
        assert user.adapt.y is None
        return AdaptResult(generic)


def test_label_free_method_gets_no_labels():
    report = check_method(Blind)
    assert "adapt labels withheld" in next(c.detail for c in report.checks if c.name == "no use of forbidden data")


class Vandal(Method):
    name = "vandal"
    description = "trains the shared generic model in place"

    def adapt(self, generic, state, user, ctx):
        with torch.no_grad():
            generic.head.bias.add_(0.1)
        return AdaptResult(generic)


class Dice(Method):
    name = "dice"
    description = "random head bias from the clock"

    def adapt(self, generic, state, user, ctx):
        model = frozen_copy(generic)
        gen = torch.Generator().manual_seed(time.perf_counter_ns())
        with torch.no_grad():
            model.head.bias.add_(10 * torch.randn(model.head.bias.shape, generator=gen))
        return AdaptResult(model)


class Peeker(Method):
    name = "peeker"
    description = "finds the test windows on the call stack and tunes its bias on them"

    def adapt(self, generic, state, user, ctx):
        model = frozen_copy(generic)
        for frame in inspect.stack():
            local = frame.frame.f_locals
            owner = local.get("self")
            candidates = [*local.values(), *(vars(owner).values() if hasattr(owner, "__dict__") else [])]
            for value in candidates:
                if isinstance(value, Splits):
                    unseen = next(iter(value.targets.values())).test_unseen.x
                    with torch.no_grad():
                        model.head.bias.copy_(100 * unseen.mean() * torch.arange(model.head.bias.numel()))
                    return AdaptResult(model)
        return AdaptResult(model)


class Pickly(Method):
    name = "pickly"
    description = "keeps a Python set in its state"

    def prepare(self, generic, population, ctx):
        return MethodState(meta={"seen": {1, 2}})

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(generic)


class Lax(Method):
    name = "lax"
    description = "ignores its parameters"
    parameters = {"epochs": Param(1, "epochs", ge=1)}

    def __init__(self, **params):
        self.params = params

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(generic)


@pytest.mark.parametrize("cls, check", [
    (Vandal, "does not modify its inputs"),
    (Dice, "deterministic for a fixed seed"),
    (Peeker, "no use of forbidden data"),
    (Pickly, "state is serialisable (safetensors + JSON) and reloads to the same result"),
    (Lax, "parameter schema"),
])
def test_broken_methods_are_caught(cls, check):
    with pytest.raises(ConformanceError) as exc:
        check_method(cls)
    assert failed_checks(exc)[0] == check
    if check != "parameter schema":  # the runner is not tried on a method already known to be broken
        assert "not run: fix the failures above first" in str(exc.value)


# ---------------------------------------------------------------------------------- datasets, hardware, metrics


def test_builtin_dataset_hardware_and_metric_conform():
    for report in (check_dataset(SyntheticDrift, TINY_DATA), check_hardware(Cpu, FAST_CPU), check_metric(METRICS[0])):
        assert not report.failed and report.checks[-1].name == "short run through the runner"


class Leaky(SyntheticDrift):
    name = "leaky"
    description = "puts the target's adapt windows into the population"

    def load(self, seed, targets):
        from harbench import Windows

        splits = super().load(seed, targets)
        splits.population = Windows.concat([splits.population, *(t.adapt for t in splits.targets.values())])
        return splits


def test_leaky_dataset_is_caught():
    with pytest.raises(ConformanceError) as exc:
        check_dataset(Leaky, TINY_DATA)
    assert failed_checks(exc) == ["load() on one target user, leakage-free"]
    assert "also in the population" in str(exc.value)


class Twice(Cpu):
    name = "twice"
    description = "runs adapt twice (e.g. a warm-up): the second result is not what was costed"

    def run_adapt(self, adapt):
        adapt()
        return super().run_adapt(adapt)


def test_hardware_running_adapt_twice_is_caught():
    with pytest.raises(ConformanceError) as exc:
        check_hardware(Twice, FAST_CPU)
    assert failed_checks(exc)[0] == "run_adapt() runs adapt once and costs it"


def test_metric_returning_nan_is_caught():
    bad = type("NanMetric", (METRICS[0],), {"name": "nan_metric", "compute": lambda self, out: float("nan")})
    with pytest.raises(ConformanceError) as exc:
        check_metric(bad)
    assert "return None when the value is unknown" in str(exc.value)


# ------------------------------------------------------------------------------------ kit additions (integrity)

PLANTED = __import__("pathlib").Path(__file__).parent / "data" / "planted"


def test_a_seed_taken_from_hash_fails_the_cross_process_check(monkeypatch):
    monkeypatch.syspath_prepend(str(PLANTED))
    from planted_methods import HashSeeded

    with pytest.raises(ConformanceError) as exc:
        check_method(HashSeeded)
    assert failed_checks(exc) == ["deterministic across processes (another hash seed)", "short run through the runner"]
    assert "hash()" in str(exc.value) and "not run: fix the failures above first" in str(exc.value)


def test_a_hanging_adapt_fails_on_the_time_limit():
    class Sleepy(Method):
        name = "sleepy"
        description = "sleeps"

        def adapt(self, generic, state, user, ctx):
            time.sleep(30)
            return AdaptResult(generic)

    with pytest.raises(ConformanceError) as exc:
        check_method(Sleepy, timeout_s=1.0)
    assert "exceeded the conformance time limit" in str(exc.value)


def test_non_finite_outputs_fail():
    class NegativeVariance(Method):
        name = "negvar"
        description = "NaN logits"

        def adapt(self, generic, state, user, ctx):
            model = frozen_copy(generic)
            bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
            with torch.no_grad():
                bn.running_var.fill_(-1.0)
            return AdaptResult(model)

    with pytest.raises(ConformanceError) as exc:
        check_method(NegativeVariance)
    assert "not finite" in str(exc.value)


def test_a_metric_that_is_always_none_is_flagged():
    from harbench import Metric

    class Never(Metric):
        name = "never"
        description = "never a value"

        def compute(self, out):
            return None

    with pytest.raises(ConformanceError) as exc:
        check_metric(Never)
    assert "None on every tiny output" in str(exc.value)


# ------------------------------------------------------------------- the boundary's cheats (issue #36)


def _cheat(name: str):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "data" / "planted"))
    import boundary_cheats

    return getattr(boundary_cheats, name)


@pytest.mark.parametrize("cheat, says", [
    ("PrepareOsExit", "exited with status 0 before they finished"),
    ("KillParent", "was killed by signal 9"),
    ("PrepareSysExit", "the plugin raised SystemExit"),
])
def test_a_method_that_ends_the_checks_process_fails_the_check(cheat, says):
    """os._exit(0) used to end pytest with status 0 and no output; now the report fails and says how."""
    with pytest.raises(ConformanceError) as exc:
        check_method(_cheat(cheat))
    assert says in str(exc.value)


@pytest.mark.parametrize("cheat, says", [
    ("PinnedTrain", "depend on the batch they are evaluated in"),
    ("BatchStandardise", "depend on the batch they are evaluated in"),
    ("ForkBurner", "adapt() left 1 process(es) running"),
    ("SetsidBurner", "adapt() left 1 process(es) running"),
])
def test_the_kit_catches_transduction_and_leftover_processes(cheat, says):
    with pytest.raises(ConformanceError) as exc:
        check_method(_cheat(cheat))
    assert says in str(exc.value)
