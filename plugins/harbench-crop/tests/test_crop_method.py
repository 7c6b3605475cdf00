"""The method end to end on tiny synthetic users: what it reads, what it returns, and its step-4 selection."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from harbench import ParamError, UserData, split_train_val
from harbench_crop import CRoP, L1Objective, finetune_with_l1, run_crop
from harbench_crop.pipeline import CropConfig

CHEAP = dict(epochs=3, final_epochs=3, batch_size=8)


class RecordingUser:
    """Stands in for :class:`UserData` and records every attribute the method reads."""

    def __init__(self, real: UserData):
        object.__setattr__(self, "_real", real)
        object.__setattr__(self, "read", [])

    def __getattr__(self, name):
        self.read.append(name)
        return getattr(self._real, name)


def test_user_data_carries_only_the_available_context(world):
    assert {f.name for f in dataclasses.fields(UserData)} == {"user", "context", "adapt"}
    target = world.splits.targets["u00"]
    user = world.user("u00")
    adapt_index = [c.name for c in world.splits.info.contexts].index(target.adapt_context)
    assert bool((user.adapt.context == adapt_index).all())
    assert target.unseen_contexts and target.adapt_context not in target.unseen_contexts


def test_method_reads_nothing_but_the_adapt_windows(world):
    user = RecordingUser(world.user("u00"))
    CRoP(**CHEAP).adapt(world.generic, None, user, world.ctx)
    assert set(user.read) == {"adapt"}


def test_adapt_returns_a_personalized_copy_and_reports_its_decisions(world):
    before = copy.deepcopy(world.generic.state_dict())
    result = CRoP(**CHEAP).adapt(world.generic, None, world.user("u01"), world.ctx)
    for name, value in world.generic.state_dict().items():
        assert torch.equal(value, before[name]), f"generic model modified: {name}"
    assert result.model is not world.generic
    assert any(not torch.equal(v, before[n]) for n, v in result.model.state_dict().items())

    facts = result.facts
    extra = facts.extra
    assert 0.0 <= extra["sparsity"] < 1.0
    assert extra["selected_state"] in {"mixed", "final-finetune"}
    assert (extra["selected_state"] == "mixed") == (extra["final_selected_epoch"] == 0)
    assert 0.0 <= extra["alpha_end"] <= extra["alpha_after_finetune"] <= extra["alpha_start"]
    assert [round(a, 6) for a, _ in extra["prune_curve"]][: 1] == [0.05]
    assert facts.epochs == 6 and facts.optimizer_steps > 0 and facts.forward_samples > facts.backward_samples > 0
    assert facts.params_trained == sum(p.numel() for p in result.model.parameters())
    assert facts.flops is not None and facts.flops > 3 * facts.backward_samples  # at least one FLOP per pass


def test_same_seed_same_model(world):
    a = CRoP(**CHEAP).adapt(world.generic, None, world.user("u00"), world.ctx).model
    b = CRoP(**CHEAP).adapt(world.generic, None, world.user("u00"), world.ctx).model
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_final_selection_can_keep_the_mixed_model_at_epoch_zero(world):
    train, val = split_train_val(world.user("u00").adapt, 0.25)
    mixed = copy.deepcopy(world.generic)
    model = copy.deepcopy(mixed)
    report = finetune_with_l1(model, L1Objective(1e-4), train, val, epochs=2, lr=10.0, batch_size=8,
                              generator=torch.Generator().manual_seed(0), select_by="loss", select_initial=True)
    assert report.best_epoch == 0  # a learning rate of 10 only makes things worse: the given model wins
    for name, value in model.state_dict().items():
        assert torch.equal(value, mixed.state_dict()[name]), name


def test_pipeline_mixes_generic_weights_into_the_pruned_positions(world):
    train, val = split_train_val(world.user("u00").adapt, 0.25)
    run = run_crop(world.generic, train, val, CropConfig(epochs=3, final_epochs=1, tau=0.3, batch_size=8),
                   torch.Generator().manual_seed(0))
    assert run.prune.sparsity > 0  # τ = 0.3 tolerates some pruning on this data
    generic, mixed, finetuned = (dict(m.named_parameters()) for m in (world.generic, run.mixed, run.finetuned))
    for name, mask in run.prune.masks.items():
        assert torch.equal(mixed[name][mask == 0], generic[name][mask == 0])
        assert torch.equal(mixed[name][mask == 1], finetuned[name][mask == 1])
    assert run.selected_mixed == (run.final_report.best_epoch == 0)


def test_parameters_are_validated():
    with pytest.raises(ParamError):
        CRoP(tau=-0.1)
    with pytest.raises(ParamError):
        CRoP(prune_scheme="random")
    assert CRoP(tau=0.1, prune_scheme="erk").config().scheme == "erk"
