"""A tiny, seeded world shared by the tests: synthetic users with a placement drift and a small generic model."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import pytest
import torch

from harbench import Backbone, MethodContext, Splits, UserData, build_backbone, fit, make_optimizer
from harbench.testing import synthetic_drift


@dataclass
class World:
    splits: Splits
    generic: Backbone
    ctx: MethodContext

    def user(self, name: str = "u00") -> UserData:
        t = self.splits.targets[name]
        return UserData(name, self.splits.info.context(t.adapt_context), t.adapt)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread while these tests run: on a shared 2-core machine, torch's spinning worker threads
    make tiny models up to ~80x slower. The previous setting is restored for other plugins' tests."""
    with single_thread():
        yield


@contextmanager
def single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def world() -> World:
    with single_thread():
        return _tiny_world()


def _tiny_world() -> World:
    torch.manual_seed(0)
    dataset = synthetic_drift(users=5, contexts=["sensor", "home"], adapt_context="sensor", windows=10, k=5,
                             unseen_windows=4, sessions=2)
    splits = dataset.load(seed=0, targets=["u00", "u01"])
    generic = build_backbone("resnet1d", splits.info.channels, splits.info.num_classes, width=8, depth=1)
    fit(generic, splits.population, epochs=2, optimizer=make_optimizer(generic.parameters(), "adam", 3e-3),
        batch_size=32, generator=torch.Generator().manual_seed(0))
    generic.eval()
    return World(splits, generic, MethodContext(seed=0, info=splits.info))
