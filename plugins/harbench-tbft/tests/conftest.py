"""A small, seeded world shared by the tests: synthetic users and a generic ResNet trained on the population.

The generic model is the harness's default ResNet (width 16, depth 2), trained briefly: Auto-RGN is a statement
about a model that fits its population, which a toy-sized model trained for a few steps does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from harbench import Backbone, ContextInfo, MethodContext, Splits, UserData, build_backbone, fit, make_optimizer
from harbench.testing import synthetic_drift

# One intra-op thread: the machine is shared, and oversubscribed torch threads spin far slower than one thread.
torch.set_num_threads(1)

CONTEXTS = ["home", "sensor", "recovery", "labels"]
TARGETS = ["u00", "u01", "u02"]


def load(adapt_context: str, users: int = 9, targets: tuple[str, ...] = tuple(TARGETS)) -> Splits:
    """Same users and population for every ``adapt_context``; only which context the targets adapt on differs."""
    dataset = synthetic_drift(users=users, contexts=CONTEXTS, adapt_context=adapt_context, windows=12, k=6,
                             unseen_windows=2, sessions=2)
    return dataset.load(seed=0, targets=list(targets))


@dataclass
class World:
    splits: Splits
    generic: Backbone
    ctx: MethodContext
    targets: tuple[str, ...] = tuple(TARGETS)
    users: int = 9

    def drifted(self, adapt_context: str) -> Splits:
        """The same world with the targets' personal data taken from ``adapt_context``."""
        return load(adapt_context, self.users, self.targets)

    def user(self, name: str = "u00", drift: str | None = "input", splits: Splits | None = None) -> UserData:
        """A target's adapt data, presented as coming from a context that declares ``drift``."""
        t = (splits or self.splits).targets[name]
        return UserData(name, ContextInfo(t.adapt_context, drift), t.adapt)


def make_world(users: int = 9, targets: tuple[str, ...] = tuple(TARGETS)) -> World:
    torch.manual_seed(0)
    splits = load("home", users, targets)
    generic = build_backbone("resnet1d", splits.info.channels, splits.info.num_classes)
    fit(generic, splits.population, epochs=6, optimizer=make_optimizer(generic.parameters(), "adam", 3e-3),
        batch_size=32, generator=torch.Generator().manual_seed(0))
    generic.eval()
    return World(splits, generic, MethodContext(seed=0, info=splits.info), targets, users)


@pytest.fixture(scope="session")
def world() -> World:
    return make_world()


@pytest.fixture(scope="session")
def crowd() -> World:
    """Eight target users (14 in all) for claims about users, so no one user's near-tie decides a test."""
    return make_world(users=14, targets=tuple(f"u{i:02d}" for i in range(8)))
