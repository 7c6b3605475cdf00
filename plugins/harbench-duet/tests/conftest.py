"""A tiny, deterministic world shared by the tests: 6 synthetic users (2 targets), a narrow ResNet trained for one
epoch, and a DUET generator trained for a few episodes. Module-scoped, so the whole suite builds it once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from harbench_duet import Duet

from harbench import (
    Backbone,
    DatasetInfo,
    MethodContext,
    MethodState,
    Splits,
    UserData,
    build_backbone,
    fit,
    make_optimizer,
)
from harbench.testing import synthetic_drift

torch.set_num_threads(1)  # tiny ops: extra threads only add contention on a shared 2-core machine

TARGETS = ["u00", "u01"]
FAST = {"umn_steps": 60, "episodes": 12, "eval_every": 10, "virtual_devices": 1, "meta_batch": 4, "query_size": 8, "buffer_size": 8}


@dataclass
class World:
    info: DatasetInfo
    splits: Splits
    generic: Backbone
    method: Duet
    state: MethodState
    ctx: MethodContext

    def user(self, name: str, labels: bool = False) -> UserData:
        t = self.splits.targets[name]
        adapt = t.adapt if labels else t.adapt.without_labels()
        return UserData(name, self.info.context(t.adapt_context), adapt)


@dataclass
class Base:
    info: DatasetInfo
    splits: Splits
    generic: Backbone


_BASE: Base | None = None


def base() -> Base:
    """The data and the generic model, built once per test session (the expensive, method-independent part)."""
    global _BASE
    if _BASE is None:
        torch.manual_seed(0)
        ds = synthetic_drift(users=6, windows=8, k=3, sessions=2, unseen_windows=4, contexts=["recovery", "home"],
                            adapt_context="recovery", population_contexts=["home", "recovery"])
        info = ds.describe()
        splits = ds.load(0, TARGETS)
        generic = build_backbone("resnet1d", info.channels, info.num_classes, width=8, depth=1)
        fit(generic, splits.population, epochs=2, optimizer=make_optimizer(generic.parameters(), "adam", 3e-3),
            batch_size=32, generator=torch.Generator().manual_seed(0))
        generic.eval()
        for p in generic.parameters():  # as the harness hands it over: frozen, no stale gradients
            p.requires_grad_(False)
            p.grad = None
        _BASE = Base(info, splits, generic)
    return _BASE


def make_world(**method_params) -> World:
    b = base()
    ctx = MethodContext(seed=0, info=b.info)
    method = Duet(**{**FAST, **method_params})
    state = method.prepare(b.generic, b.splits.population, ctx)
    return World(b.info, b.splits, b.generic, method, state, ctx)


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


@pytest.fixture(scope="session")
def world_factory():
    return make_world
