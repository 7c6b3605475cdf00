"""ToleratedPrune: the last amount within τ, the all-ones edge case, and which tensors a mask may touch."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from harbench import Windows, build_backbone
from harbench_crop import apply_masks, magnitude_masks, prunable_weights, tolerated_prune
from harbench_crop.pruning import candidate_amounts, erk_layer_amount, sparsity

N_GATES = 100


class GatedModel(nn.Module):
    """Window i is classified correctly exactly while ``gate.weight[0, i]`` is non-zero.

    The gate magnitudes are 1..100, so global pruning at amount p removes the round(100p) windows with the
    smallest gates and the accuracy is exactly 1 − round(100p)/100: the tolerated amount is known in advance.
    The classifier's weights are tiny, so a pruning that wrongly included it would zero them first.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Linear(N_GATES, 1, bias=False)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.gate.weight.copy_(torch.arange(1, N_GATES + 1, dtype=torch.float32).flip(0)[None])
            self.head.weight.fill_(1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alive = (x[:, 0, :] * (self.gate.weight[0] != 0).float()).sum(-1)
        return torch.stack([1 - alive, alive], dim=-1) + 0 * self.head(alive[:, None])


def gated_data() -> Windows:
    n = N_GATES
    zeros = torch.zeros(n, dtype=torch.long)
    return Windows(x=torch.eye(n)[:, None, :], y=torch.ones(n, dtype=torch.long), recording=zeros,
                   start=torch.arange(n), user=zeros, context=zeros)


def test_returns_the_last_amount_within_tolerance():
    model, data = GatedModel(), gated_data()
    outcome = tolerated_prune(model, data, tau=0.12, start=0.05, step=0.05)
    # 0.05 and 0.10 drop accuracy by 5 and 10 points (within 12); 0.15 drops 15 points and stops the search
    assert [s.amount for s in outcome.steps] == [0.05, 0.10, 0.15]
    assert [s.within_tolerance for s in outcome.steps] == [True, True, False]
    assert outcome.amount == pytest.approx(0.10)
    assert outcome.accuracy_unpruned == 1.0 and outcome.accuracy == pytest.approx(0.90)
    assert outcome.sparsity == pytest.approx(0.10)
    kept = outcome.masks["gate.weight"][0]
    assert kept.sum() == 90 and bool((kept[-10:] == 0).all())  # the ten smallest gates are the last ten


def test_a_drop_of_exactly_tau_is_tolerated():
    outcome = tolerated_prune(GatedModel(), gated_data(), tau=0.10, start=0.05, step=0.05)
    assert outcome.amount == pytest.approx(0.10)


def test_first_step_failing_gives_the_all_ones_mask():
    model, data = GatedModel(), gated_data()
    outcome = tolerated_prune(model, data, tau=0.01, start=0.05, step=0.05)
    assert outcome.amount == 0.0 and outcome.sparsity == 0.0
    assert len(outcome.steps) == 1 and not outcome.steps[0].within_tolerance
    assert all(bool((m == 1).all()) for m in outcome.masks.values())


def test_each_amount_is_one_shot_from_the_given_weights():
    model, data = GatedModel(), gated_data()
    before = copy.deepcopy(model.state_dict())
    outcome = tolerated_prune(model, data, tau=0.5, start=0.05, step=0.05)
    assert outcome.amount == pytest.approx(0.50)
    for name, value in model.state_dict().items():  # the model handed in is never pruned
        assert torch.equal(value, before[name])
    # the chosen mask is exactly one-shot magnitude pruning of the original weights at that amount
    expected = magnitude_masks(prunable_weights(model), outcome.amount)
    assert torch.equal(outcome.masks["gate.weight"], expected["gate.weight"])


def test_schedule_reaches_the_cap_without_rounding_drift():
    amounts = candidate_amounts(0.05, 0.05, 0.95)
    assert len(amounts) == 19 and amounts[0] == 0.05 and amounts[-1] == pytest.approx(0.95)
    assert candidate_amounts(0.05, 0.01, 0.1) == pytest.approx([0.05, 0.06, 0.07, 0.08, 0.09, 0.10])


@pytest.mark.parametrize("backbone", ["resnet1d", "mobilenet1d"])
@pytest.mark.parametrize("scheme", ["global", "erk"])
def test_masks_never_touch_biases_norm_layers_or_the_classifier(backbone, scheme):
    torch.manual_seed(0)
    model = build_backbone(backbone, 6, 6)
    names = set(prunable_weights(model))
    head_weight = [n for n, p in model.named_parameters() if p is model.head.weight]
    assert head_weight and head_weight[0] not in names
    norm_params = {f"{m}.{p}" for m, mod in model.named_modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)
                   for p, _ in mod.named_parameters(recurse=False)}
    assert norm_params and not names & norm_params
    assert not any(n.endswith("bias") for n in names)
    convs = {f"{m}.weight" for m, mod in model.named_modules() if isinstance(mod, nn.Conv1d)}
    assert names == convs  # every convolution weight, nothing else

    before = copy.deepcopy(model.state_dict())
    masks = magnitude_masks(prunable_weights(model), 0.8, scheme)
    assert 0.5 < sparsity(masks) < 0.95
    apply_masks(model, masks)
    for name, value in model.state_dict().items():
        if name in names:
            assert torch.equal(value, before[name] * masks[name])
        else:  # biases, BatchNorm weights and running statistics, the classifier
            assert torch.equal(value, before[name]), name


def test_global_pruning_zeroes_exactly_the_requested_share():
    torch.manual_seed(1)
    weights = {"a": torch.randn(10, 20), "b": torch.randn(3, 7, 5)}
    masks = magnitude_masks(weights, 0.3)
    total = 200 + 105
    assert int(sum((m == 0).sum() for m in masks.values())) == round(0.3 * total)
    pruned = torch.cat([w[m == 0].abs() for w, m in zip(weights.values(), masks.values())])
    kept = torch.cat([w[m == 1].abs() for w, m in zip(weights.values(), masks.values())])
    assert pruned.max() <= kept.min()  # magnitude ranking across tensors, not per tensor


def test_erk_amounts_follow_the_paper_code():
    conv = torch.Size([16, 8, 5])
    assert erk_layer_amount(conv, 0.5) == pytest.approx(0.5 * (1 - (8 + 16 + 5) / (8 * 16 * 5)))
    linear = torch.Size([32, 64])
    assert erk_layer_amount(linear, 0.5) == pytest.approx(0.5 * (1 - 96 / 2048) + 0.02)
    assert erk_layer_amount(linear, 0.98) == pytest.approx(0.98 * (1 - 96 / 2048))
    # a thin layer is pruned less than a wide one at the same nominal amount
    assert erk_layer_amount(torch.Size([4, 2, 3]), 0.5) < erk_layer_amount(torch.Size([64, 64, 5]), 0.5)


def test_erk_variant_runs_inside_tolerated_prune():
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6, width=8, depth=1)
    zeros = torch.zeros(12, dtype=torch.long)
    torch.manual_seed(0)
    data = Windows(torch.randn(12, 6, 32), torch.randint(0, 6, (12,)), zeros, torch.arange(12) * 32, zeros, zeros)
    outcome = tolerated_prune(model, data, tau=1.0, start=0.2, step=0.2, max_amount=0.6, scheme="erk")
    assert outcome.amount == pytest.approx(0.6)  # τ = 1 tolerates everything: the cap is reached
    assert 0.0 < outcome.sparsity < 1.0
