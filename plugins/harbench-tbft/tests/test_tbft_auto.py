"""How ``block: auto`` decides: the declared drift type through the paper's taxonomy, else Auto-RGN."""

from __future__ import annotations

import math

import pytest
from harbench_tbft import TBFT, choose_by_rgn, relative_gradient_norms

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


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


def test_rgn_finds_the_block_of_a_planted_output_drift(crowd):
    """The generator plants swapped labels with new class priors in ``labels``, which the population model never
    saw: the head is what is wrong, and Auto-RGN must point at ``fc``.

    Asserted on eight users and on margins: under ATEN_CPU_CAPABILITY=default and =avx2 ``fc`` wins for 8 of 8
    users, its score beats the best other block's by a geometric mean of 2.83-2.90 (every user >= 2.17), against
    the bars of a majority and 1.5. Swapping the expected block fails both.

    The input-level ``sensor`` drift is not tested as an Auto-RGN success, because on this generator it is not one:
    ``front`` wins for 4 of 8 users at strength 1 (geometric-mean ratio 1.10-1.24 by kernel) and 1-2 of 8 at
    strength 2, the rest going to ``fc`` (``scripts/rgn_by_drift.py``). A test that asserted it flipped with torch's SIMD kernel.
    That is a finding about the heuristic on this data (the TBFT README reports it), not something to tune away."""
    drifted = crowd.drifted("labels")
    assert (drifted.population.x == crowd.splits.population.x).all()  # the generic model fits this population
    ratios = []
    for u in crowd.targets:
        adapt = drifted.targets[u].adapt
        scores = relative_gradient_norms(crowd.generic, adapt)
        assert choose_by_rgn(crowd.generic, adapt).block == max(scores, key=scores.__getitem__)
        ratios.append(scores["fc"] / max(v for b, v in scores.items() if b != "fc"))
    assert sum(r > 1.0 for r in ratios) > len(ratios) / 2, ratios
    assert math.exp(sum(math.log(r) for r in ratios) / len(ratios)) >= 1.5, ratios
