"""The L1 objective: which tensors it penalises, the three α modes, and CE-only scoring in eval mode."""

from __future__ import annotations

import pytest
import torch
from harbench_crop import L1Objective, regularised_weights

from harbench import MobileNet1d, build_backbone, cross_entropy

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


def test_penalty_covers_conv_and_linear_weights_including_the_classifier_only():
    model = MobileNet1d(6, 6)
    names = set(regularised_weights(model))
    assert "classifier.weight" in names
    assert not any(n.endswith("bias") for n in names)
    bn_weights = {f"{m}.weight" for m, mod in model.named_modules() if isinstance(mod, torch.nn.BatchNorm1d)}
    assert not names & bn_weights
    with torch.no_grad():
        expected = sum(w.abs().sum() for n, w in model.named_parameters() if n in names)
        assert float(L1Objective(1e-3).penalty(model)) == pytest.approx(float(expected), rel=1e-6)


def test_training_loss_adds_alpha_times_l1_and_eval_loss_is_cross_entropy():
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6, width=8, depth=1)
    x, y = torch.randn(4, 6, 32), torch.tensor([0, 1, 2, 3])
    objective = L1Objective(0.01)
    model.train()
    train_loss = objective(model, x, y)
    ce_train = cross_entropy(model, x, y)
    assert float((train_loss - ce_train).detach()) == pytest.approx(0.01 * float(objective.penalty(model).detach()), rel=1e-4)
    model.eval()
    assert torch.equal(objective(model, x, y), cross_entropy(model, x, y))
    assert objective.alpha == pytest.approx(0.01, rel=1e-6)


def _train(objective, steps, lr):
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6, width=8, depth=1)
    optimizer = torch.optim.Adam([*model.parameters(), *objective.parameters()], lr=lr)
    x, y = torch.randn(8, 6, 32), torch.randint(0, 6, (8,))
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        objective(model, x, y).backward()
        optimizer.step()
    return objective.alpha


def test_softplus_alpha_shrinks_and_stays_non_negative():
    assert 0.0 <= _train(L1Objective(1e-3, "softplus"), 20, lr=0.5) < 1e-3  # huge steps on purpose


def test_code_alpha_falls_by_about_the_learning_rate_per_step_and_goes_negative():
    # ∂loss/∂α = Σ|W| > 0 at every step, so Adam moves the raw α down by ~lr each step: 1e-3 − 20·1e-3 ≈ −0.019
    alpha = _train(L1Objective(1e-3, "code"), 20, lr=1e-3)
    assert -0.025 < alpha < -0.012


def test_fixed_alpha_has_nothing_to_train():
    objective = L1Objective(1e-3, "fixed")
    assert not list(objective.parameters())
    assert _train(objective, 5, lr=0.5) == pytest.approx(1e-3)


@pytest.mark.parametrize("mode", ["code", "softplus", "fixed"])
def test_zero_alpha_disables_the_penalty(mode):
    objective = L1Objective(0.0, mode)
    assert objective.alpha == 0.0 and not list(objective.parameters())
    with pytest.raises(ValueError):
        L1Objective(-1.0, mode)
    with pytest.raises(ValueError):
        L1Objective(1e-3, "clamped")
