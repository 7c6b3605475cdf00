"""ToleratedPrune: the last amount within τ, the fallbacks, balanced accuracy, ERK as in the code, and which tensors a
mask may touch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from harbench_crop import (
    apply_masks,
    balanced_accuracy,
    erk_layer_amount,
    erk_masks,
    global_masks,
    magnitude_masks,
    prunable_weights,
    tolerated_prune,
)
from harbench_crop.pruning import candidate_amounts, sparsity
from torch import nn

from harbench import Windows, build_backbone

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

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


def gated_data(y: torch.Tensor | None = None) -> Windows:
    n = N_GATES
    zeros = torch.zeros(n, dtype=torch.long)
    return Windows(x=torch.eye(n)[:, None, :], y=torch.ones(n, dtype=torch.long) if y is None else y,
                   recording=zeros, start=torch.arange(n), user=zeros, context=zeros)


def test_returns_the_last_amount_within_tolerance():
    model, data = GatedModel(), gated_data()
    outcome = tolerated_prune(model, data, tau=0.12, start=0.05, step=0.05, scheme="global")
    # 0.05 and 0.10 drop accuracy by 5 and 10 points (within 12); 0.15 drops 15 points and stops the search
    assert [s.amount for s in outcome.steps] == [0.05, 0.10, 0.15]
    assert [s.within_tolerance for s in outcome.steps] == [True, True, False]
    assert outcome.amount == pytest.approx(0.10)
    assert outcome.accuracy_unpruned == 1.0 and outcome.accuracy == pytest.approx(0.90)
    assert outcome.sparsity == pytest.approx(0.10)
    kept = outcome.masks["gate.weight"][0]
    assert kept.sum() == 90 and bool((kept[-10:] == 0).all())  # the ten smallest gates are the last ten


def test_a_drop_of_exactly_tau_is_tolerated():
    outcome = tolerated_prune(GatedModel(), gated_data(), tau=0.10, start=0.05, step=0.05, scheme="global")
    assert outcome.amount == pytest.approx(0.10)


def test_first_step_failing_gives_the_all_ones_mask_with_global_pruning():
    model, data = GatedModel(), gated_data()
    outcome = tolerated_prune(model, data, tau=0.01, start=0.05, step=0.05, scheme="global")
    assert outcome.amount == 0.0 and outcome.sparsity == 0.0
    assert len(outcome.steps) == 1 and not outcome.steps[0].within_tolerance
    assert all(bool((m == 1).all()) for m in outcome.masks.values())


def test_each_amount_is_one_shot_from_the_given_weights():
    model, data = GatedModel(), gated_data()
    before = copy.deepcopy(model.state_dict())
    outcome = tolerated_prune(model, data, tau=0.5, start=0.05, step=0.05, scheme="global")
    assert outcome.amount == pytest.approx(0.50)
    for name, value in model.state_dict().items():  # the model handed in is never pruned
        assert torch.equal(value, before[name])
    # the chosen mask is exactly one-shot magnitude pruning of the original weights at that amount
    expected = global_masks(prunable_weights(model), outcome.amount)
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
    masks = magnitude_masks(model, 0.8, scheme)
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
    masks = global_masks(weights, 0.3)
    total = 200 + 105
    assert int(sum((m == 0).sum() for m in masks.values())) == round(0.3 * total)
    pruned = torch.cat([w[m == 0].abs() for w, m in zip(weights.values(), masks.values())])
    kept = torch.cat([w[m == 1].abs() for w, m in zip(weights.values(), masks.values())])
    assert pruned.max() <= kept.min()  # magnitude ranking across tensors, not per tensor


class SmallNet(nn.Module):
    """Two convolutions (one depthwise), a hidden Linear and the classifier ``head``: every ERK case of the code."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, 4, 3)
        self.conv2 = nn.Conv1d(4, 6, 5)
        self.dw = nn.Conv1d(6, 6, 3, groups=6)
        self.hidden = nn.Linear(6, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        h = self.dw(self.conv2(self.conv1(x))).mean(-1)
        return self.head(self.hidden(h))


def test_erk_amounts_and_masks_match_a_hand_computation():
    torch.manual_seed(0)
    model = SmallNet()
    with torch.no_grad():
        model.head.weight.mul_(1e-3)  # the classifier's scores are the smallest of the pool
    p = 0.5
    # prune_model_structured_erdos_renyi_kernel, worked by hand from the module sizes:
    hand = {
        "conv1.weight": p * (1 - (2 + 4 + 3) / (2 * 4 * 3)),       # 0.3125
        "conv2.weight": p * (1 - (4 + 6 + 5) / (4 * 6 * 5)),       # 0.4375
        "dw.weight": p * (1 - (6 + 6 + 3) / (6 * 6 * 3)),          # in_channels = 6, not the weight's 1 per group
        "hidden.weight": p * (1 - (6 + 5) / (6 * 5)) + 0.02,       # Linear: + 0.02 while p < 0.98
    }
    assert hand["conv1.weight"] == pytest.approx(0.3125) and hand["conv2.weight"] == pytest.approx(0.4375)
    for name, module in [("conv1.weight", model.conv1), ("conv2.weight", model.conv2), ("dw.weight", model.dw),
                         ("hidden.weight", model.hidden)]:
        assert erk_layer_amount(module, p) == pytest.approx(hand[name], abs=1e-12)
    assert erk_layer_amount(model.hidden, 0.98) == pytest.approx(0.98 * (1 - 11 / 30))  # no bonus from 0.98 on

    # magnitude_prune_unstruct: one |w| pool over every Conv/Linear, the classifier included; per layer the pool's
    # quantile at its ERK amount, and |w| <= that quantile is pruned. numpy computes the quantiles independently.
    pool = np.concatenate([m.weight.detach().abs().flatten().numpy()
                           for m in (model.conv1, model.conv2, model.dw, model.hidden, model.head)])
    masks = erk_masks(model, p)
    assert set(masks) == set(hand)  # the classifier is scored but never masked
    for name, ratio in hand.items():
        w = dict(model.named_parameters())[name].detach().abs().numpy()
        expected = (w > np.quantile(pool, ratio)).astype(np.float32)
        assert np.array_equal(masks[name].numpy(), expected), name
    # the classifier's (tiny) scores sit in the pool: without them every threshold would be higher
    no_head = np.concatenate([pool[: -model.head.weight.numel()]])
    w1 = model.conv1.weight.detach().abs().numpy()
    assert (w1 <= np.quantile(no_head, hand["conv1.weight"])).sum() > (masks["conv1.weight"] == 0).sum().item()


def test_balanced_accuracy_is_the_mean_recall_of_the_true_classes():
    y, pred = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 1])
    assert balanced_accuracy(y, pred) == pytest.approx((2 / 3 + 1) / 2)
    assert balanced_accuracy(torch.tensor([0, 0, 2]), torch.tensor([1, 0, 2])) == pytest.approx((1 / 2 + 1) / 2)


def test_tolerance_is_checked_on_balanced_accuracy_by_default():
    # The ten largest gates carry class 0, which the model always gets wrong; the other 90 windows are class 1 and
    # right while their gate lives. Pruning n windows costs n/100 of accuracy but n/180 of balanced accuracy.
    y = torch.ones(N_GATES, dtype=torch.long)
    y[:10] = 0
    data = gated_data(y)
    balanced = tolerated_prune(GatedModel(), data, tau=0.06, scheme="global")
    plain = tolerated_prune(GatedModel(), data, tau=0.06, scheme="global", metric="accuracy")
    assert balanced.accuracy_unpruned == pytest.approx(0.5) and plain.accuracy_unpruned == pytest.approx(0.9)
    assert balanced.amount == pytest.approx(0.10)  # 10/180 = 0.056 ≤ 0.06 < 15/180
    assert plain.amount == pytest.approx(0.05)  # 0.05 ≤ 0.06 < 0.10


def test_erk_first_step_failing_prunes_at_amount_zero_as_the_code():
    torch.manual_seed(0)
    model = SmallNet()
    with torch.no_grad():  # the pool's smallest score is in conv1; the next two are in the hidden Linear
        model.conv1.weight[0, 0, 0] = 0.5e-9
        model.hidden.weight[0, :2] = torch.tensor([1e-9, 2e-9])
    zeros = torch.zeros(12, dtype=torch.long)
    data = Windows(torch.randn(12, 2, 16), torch.randint(0, 3, (12,)), zeros, torch.arange(12) * 16, zeros, zeros)
    outcome = tolerated_prune(model, data, tau=-1.0, scheme="erk")  # nothing can be within a negative tolerance
    assert outcome.amount == 0.0 and len(outcome.steps) == 1
    expected = erk_masks(model, 0.0)
    assert all(torch.equal(outcome.masks[n], expected[n]) for n in expected)
    # at amount 0 a convolution loses only weights at the pool's minimum; a hidden Linear is pruned at the pool's
    # 2 % quantile (the code's + 0.02), so its second-smallest weight goes too
    assert expected["conv1.weight"][0, 0, 0] == 0 and int((expected["conv1.weight"] == 0).sum()) == 1
    assert expected["hidden.weight"][0, 1] == 0
    assert all(bool((expected[n] == 1).all()) for n in ("conv2.weight", "dw.weight"))


def test_erk_variant_runs_inside_tolerated_prune():
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6, width=8, depth=1)
    zeros = torch.zeros(12, dtype=torch.long)
    torch.manual_seed(0)
    data = Windows(torch.randn(12, 6, 32), torch.randint(0, 6, (12,)), zeros, torch.arange(12) * 32, zeros, zeros)
    outcome = tolerated_prune(model, data, tau=1.0, start=0.2, step=0.2, max_amount=0.6, scheme="erk")
    assert outcome.amount == pytest.approx(0.6)  # τ = 1 tolerates everything: the cap is reached
    assert 0.0 < outcome.sparsity < 1.0
