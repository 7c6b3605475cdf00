"""The method end to end on tiny synthetic users: what it reads, what it returns, and its step-4 selection."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from harbench_crop import CRoP, L1Objective, random_split, run_crop, train_phase
from harbench_crop.pipeline import CropConfig

from harbench import ParamError, UserData, fit, make_optimizer, split_train_val

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

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
    # code mode at the ExtraSensory regime: α0 = 0.5 falls by ~lr = 1e-4 per step, so it stays positive here;
    # step 4 starts again at α0
    assert extra["alpha_step1_start"] == pytest.approx(0.5) and 0 < extra["alpha_step1_end"] < 0.5
    assert extra["alpha_step4_start"] == pytest.approx(0.5) and 0 < extra["alpha_step4_end"] < 0.5
    assert extra["finetune_kept_epoch"] == 3  # the last epoch of step 1 is pruned
    assert [round(a, 6) for a, _ in extra["prune_curve"]][: 1] == [0.05]
    assert facts.epochs == 6 and facts.optimizer_steps > 0 and facts.forward_samples > facts.backward_samples > 0
    assert facts.params_trained == sum(p.numel() for p in result.model.parameters())
    assert facts.flops is not None and facts.flops > 3 * facts.backward_samples  # at least one FLOP per pass


def test_same_seed_same_model(world):
    a = CRoP(**CHEAP).adapt(world.generic, None, world.user("u00"), world.ctx).model
    b = CRoP(**CHEAP).adapt(world.generic, None, world.user("u00"), world.ctx).model
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("select_by", ["balanced_accuracy", "loss"])
def test_final_selection_can_keep_the_mixed_model_at_epoch_zero(world, select_by):
    train, val = split_train_val(world.user("u00").adapt, 0.25)
    mixed = copy.deepcopy(world.generic)
    model = copy.deepcopy(mixed)
    report = train_phase(model, L1Objective(1e-4), train, val, epochs=2, lr=10.0, batch_size=8,
                         generator=torch.Generator().manual_seed(0), select_by=select_by, keep="best",
                         select_initial=True)
    assert report.kept_epoch == 0  # a learning rate of 10 only makes things worse: the given model wins
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


def _cfg(**kw):
    base = dict(epochs=4, final_epochs=4, batch_size=8, lr=1e-3, final_lr=1e-3)
    return CropConfig(**{**base, **kw})


def test_code_alpha_crosses_zero_and_is_reset_for_step_4(world):
    train, val = random_split(world.user("u00").adapt, 0.3, torch.Generator().manual_seed(0))
    # α0 = 2e-3 at lr 1e-3: Adam lowers the raw α by ~1e-3 per step, so it crosses zero after about 2 steps
    run = run_crop(world.generic, train, val, _cfg(alpha0=2e-3), torch.Generator().manual_seed(0))
    steps = run.step1.fit.optimizer_steps
    assert steps >= 6
    assert run.step1.alpha_start == pytest.approx(2e-3) and run.step1.alpha_end < -1e-3
    assert run.step1.alphas[0] > run.step1.alpha_end and min(run.step1.alphas) < 0  # falls through zero
    assert run.step4.alpha_start == pytest.approx(2e-3)  # a new loss for step 4, as the code's train()
    assert run.step4.alpha_end < 0
    # the same run without the reset carries step 1's α into step 4; softplus never crosses zero
    kept = run_crop(world.generic, train, val, _cfg(alpha0=2e-3, alpha_reset=False), torch.Generator().manual_seed(0))
    assert kept.step4.alpha_start == pytest.approx(kept.step1.alpha_end)
    soft = run_crop(world.generic, train, val, _cfg(alpha0=2e-3, alpha_mode="softplus"), torch.Generator().manual_seed(0))
    assert min([*soft.step1.alphas, *soft.step4.alphas]) > 0


def test_the_pruned_model_is_step_1s_last_epoch(world):
    train, _ = random_split(world.user("u01").adapt, 0.3, torch.Generator().manual_seed(1))
    # validation on the training windows with wrong labels: the better step 1 fits, the worse it scores, so the
    # best validation epoch comes early and the last is the worst
    n_classes = world.splits.info.num_classes
    val = dataclasses.replace(train, y=(train.y + 1) % n_classes)
    cfg = _cfg(epochs=6, lr=0.01, alpha_mode="fixed", select_by="loss")
    run = run_crop(world.generic, train, val, cfg, torch.Generator().manual_seed(3))
    assert run.step1.kept_epoch == 6
    # an independent replay: the core's fit for all 6 epochs, the same optimizer set-up, generator and loss
    reference = copy.deepcopy(world.generic)
    for p in reference.parameters():
        p.requires_grad_(True)
    objective = L1Objective(cfg.alpha0, "fixed")
    fit(reference, train, epochs=6, optimizer=make_optimizer(reference.parameters(), "adam", cfg.lr), batch_size=8,
        generator=torch.Generator().manual_seed(3), loss_fn=objective)
    for name, value in reference.state_dict().items():
        assert torch.allclose(run.finetuned.state_dict()[name].float(), value.float(), atol=1e-5), name
    # the best-validation epoch differs from the last here, and prune_from="best" would prune that one instead
    best = run_crop(world.generic, train, val, dataclasses.replace(cfg, prune_from="best"),
                    torch.Generator().manual_seed(3))
    assert run.step1.fit.best_epoch < 6, "precondition: the best validation epoch is not the last"
    assert best.step1.kept_epoch == run.step1.fit.best_epoch
    assert any(not torch.allclose(a, b) for a, b in zip(best.finetuned.parameters(), run.finetuned.parameters()))


def test_step_4_updates_the_weights_the_mask_had_zeroed(world):
    train, val = random_split(world.user("u00").adapt, 0.3, torch.Generator().manual_seed(0))
    # τ = 1 tolerates every amount: 95 % is pruned and mixed back from the generic model, then step 4 trains all
    run = run_crop(world.generic, train, val, _cfg(tau=1.0, final_epochs=3, select_by="loss"),
                   torch.Generator().manual_seed(0))
    assert run.prune.amount == pytest.approx(0.95)
    if run.selected_mixed:  # the selection may keep epoch 0; check the trained weights by keeping the last epoch
        run = run_crop(world.generic, train, None, _cfg(tau=1.0, final_epochs=3), torch.Generator().manual_seed(0))
    mixed, final = dict(run.mixed.named_parameters()), dict(run.final.named_parameters())
    moved = total = 0
    for name, mask in run.prune.masks.items():
        restored = mask == 0
        moved += int((final[name][restored] != mixed[name][restored]).sum())
        total += int(restored.sum())
    assert total > 0 and moved / total > 0.9  # no mask is enforced in step 4


def test_random_split_is_the_codes_70_30_and_seeded(world):
    adapt = world.user("u00").adapt
    train, val = random_split(adapt, 0.3, torch.Generator().manual_seed(0))
    assert len(train) == int(0.7 * len(adapt)) and len(train) + len(val) == len(adapt)
    again, _ = random_split(adapt, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(train.start, again.start)
    other, _ = random_split(adapt, 0.3, torch.Generator().manual_seed(1))
    assert not torch.equal(train.start, other.start)


def test_defaults_are_the_authors_code():
    cfg = CRoP().config()
    assert (cfg.alpha0, cfg.lr) == (0.5, pytest.approx(1e-4))  # ExtraSensory: CostumLoss.gamma 0.5, Adam lr 1e-4
    assert (cfg.alpha_mode, cfg.alpha_reset, cfg.prune_from, cfg.select_by, cfg.prune_metric, cfg.scheme) == (
        "code", True, "last", "balanced_accuracy", "balanced_accuracy", "erk")
    assert cfg.final_lr == pytest.approx(1e-4)
    assert (CRoP().params.val_split, CRoP().params.val_fraction) == ("random", 0.3)


def test_parameters_are_validated():
    with pytest.raises(ParamError):
        CRoP(tau=-0.1)
    with pytest.raises(ParamError):
        CRoP(prune_scheme="random")
    assert CRoP(tau=0.1, prune_scheme="global").config().scheme == "global"
    for bad in (dict(alpha_mode="clamp"), dict(prune_from="first"), dict(select_by="f1"), dict(val_split="kfold")):
        with pytest.raises(ParamError):
            CRoP(**bad)


def test_run_is_the_adapt_path_that_scripts_gip_stages_diagnoses(world):
    """scripts/gip_stages.py calls ``CRoP.run`` with the runner's MethodContext: it must give adapt's model."""
    method = CRoP(**CHEAP)
    adapted = method.adapt(world.generic, None, world.user("u01"), world.ctx).model
    run, _ = method.run(world.generic, world.user("u01").adapt, world.ctx)
    for (name, x), (_, y) in zip(adapted.state_dict().items(), run.final.state_dict().items()):
        assert torch.equal(x, y), name
    source = (Path(__file__).parents[1] / "scripts" / "gip_stages.py").read_text()
    assert "method.run(" in source and "MethodContext(seed=args.seed" in source


def test_default_alpha_stays_positive_for_its_first_alpha0_over_lr_steps(world):
    """The authors' scripts run with α0/lr of 10 (Stress) to 5,000 (ExtraSensory) Adam steps before the raw α
    can reach zero; harbench's earlier defaults (α0 1e-4, lr 1e-3) had α negative after the first step, the L1
    term rewarding large weights for all of step 1. Under the defaults, α must stay positive for at least
    ⌊α0/lr⌋ steps, and that horizon must cover both phases of a harness-sized run."""
    cfg = CRoP().config()
    horizon = int(cfg.alpha0 / cfg.lr)
    assert horizon >= 1000  # the HAR/WiFi scripts' regime (ExtraSensory 5,000, WIDAR 1,000), not 0 (old: 0.1)
    train, val = random_split(world.user("u00").adapt, 0.3, torch.Generator().manual_seed(0))
    run = run_crop(world.generic, train, val, dataclasses.replace(cfg, epochs=6, final_epochs=6),
                   torch.Generator().manual_seed(0))
    steps = run.step1.fit.optimizer_steps + run.step4.fit.optimizer_steps
    assert 0 < steps <= horizon
    assert min([run.step1.alpha_start, *run.step1.alphas, run.step4.alpha_start, *run.step4.alphas]) > 0
    # Adam moves the raw α by about lr per step, never more than ~2·lr: it is still near α0 after `steps` steps
    assert run.step1.alpha_end > cfg.alpha0 - 2 * cfg.lr * run.step1.fit.optimizer_steps
