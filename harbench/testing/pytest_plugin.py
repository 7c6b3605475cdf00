"""pytest plugin (registered through the ``pytest11`` entry point): fixtures to benchmark any registered method.

With pytest-benchmark's ``benchmark`` fixture a plugin author times adaptation and inference of a method on small
synthetic data, saves the timings and fails CI on a slowdown::

    def test_adapt(benchmark, harbench_method):
        bench = harbench_method("my-method", epochs=1)
        benchmark.pedantic(bench.adapt, rounds=5, iterations=1)

    pytest tests/benchmarks --benchmark-autosave
    pytest tests/benchmarks --benchmark-compare --benchmark-compare-fail=median:10%

Fixtures: ``harbench_registry`` (the installed plugins), ``harbench_splits`` (tiny synthetic data, seed 0),
``harbench_user`` (the first target user's labelled adapt data), ``harbench_threads`` (torch pinned to one
thread for the session, as the suites run jobs; ``--harbench-threads N`` changes it), ``harbench_generic`` (a factory for a trained
generic model per backbone, cached for the session) and ``harbench_method`` (a factory for a prepared
:class:`MethodBench`). This module is imported by every pytest run in an environment with harbench installed, so it
imports nothing heavy until a fixture is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

BENCH_DATA = {"users": 6, "windows": 12, "sessions": 2, "k": 4, "unseen_windows": 4}
BENCH_SEED = 0


def pytest_addoption(parser):
    group = parser.getgroup("harbench", "harbench benchmark fixtures")
    group.addoption("--harbench-generic-epochs", type=int, default=2,
                    help="epochs of the generic model the harbench_* fixtures train (default 2)")
    group.addoption("--harbench-threads", type=int, default=1,
                    help="torch intra-op threads while the harbench_* fixtures are in use (default 1, as the "
                         "suites run jobs)")


@pytest.fixture(scope="session")
def harbench_threads(request):
    """torch's intra-op threads pinned for the session (default 1) and restored after it.

    With torch's default (one thread per core) a benchmark's median moved +47-52 % whenever another process used a
    core, and ``--benchmark-compare-fail=median:10%`` failed an unchanged method; the suites run every job on one
    thread (``threads:``), so the fixtures time what a run times. Every ``harbench_*`` fixture depends on this one."""
    import torch

    wanted = request.config.getoption("--harbench-threads")
    if wanted < 1:
        raise pytest.UsageError(f"--harbench-threads {wanted}: expected a positive number of threads")
    before = torch.get_num_threads()
    torch.set_num_threads(wanted)
    yield wanted
    torch.set_num_threads(before)


@dataclass
class MethodBench:
    """A prepared method on one user, with zero-argument callables for ``benchmark``.

    ``adapt()`` runs the method's adapt phase (seeded as the runner seeds it) and returns its AdaptResult;
    ``inference()`` runs the personalized model on one window (batch 1), as the hardware targets time it.
    """

    method: Any
    generic: Any
    state: Any
    user: Any
    ctx: Any
    example: Any
    _personalized: Any = field(default=None, repr=False)

    def adapt(self):
        import torch

        torch.manual_seed(BENCH_SEED + 1)
        return self.method.adapt(self.generic, self.state, self.user, self.ctx)

    @property
    def personalized(self):
        """The model adapt returned (adapted once, on first use)."""
        if self._personalized is None:
            self._personalized = self.adapt().model.eval()
        return self._personalized

    def inference(self):
        import torch

        model = self.personalized
        with torch.no_grad():
            return model(self.example)


@pytest.fixture(scope="session")
def harbench_registry(harbench_threads):
    """The installed plugins (``HARBENCH_LOAD_PLUGINS`` pins which third-party ones load)."""
    from harbench.plugins import get_registry

    return get_registry()


@pytest.fixture(scope="session")
def harbench_splits(harbench_threads):
    """Small synthetic-drift data (6 users, 1 target), the same for every benchmark of the session."""
    from harbench.builtin.datasets import SyntheticDrift

    dataset = SyntheticDrift(**BENCH_DATA)
    return dataset.load(BENCH_SEED, list(dataset.describe().users[:1]))


@pytest.fixture(scope="session")
def harbench_user(harbench_splits):
    """The target user's data as a method sees it: the adapt context's labelled windows."""
    from harbench import UserData

    target = next(iter(harbench_splits.targets.values()))
    return UserData(target.user, harbench_splits.info.context(target.adapt_context), target.adapt)


@pytest.fixture(scope="session")
def harbench_generic(harbench_splits, request):
    """Factory: ``harbench_generic("resnet1d")`` is a generic model trained on the population (cached per backbone)."""
    import torch

    from harbench import build_backbone, fit, make_optimizer

    epochs = request.config.getoption("--harbench-generic-epochs")
    cache: dict[str, Any] = {}

    def build(backbone: str = "resnet1d"):
        if backbone not in cache:
            info = harbench_splits.info
            torch.manual_seed(BENCH_SEED)
            model = build_backbone(backbone, info.channels, info.num_classes)
            fit(model, harbench_splits.population, epochs=epochs, batch_size=64,
                optimizer=make_optimizer(model.parameters(), "adam", 3e-3),
                generator=torch.Generator().manual_seed(BENCH_SEED))
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            cache[backbone] = model
        return cache[backbone]

    return build


@pytest.fixture
def harbench_method(harbench_registry, harbench_splits, harbench_user, harbench_generic):
    """Factory: ``harbench_method("finetune-last", epochs=1)`` → a prepared :class:`MethodBench`.

    The method's ``prepare`` runs here, untimed; a method that skips the benchmark data skips the test.
    """
    import dataclasses

    import torch

    from harbench import MethodContext

    def make(name: str, **params: Any) -> MethodBench:
        method = harbench_registry.get("method", name).cls(**params)
        reason = method.skip(harbench_splits.info)
        if reason:
            pytest.skip(f"{name}: {reason}")
        generic = harbench_generic(method.backbone)
        torch.manual_seed(BENCH_SEED)
        state = method.prepare(generic, harbench_splits.population, MethodContext(BENCH_SEED, harbench_splits.info))
        user = harbench_user
        if method.label_free:
            user = dataclasses.replace(user, adapt=user.adapt.without_labels())
        ctx = MethodContext(seed=BENCH_SEED, info=harbench_splits.info)
        target = next(iter(harbench_splits.targets.values()))
        return MethodBench(method, generic, state, user, ctx, target.test_seen.x[:1])

    return make
