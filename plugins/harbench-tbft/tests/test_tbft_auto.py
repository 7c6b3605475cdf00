"""How ``block: auto`` decides: the declared drift type through the paper's taxonomy, else Auto-RGN."""

from __future__ import annotations

import math

import pytest
from harbench_tbft import TBFT, choose_by_rgn, relative_gradient_norms


@pytest.mark.parametrize(("drift", "block"), [("input", "front"), ("feature", "stage3"), ("output", "fc")])
def test_declared_drift_picks_the_paper_block(world, drift, block):
    choice = TBFT(block="auto").choose_block(world.generic, world.user(drift=drift))
    assert (choice.block, choice.source, choice.rgn_scores) == (block, "declared-drift", None)


def test_undeclared_drift_falls_back_to_rgn_and_says_so(world):
    result = TBFT(block="auto", epochs=1).adapt(world.generic, None, world.user(drift=None), world.ctx)
    extra = result.facts.extra
    assert extra["block_source"] == "auto-rgn" and extra["drift"] is None
    assert extra["block"] == max(extra["rgn_scores"], key=extra["rgn_scores"].get)
    assert extra["probe_flops"] > 0  # the probe's forward + backward is part of the adapt cost


def test_rgn_mode_ignores_the_declared_drift(world):
    choice = TBFT(block="auto", auto_by="rgn").choose_block(world.generic, world.user(drift="feature"))
    assert choice.source == "auto-rgn" and set(choice.rgn_scores) == {"front", "stage2", "stage3", "fc"}


def test_rgn_leaves_the_model_untouched(world):
    before = {k: v.clone() for k, v in world.generic.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in world.generic.parameters()]
    relative_gradient_norms(world.generic, world.user().adapt)
    assert all((before[k] == v).all() for k, v in world.generic.state_dict().items())
    for g, p in zip(grads, world.generic.parameters()):
        assert (g is None and p.grad is None) or (g == p.grad).all()


@pytest.mark.parametrize(("context", "expected"), [("sensor", "front"), ("labels", "fc")])
def test_rgn_finds_the_block_of_a_planted_drift(world, context, expected):
    """The generator plants a placement change (rotation, gain, bias) in ``sensor`` and swapped labels with new
    class priors in ``labels``; the population model never saw either.

    Auto-RGN is a per-user argmax of gradient ratios, and one user's decision can sit near a tie: the generic
    model differs in its last bits between CPUs' kernels, and on an AMD EPYC (AVX2) user u01's ``sensor`` scores
    were fc 1.54 vs front 1.34. So the test asserts on margins, not on every user's argmax: the expected block
    wins for a majority of the users, and across users its score beats the best other block's by a factor of
    at least 1.5 (geometric mean; about 2.2 for ``sensor`` and 2.5 for ``labels`` here). Swapping the expected
    blocks fails both conditions."""
    drifted = world.drifted(context)
    assert (drifted.population.x == world.splits.population.x).all()  # the generic model fits this population
    ratios = []
    for u in world.targets:
        adapt = drifted.targets[u].adapt
        scores = relative_gradient_norms(world.generic, adapt)
        assert choose_by_rgn(world.generic, adapt).block == max(scores, key=scores.__getitem__)
        ratios.append(scores[expected] / max(v for b, v in scores.items() if b != expected))
    assert sum(r > 1.0 for r in ratios) > len(ratios) / 2, ratios
    assert math.exp(sum(math.log(r) for r in ratios) / len(ratios)) >= 1.5, ratios
