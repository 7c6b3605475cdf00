"""Only the chosen block learns, and the backward pass never reaches below it."""

from __future__ import annotations

import pytest
import torch
from harbench_tbft import SINGLE_BLOCKS, TBFT, cut_forward, plan_for
from harbench_tbft.blocks import cut_loss
from torch import nn

from harbench import build_backbone

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

PREFIX = {"front": "front.", "stage2": "stage2.", "stage3": "stage3.", "fc": "fc."}


def _adapt(world, **params):
    method = TBFT(epochs=2, **params)
    return method.adapt(world.generic, None, world.user(), world.ctx)


def _is_bn_stat(name: str) -> bool:
    return name.endswith(("running_mean", "running_var", "num_batches_tracked"))


@pytest.mark.parametrize("block", SINGLE_BLOCKS)
def test_only_the_chosen_block_changes(world, block):
    before = {k: v.clone() for k, v in world.generic.state_dict().items()}
    result = _adapt(world, block=block, freeze_bn=True)
    after = result.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "fine-tuning changed nothing"
    assert all(k.startswith(PREFIX[block]) for k in changed), sorted(changed)
    assert all(name.startswith(PREFIX[block]) for name in result.facts.trainable)
    assert result.facts.extra == {**result.facts.extra, "block": block, "block_source": "fixed"}
    for k, v in world.generic.state_dict().items():  # the shared generic model is untouched
        assert torch.equal(v, before[k]), k


def test_frozen_batchnorm_statistics_update_by_default_as_in_the_paper(world):
    before = world.generic.state_dict()
    after = _adapt(world, block="fc").model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    outside = {k for k in changed if not k.startswith("fc.")}
    assert outside and all(_is_bn_stat(k) for k in outside), sorted(outside)


def test_all_trains_every_block(world):
    result = _adapt(world, block="all")
    names = [n for n, _ in world.generic.named_parameters()]
    assert result.facts.trainable == names


@pytest.mark.parametrize("cut", range(4))
def test_cut_forward_computes_the_model(world, cut):
    x = world.splits.population.x[:8]
    assert torch.allclose(cut_forward(world.generic, x, cut), world.generic(x), atol=1e-6)


def _backward_hits(block: str) -> tuple[set[str], list[str]]:
    """One training step with only ``block`` trainable: which blocks received an output gradient, which
    parameters outside ``block`` got a ``.grad``."""
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6)
    plan = plan_for(model, block)
    reached: set[str] = set()
    for name, module in model.blocks().items():
        module.register_full_backward_hook(lambda m, gi, go, name=name: reached.add(name))
    model.train()
    x, y = torch.randn(4, 6, 128), torch.tensor([0, 1, 2, 3])
    cut_loss(plan.cut)(model, x, y).backward()
    stray = [n for n, p in model.named_parameters() if p.grad is not None and not n.startswith(PREFIX[block])]
    return reached, stray


def test_with_fc_no_gradient_reaches_earlier_layers():
    reached, stray = _backward_hits("fc")
    assert reached == {"fc"}
    assert stray == []


def test_backward_stops_at_the_first_trainable_block():
    reached, stray = _backward_hits("stage2")
    assert reached == {"stage2", "stage3", "fc"}  # gradients pass through stage3 and fc, but not into front
    assert stray == []


def test_the_cut_holds_even_when_the_input_requires_grad():
    model = build_backbone("resnet1d", 6, 6)
    plan = plan_for(model, "stage3")
    x = torch.randn(3, 6, 128, requires_grad=True)
    nn.functional.cross_entropy(cut_forward(model, x, plan.cut), torch.tensor([0, 1, 2])).backward()
    assert x.grad is None
