"""Step 1 against a transcription of the authors' ``train()`` loop (fidelity round 3 audit).

The oracle below is the authors' code at ``Sawinder-Kaur/CRoP_IMWUT`` commit ``ed6b58b``, transcribed with only the
data loading replaced: ``Extrasensory/regularizer.py`` (``regularizer(model, 'l1', device)``: ``torch.norm(
module.weight, 1)`` summed over every Conv/Linear module of ``model.modules()``) and
``Extrasensory/run_EXTRASENSORY_PERSONAL_aaai.py`` (``CostumLoss``: ``ce_loss + self.gamma * regularization`` with
``gamma = nn.Parameter(torch.tensor([0.5]))``; ``train()``: ``Adam(itertools.chain(model.parameters(),
loss_fn.parameters()), lr=1e-4)``, one step per mini-batch). harbench's step 1 must follow the same trajectory —
the same loss value at every step (so a penalty that were averaged over the weights, normalised by their count or
restricted to the prunable ones would fail at once) and the same α and weights after every step.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from harbench_crop import L1Objective, regularised_weights
from harbench_crop.method import random_split
from harbench_crop.pipeline import train_phase
from torch import nn

from harbench import frozen_copy

pytestmark = pytest.mark.kernel


def authors_regularizer_l1(model: nn.Module) -> torch.Tensor:
    """``Extrasensory/regularizer.py``, ``reg_type == 'l1'`` branch (Conv3d added: none in their models)."""
    penalty = torch.tensor(0.0)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv1d, nn.Linear)):
            penalty += torch.norm(module.weight, 1)
    return penalty


class AuthorsCostumLoss(nn.Module):
    """``CostumLoss`` of ``run_EXTRASENSORY_PERSONAL_aaai.py`` (the code's spelling), γ0 as a parameter."""

    def __init__(self, gamma0: float):
        super().__init__()
        self.ce_fn = nn.CrossEntropyLoss()
        self.gamma = nn.Parameter(torch.tensor([gamma0]))

    def forward(self, out, ce_target, regularization):
        return self.ce_fn(out, ce_target) + self.gamma * regularization


def _batches(n: int, epochs: int, batch_size: int, generator: torch.Generator):
    """The mini-batches ``harbench.fit`` draws (a permutation per epoch; a 1-window tail is skipped for BN)."""
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            if len(idx) >= 2:
                yield idx


def test_step_1_follows_the_authors_train_loop_step_by_step(world):
    train, _ = random_split(world.user("u00").adapt, 0.3, torch.Generator().manual_seed(0))
    epochs, batch_size, lr, alpha0 = 3, 8, 1e-4, 0.5

    ours = frozen_copy(world.generic)
    for p in ours.parameters():
        p.requires_grad_(True)
    theirs = frozen_copy(world.generic)
    for p in theirs.parameters():
        p.requires_grad_(True)

    objective = L1Objective(alpha0, "code")
    phase = train_phase(ours, objective, train, None, epochs=epochs, lr=lr, batch_size=batch_size,
                        generator=torch.Generator().manual_seed(7), select_by="balanced_accuracy", keep="last",
                        select_initial=False)

    loss_fn = AuthorsCostumLoss(alpha0)
    optimizer = torch.optim.Adam(itertools.chain(theirs.parameters(), loss_fn.parameters()), lr=lr)
    losses = []
    for idx in _batches(len(train), epochs, batch_size, torch.Generator().manual_seed(7)):
        theirs.train()
        optimizer.zero_grad()
        loss = loss_fn(theirs(train.x[idx]), train.y[idx], authors_regularizer_l1(theirs))
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()) * len(idx))

    assert phase.fit.optimizer_steps == len(losses) >= 6
    # α: the same raw parameter, lowered by Adam by ≈ lr per step (∂loss/∂γ = Σ|W| > 0)
    assert objective.alpha == pytest.approx(float(loss_fn.gamma.detach()), abs=1e-6)
    assert objective.alpha == pytest.approx(alpha0 - lr * len(losses), abs=0.1 * lr * len(losses))
    # the loss: CE (batch mean) + α·Σ|W| summed over every Conv/Linear weight; per-epoch sums as harbench logs them
    per_epoch = [h["train_loss"] * len(train) for h in phase.fit.history]
    steps_per_epoch = len(losses) // epochs
    theirs_per_epoch = [sum(losses[e * steps_per_epoch : (e + 1) * steps_per_epoch]) for e in range(epochs)]
    assert per_epoch == pytest.approx(theirs_per_epoch, rel=1e-4)
    # and the weights: every parameter (biases and norm layers are trained but not penalised in both)
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert torch.allclose(a, b, atol=2e-5, rtol=1e-4), name


def test_the_authors_penalty_is_hundreds_of_times_the_cross_entropy_at_alpha0_one_half(world):
    """Why α0 = 0.5 dominates (docs: "Fidelity round 3 audit"): the code's penalty is a **sum** over every weight,
    so 0.5·Σ|W| dwarfs a batch-mean CE of order 1, and per weight its gradient 0.5·sign(w) dwarfs ∂CE/∂w; Adam
    normalises each coordinate, so one step moves (almost) every weight towards zero by ≈ lr, whatever the data."""
    train, _ = random_split(world.user("u00").adapt, 0.3, torch.Generator().manual_seed(0))
    model = frozen_copy(world.generic)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    objective = L1Objective(0.5, "code")
    penalty = float(objective.penalty(model).detach())
    assert penalty == pytest.approx(float(authors_regularizer_l1(model).detach()), rel=1e-5)
    ce = float(nn.functional.cross_entropy(model(train.x), train.y).detach())
    assert 0.5 * penalty > 100 * ce
    before = {n: w.detach().abs().clone() for n, w in model.named_parameters() if n.endswith("weight")}
    optimizer = torch.optim.Adam([*model.parameters(), *objective.parameters()], lr=1e-4)
    optimizer.zero_grad()
    objective(model, train.x, train.y).backward()
    optimizer.step()
    shrunk = torch.cat([(w.detach().abs() < before[n]).float().flatten() for n, w in regularised_weights(model).items()])
    assert float(shrunk.mean()) > 0.95
