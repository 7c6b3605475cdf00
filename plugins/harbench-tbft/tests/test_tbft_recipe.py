"""The training recipe follows the declared drift type as in the authors' code, and every step is timed."""

from __future__ import annotations

import harbench_tbft.method as method_module
import pytest
import torch
from harbench_tbft import RECIPES, SINGLE_BLOCKS, TBFT, plan_for, resolve_recipe, time_steps
from harbench_tbft.blocks import cut_loss, train_mode

from harbench import fit, frozen_copy, make_optimizer, split_train_val

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


@pytest.fixture
def optimizers(monkeypatch):
    """Records (kind, lr, weight_decay) of every optimizer the method builds."""
    calls = []

    def recording(params, kind="adam", lr=1e-3, weight_decay=0.0, momentum=0.9):
        calls.append((kind, lr, weight_decay))
        return make_optimizer(params, kind, lr, weight_decay, momentum)

    monkeypatch.setattr(method_module, "make_optimizer", recording)
    return calls


def test_feature_recipe_at_head_trains_fc_at_1e_2_and_keeps_the_best_validation_loss(world, optimizers):
    """The authors' Living17 script at HEAD (fc3140a): fc at lr 0.01, the best validation-loss model on a 15 %
    split. harbench followed the January commit before (fc 5e-3, last epoch): this test fails on that recipe."""
    user = world.user(drift="feature")
    result = TBFT(block="fc", epochs=4).adapt(world.generic, None, user, world.ctx)
    extra, facts = result.facts.extra, result.facts
    assert optimizers == [("adam", 1e-2, 0.0)]
    assert (extra["recipe"], extra["recipe_source"], extra["selection"]) == ("feature", "declared-drift",
                                                                              "best-val-loss")
    train, val = split_train_val(user.adapt, 0.15)
    assert len(val) > 0 and facts.backward_samples == 4 * len(train)  # 15 % held out, never trained on
    # the returned weights are the best validation-loss epoch's: replay the same epochs by hand
    replay = frozen_copy(world.generic)
    plan = plan_for(replay, "fc")
    report = fit(replay, train, epochs=4, batch_size=16, generator=world.ctx.generator(), loss_fn=cut_loss(plan.cut),
                 optimizer=torch.optim.Adam([p for p in replay.parameters() if p.requires_grad], lr=1e-2),
                 val=val, val_metric="loss", select_initial=False, train_mode=train_mode(replay, plan, freeze_bn=False))
    assert extra["best_epoch"] == report.best_epoch
    for (name, a), b in zip(result.model.state_dict().items(), replay.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_january_feature_recipe_is_a_named_option(world, optimizers):
    user = world.user(drift="feature")
    result = TBFT(block="fc", epochs=3, recipe="feature-3d1a8e3").adapt(world.generic, None, user, world.ctx)
    extra, facts = result.facts.extra, result.facts
    assert optimizers == [("adam", 5e-3, 0.0)]
    assert (extra["recipe"], extra["selection"]) == ("feature-3d1a8e3", "last-epoch")
    assert facts.epochs == extra["best_epoch"] == 3
    assert facts.forward_samples == facts.backward_samples == 3 * len(user.adapt)  # nothing held out or validated


def test_feature_recipe_uses_the_block_rate_for_residual_blocks(world, optimizers):
    TBFT(block="stage3", epochs=1).adapt(world.generic, None, world.user(drift="feature"), world.ctx)
    assert optimizers == [("adam", 1e-3, 0.0)]


@pytest.mark.parametrize("drift", ["input", "output"])
def test_cifar_recipe_for_input_and_output_drift(world, optimizers, drift):
    result = TBFT(block="fc", epochs=2).adapt(world.generic, None, world.user(drift=drift), world.ctx)
    extra, facts = result.facts.extra, result.facts
    assert optimizers == [("sgd", 1e-2, 5e-4)]
    assert extra["recipe"] == drift and extra["selection"] == "best-val-loss"
    assert facts.forward_samples > facts.backward_samples  # validation passes on the held-out quarter


def test_undeclared_drift_falls_back_to_the_cifar_recipe_and_overrides_win():
    recipe, source = resolve_recipe("auto", None, {})
    assert (recipe, source) == (RECIPES["input"], "fallback")
    recipe, source = resolve_recipe("auto", "feature", {})
    assert (recipe.lr_fc, recipe.val_fraction, recipe.patience) == (1e-2, 0.15, None)  # HEAD's Living17 recipe
    recipe, source = resolve_recipe("auto", "feature", {"lr_fc": 0.1, "val_fraction": 0.2, "lr": None})
    assert (source, recipe.optimizer, recipe.lr, recipe.lr_fc, recipe.val_fraction) == ("declared-drift", "adam", 1e-3, 0.1, 0.2)
    recipe, source = resolve_recipe("feature", "input", {})
    assert (recipe.name, source) == ("feature", "fixed")


def test_explicit_recipe_overrides_the_declared_drift(world, optimizers):
    TBFT(block="fc", recipe="input", epochs=1).adapt(world.generic, None, world.user(drift="feature"), world.ctx)
    assert optimizers == [("sgd", 1e-2, 5e-4)]


@pytest.mark.parametrize("block", [*SINGLE_BLOCKS, "all"])
def test_every_optimizer_step_of_the_adapt_phase_is_timed(world, block):
    result = TBFT(block=block, epochs=2).adapt(world.generic, None, world.user(drift="feature"), world.ctx)
    extra = result.facts.extra
    assert extra["steps_timed"] == result.facts.optimizer_steps > 0
    assert extra["step_s"] > 0 and extra["step_cpu_s"] > 0
    assert extra["adapt_cpu_s"] > extra["step_cpu_s"]  # the adapt phase holds every step


def test_power_py_protocol_measures_each_block_at_batch_1_and_the_recipes_batch(world):
    before = {k: v.clone() for k, v in world.generic.state_dict().items()}
    times = time_steps(world.generic, RECIPES["feature"], (1, 16), repeats=3, warmup=1)
    assert {(t.block, t.batch) for t in times} == {(b, n) for b in (*SINGLE_BLOCKS, "all", "forward") for n in (1, 16)}
    assert all(t.median_s > 0 and t.q1_s <= t.median_s <= t.q3_s and t.repeats == 3 for t in times)
    for k, v in world.generic.state_dict().items():  # each block trains a copy
        assert torch.equal(v, before[k]), k
