"""GIP = ‖Σ Gᵢ‖² − Σ ‖Gᵢ‖² = 2⟨G₁, G₂⟩ for two contexts."""

from __future__ import annotations

import math

import pytest
import torch
from harbench_crop import gip, gip_by_stage, run_crop
from harbench_crop.diagnostics import context_gradient
from harbench_crop.pipeline import CropConfig

from harbench import build_backbone, split_train_val

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


def test_gip_is_twice_the_inner_product_of_the_context_gradients():
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6, width=8, depth=1)
    a = (torch.randn(6, 6, 32), torch.randint(0, 6, (6,)))
    b = (torch.randn(6, 6, 32) + 1, torch.randint(0, 6, (6,)))
    ga, gb = context_gradient(model, *a), context_gradient(model, *b)
    assert gip(model, [a, b]) == pytest.approx(2 * float(ga @ gb), rel=1e-4, abs=1e-6)
    assert gip(model, [a, a]) == pytest.approx(2 * float(ga @ ga), rel=1e-4)  # one context with itself: ≥ 0
    with pytest.raises(ValueError):
        gip(model, [a])


def test_gip_by_stage_uses_unseen_data_outside_the_method(world):
    target = world.splits.targets["u00"]
    train, val = split_train_val(target.adapt, 0.25)
    run = run_crop(world.generic, train, val, CropConfig(epochs=2, final_epochs=1, batch_size=8),
                   torch.Generator().manual_seed(0))
    stages = gip_by_stage(world.generic, run, target.adapt, target.test_unseen)
    assert all(math.isfinite(v) for v in (stages.generic, stages.finetuned, stages.pruned, stages.mixed, stages.final))
