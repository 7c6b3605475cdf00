"""What DUET's claims rest on, on a world where the answer is planted.

Each user sees the same four classes rotated by a user-specific angle in a 2-D feature plane, and carries its angle
in two "tag" features that do not depend on the class. No single head classifies every user (a linear universal
head cannot undo a rotation), but the unlabelled buffer reveals the angle, so a generator that reads it can. The
backbone is a fixed pooling, so the test isolates the generator; the effect is large (≈ chance vs ≈ perfect)
and the assertions use wide margins.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
from harbench_duet import Duet
from torch import nn

from harbench import Backbone, ContextInfo, DatasetInfo, MethodContext, UserData, Windows, predict

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

CLASSES, WINDOWS, STRIDE = 4, 12, 128  # windows per (user, class) session; non-overlapping windows


class Pool(Backbone):
    """features(x) = x averaged over time; a linear head."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.stem = nn.Identity()
        self.fc = nn.Linear(channels, classes)

    @property
    def head(self) -> nn.Module:  # type: ignore[override]
        return self.fc

    def blocks(self):
        return OrderedDict([("stem", self.stem), ("fc", self.fc)])


def user_windows(user: int, angle: float, rng: torch.Generator, first_recording: int) -> Windows:
    parts = []
    for c in range(CLASSES):
        phi = 2 * math.pi * c / CLASSES + angle
        centre = torch.tensor([2.0 * math.cos(phi), 2.0 * math.sin(phi), 1.5 * math.cos(angle), 1.5 * math.sin(angle)])
        noise = torch.randn(WINDOWS, 4, generator=rng) * torch.tensor([0.3, 0.3, 0.05, 0.05])
        x = (centre + noise).unsqueeze(-1).expand(WINDOWS, 4, 2).contiguous()
        parts.append(Windows(x, torch.full((WINDOWS,), c), torch.full((WINDOWS,), first_recording + c),
                             torch.arange(WINDOWS) * STRIDE, torch.full((WINDOWS,), user), torch.zeros(WINDOWS, dtype=torch.long)))
    return Windows.concat(parts)


def time_ordered(w: Windows, rng: torch.Generator) -> Windows:
    """Sessions in a random order, windows in time order inside each: the stream a device records."""
    recs = torch.unique(w.recording)
    order = recs[torch.randperm(len(recs), generator=rng)]
    return w.subset(torch.cat([torch.nonzero(w.recording == r).flatten() for r in order]))


@pytest.fixture(scope="module")
def planted():
    return build_planted()


def build_planted():
    rng = torch.Generator().manual_seed(0)
    n_pop, n_target = 16, 6
    angles = (torch.rand(n_pop + n_target, generator=rng) * 2 * math.pi).tolist()
    users = [user_windows(u, a, rng, first_recording=CLASSES * u) for u, a in enumerate(angles)]
    population = Windows.concat(users[:n_pop])
    info = DatasetInfo("planted", 4, 2, 50.0, tuple(f"c{i}" for i in range(CLASSES)),
                       tuple(f"u{i}" for i in range(n_pop + n_target)), (ContextInfo("home"),))
    torch.manual_seed(0)
    generic = Pool(4, CLASSES)
    opt = torch.optim.Adam(generic.parameters(), lr=1e-2)
    for _ in range(200):  # the population's best single linear head
        loss = nn.functional.cross_entropy(generic(population.x), population.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    generic.eval()
    for p in generic.parameters():
        p.requires_grad_(False)
    targets = []
    for u in range(n_pop, n_pop + n_target):
        w = users[u]
        half = torch.cat([torch.nonzero(w.y == c).flatten()[: WINDOWS // 2] for c in range(CLASSES)])
        test = torch.cat([torch.nonzero(w.y == c).flatten()[WINDOWS // 2:] for c in range(CLASSES)])
        targets.append((f"u{u}", time_ordered(w.subset(half), rng).without_labels(), w.subset(test)))
    return info, population, generic, targets


def accuracy(model, w: Windows) -> float:
    return float((predict(model, w.x) == w.y).float().mean())


def umn_accuracy(method: Duet, state, generic, w: Windows) -> float:
    generator = method.rebuild_generator(state)
    with torch.no_grad():
        return float((generator.umn_logits(generic.features(w.x)).argmax(-1) == w.y).float().mean())


def personalise(method, state, generic, info, targets):
    ctx = MethodContext(seed=0, info=info)
    return [(method.adapt(generic, state, UserData(name, info.contexts[0], stream), ctx).model, test)
            for name, stream, test in targets]


FAST = {"episodes": 400, "eval_every": 50, "meta_batch": 8, "query_size": 16, "buffer_size": 8, "lr": 3e-3,
        "umn_steps": 100, "val_fraction": 0.25}


@pytest.mark.parametrize("params", [{"hidden": 0, "delta_scale": 1.0}, {"generate": "sample", "hidden": 0, "delta_scale": 1.0}],
                         ids=["per-buffer", "per-sample"])
def test_a_trained_generator_beats_the_universal_head_on_a_planted_per_user_shift(planted, params):
    info, population, generic, targets = planted
    method = Duet(**{**FAST, **params})
    state = method.prepare(generic, population, MethodContext(seed=0, info=info))
    duet = [accuracy(model, test) for model, test in personalise(method, state, generic, info, targets)]
    umn = [umn_accuracy(method, state, generic, test) for _, _, test in targets]
    mean_duet, mean_umn = sum(duet) / len(duet), sum(umn) / len(umn)
    assert mean_umn < 0.6  # the plant works: no single head fits rotated users
    assert mean_duet > mean_umn + 0.25, (duet, umn)
    assert sum(d > u for d, u in zip(duet, umn)) >= len(duet) - 1


def test_delta_scale_zero_reproduces_the_universal_head_exactly(planted):
    info, population, generic, targets = planted
    method = Duet(**{**FAST, "episodes": 20, "delta_scale": 0.0, "hidden": 8})
    state = method.prepare(generic, population, MethodContext(seed=0, info=info))
    generator = method.rebuild_generator(state)
    for model, test in personalise(method, state, generic, info, targets):
        layers = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
        for layer, base in zip(layers, generator.base, strict=True):
            assert torch.equal(layer.weight, base.weight) and torch.equal(layer.bias, base.bias)
        universal = nn.Sequential(generator.base[0], nn.Tanh(), generator.base[1])
        with torch.no_grad():
            expected = universal(generic.features(test.x)).argmax(-1)
        assert torch.equal(predict(model, test.x), expected)


def test_a_nonzero_delta_does_change_the_head(planted):
    """The counterpart that keeps the test above honest: with delta_scale > 0 the head is not the UMN head."""
    info, population, generic, targets = planted
    method = Duet(**{**FAST, "episodes": 20, "hidden": 8})
    state = method.prepare(generic, population, MethodContext(seed=0, info=info))
    generator = method.rebuild_generator(state)
    model, _ = personalise(method, state, generic, info, targets[:1])[0]
    first = next(m for m in model.head.modules() if isinstance(m, nn.Linear))
    assert not torch.equal(first.weight, generator.base[0].weight)
