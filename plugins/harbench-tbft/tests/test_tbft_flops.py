"""The adapt phase's FLOPs: counted from the real graph, equal to what torch executes, ordered by block depth."""

from __future__ import annotations

import pytest
import torch
from harbench_tbft import TBFT, plan_for, step_flops
from harbench_tbft.blocks import cut_loss
from torch.utils.flop_counter import FlopCounterMode

from harbench import build_backbone, flops_per_window

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

BLOCKS = ["front", "stage2", "stage3", "fc", "all"]


@pytest.mark.parametrize("block", BLOCKS)
def test_counted_step_equals_the_flops_torch_executes(block):
    """The analytic count (forward everywhere, input gradients above the cut, weight gradients where trainable)
    is exactly what torch's dispatcher runs for one forward + backward with the cut."""
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6)
    plan = plan_for(model, block)
    x, y = torch.randn(4, 6, 128), torch.tensor([0, 1, 2, 3])
    counted = step_flops(model, x, plan.cut)
    model.train()
    with FlopCounterMode(display=False) as executed:
        cut_loss(plan.cut)(model, x, y).backward()
    assert counted.train == pytest.approx(executed.get_total_flops() / len(x), rel=1e-9)
    assert counted.forward == pytest.approx(flops_per_window(model, x), rel=1e-9)


def test_first_trainable_layer_computes_no_input_gradient():
    model = build_backbone("resnet1d", 6, 6)
    plan = plan_for(model, "stage3")
    layers = {layer.name: layer for layer in step_flops(model, torch.randn(2, 6, 128), plan.cut).layers}
    assert not layers["stage3.0.conv1"].input_grad and not layers["stage3.0.shortcut.0"].input_grad
    assert layers["stage3.0.conv2"].input_grad and layers["fc"].input_grad
    assert not any(layers[n].input_grad or layers[n].weight_grad for n in layers if n.startswith(("front", "stage2")))


def test_adapt_flops_fall_with_the_depth_of_the_block(world):
    """Same model, same data, same number of steps (no early stopping): fc < stage3 < stage2 < front < all."""
    flops = {}
    for block in BLOCKS:
        result = TBFT(block=block, epochs=1, val_fraction=0.0).adapt(world.generic, None, world.user(), world.ctx)
        assert result.facts.backward_samples == len(world.user().adapt)
        flops[block] = result.facts.flops
    assert flops["fc"] < flops["stage3"] < flops["stage2"] < flops["front"] < flops["all"]
    assert flops["fc"] < 0.5 * flops["all"]  # rear-block training is little more than inference


def test_adapt_flops_count_training_and_validation_passes(world):
    result = TBFT(block="stage2", epochs=2, patience=5).adapt(world.generic, None, world.user(), world.ctx)
    facts, extra = result.facts, result.facts.extra
    validation = facts.forward_samples - facts.backward_samples
    assert validation > 0
    assert facts.flops == pytest.approx(extra["train_step_flops"] * facts.backward_samples
                                        + extra["forward_flops"] * validation)
