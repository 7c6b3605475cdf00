"""The paper's network structure in 1-D: a pre-activation ResNet-26 whose stages cost the same."""

from __future__ import annotations

import pytest
import torch
from harbench_tbft import TBFTPreAct, block_shares, cut_forward, plan_for, step_flops
from harbench_tbft.blocks import cut_loss
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harbench import build_backbone, count_params

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


def _stage_forward_flops(model) -> dict[str, float]:
    """Forward FLOPs of the stem and of each residual stage on one window, as torch counts them."""
    x = torch.randn(1, 6, 128)
    parts = {"stem": model.front.stem, "stage1": model.front.stage1, "stage2": model.stage2, "stage3": model.stage3} \
        if hasattr(model.front, "stem") else {}
    flops = {}
    model.eval()
    with torch.no_grad():
        for name, part in parts.items():
            with FlopCounterMode(display=False) as counter:
                x = part(x)
            flops[name] = counter.get_total_flops()
    return flops


def test_stage_flop_shares_are_within_ten_percent_of_each_other():
    flops = _stage_forward_flops(build_backbone("preact1d", 6, 6))
    stages = [flops["stage1"], flops["stage2"], flops["stage3"]]
    assert max(stages) / min(stages) <= 1.10, flops
    shares = block_shares(m := build_backbone("preact1d", 6, 6), step_flops(m, torch.randn(2, 6, 128), cut=0))
    front, s2, s3 = (shares[b]["forward"] for b in ("front", "stage2", "stage3"))
    assert max(front, s2, s3) / min(front, s2, s3) <= 1.15  # front also holds the stem: 35 / 32 / 32 %


def test_resnet1d_is_the_unbalanced_contrast():
    m = build_backbone("resnet1d", 6, 6)
    shares = block_shares(m, step_flops(m, torch.randn(2, 6, 128), cut=0))
    assert shares["stage3"]["forward"] > 2.5 * shares["front"]["forward"]  # 55 % vs 17 %


def test_structure_is_the_papers():
    m = build_backbone("preact1d", 6, 6)
    blocks = [mod for mod in m.modules() if type(mod).__name__ == "PreActBlock1d"]
    assert len(blocks) == 12  # depth 26 = 6 * 4 + 2: four blocks per stage
    assert list(m.blocks()) == ["front", "stage2", "stage3", "neck", "fc"]
    assert isinstance(m.neck[0], nn.BatchNorm1d) and isinstance(m.neck[1], nn.ReLU)  # final BN + ReLU
    shortcuts = [b.downsample for b in blocks if b.downsample is not None]
    assert len(shortcuts) == 2 and all(sum(p.numel() for p in s.parameters()) == 0 for s in shortcuts)
    sizes = {b: sum(p.numel() for p in mod.parameters()) for b, mod in m.blocks().items()}
    assert sizes["stage3"] > 0.7 * count_params(m)  # as in the paper's network, the last stage holds ~3/4
    assert m(torch.randn(3, 6, 128)).shape == (3, 6)
    with pytest.raises(ValueError, match="6N"):
        build_backbone("preact1d", 6, 6, depth=25)


def test_the_final_bn_is_trained_only_with_all():
    m = build_backbone("preact1d", 6, 6)
    assert not any(n.startswith("neck.") for n in plan_for(m, "stage3").trainable)
    assert any(n.startswith("neck.") for n in plan_for(m, "all").trainable)


@pytest.mark.parametrize("block", ["front", "stage2", "stage3", "fc", "all"])
def test_counted_step_equals_the_flops_torch_executes(block):
    torch.manual_seed(0)
    model = build_backbone("preact1d", 6, 6)
    plan = plan_for(model, block)
    x, y = torch.randn(4, 6, 128), torch.tensor([0, 1, 2, 3])
    counted = step_flops(model, x, plan.cut)
    model.train()
    with FlopCounterMode(display=False) as executed:
        cut_loss(plan.cut)(model, x, y).backward()
    assert counted.train == pytest.approx(executed.get_total_flops() / len(x), rel=1e-9)


def test_block_shares_backward_is_full_fine_tunings_backward():
    for name in ("resnet1d", "preact1d"):
        model = build_backbone(name, 6, 6)
        x = torch.randn(2, 6, 128)
        shares = block_shares(model, step_flops(model, x, plan_for(model, "fc").cut))  # any plan: same answer
        full = step_flops(model, x, plan_for(model, "all").cut)
        per_layer = {layer.name: layer.forward for layer in full.layers}
        fc_backward = 2 * per_layer["fc"] / (full.activation_grad + full.weight_grad)
        assert shares["fc"]["backward"] == pytest.approx(fc_backward, rel=1e-9)
        assert sum(s["forward"] for s in shares.values()) == pytest.approx(1.0)
        assert sum(s["backward"] for s in shares.values()) == pytest.approx(1.0)


def test_cut_forward_computes_the_model():
    model = build_backbone("preact1d", 6, 6).eval()
    x = torch.randn(5, 6, 128)
    for cut in range(5):
        assert torch.allclose(cut_forward(model, x, cut), model(x), atol=1e-6)


def test_tbft_preact_adapts_on_its_backbone(world):
    torch.manual_seed(0)
    generic = build_backbone("preact1d", world.splits.info.channels, world.splits.info.num_classes).eval()
    result = TBFTPreAct(block="stage3", epochs=1).adapt(generic, None, world.user(drift="feature"), world.ctx)
    assert all(n.startswith("stage3.") for n in result.facts.trainable)
    assert set(result.facts.extra["block_shares"]) == {"front", "stage2", "stage3", "neck", "fc"}
