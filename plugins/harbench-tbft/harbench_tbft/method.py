"""TBFT as a harbench method: fine-tune one block of the generic ResNet, chosen by the user's drift type."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harbench import (
    AdaptFacts,
    AdaptResult,
    Backbone,
    Method,
    MethodContext,
    MethodState,
    Param,
    UserData,
    count_params,
    fit,
    frozen_copy,
    make_optimizer,
    split_train_val,
)

from .blocks import BLOCK_CHOICES, DRIFT_TO_BLOCK, cut_loss, plan_for, train_mode
from .flops import adapt_phase_flops, step_flops
from .rgn import choose_by_rgn


@dataclass(frozen=True)
class BlockChoice:
    """Which block an adapt run trains and why: ``source`` is ``fixed`` (the ``block`` parameter named it),
    ``declared-drift`` (the context's drift type, through the paper's taxonomy) or ``auto-rgn``."""

    block: str
    source: str
    drift: str | None
    rgn_scores: dict[str, float] | None = None


class TBFT(Method):
    """Target-block fine-tuning (Huang et al., EuroMLSys '24).

    Only the chosen block's parameters reach the optimizer; blocks below it run without autograd, so the
    backward pass, and with it the adapt phase's energy, shrinks the later the block sits. The defaults are
    the paper's CIFAR recipe (SGD, momentum 0.9, weight decay 5e-4, lr 1e-3 or 1e-2 for the classifier, up to
    10 epochs with early stopping on validation loss, patience 5), with a batch size fit for a user's few
    windows instead of 128.
    """

    name = "tbft"
    description = "target-block fine-tuning: train only the block matching the drift type (front/stage2/stage3/fc)"
    requires = frozenset({"blocks"})
    parameters = {
        "block": Param("auto", "block to fine-tune; auto = by the declared drift type, else by Auto-RGN", choices=BLOCK_CHOICES),
        "auto_by": Param("drift", "how block=auto decides: drift (declared type, RGN if undeclared) or rgn (always)",
                         choices=("drift", "rgn")),
        "epochs": Param(10, "maximum training epochs", ge=1),
        "patience": Param(5, "early-stopping patience in epochs on validation loss", ge=1),
        "lr": Param(1e-3, "learning rate of the residual blocks and of 'all'", ge=0.0),
        "lr_fc": Param(1e-2, "learning rate when only the classifier is trained", ge=0.0),
        "optimizer": Param("sgd", "optimizer (sgd: the paper's CIFAR recipe; adam: its Living17 recipe)", choices=("sgd", "adam")),
        "momentum": Param(0.9, "SGD momentum", ge=0.0, le=1.0),
        "weight_decay": Param(5e-4, "weight decay", ge=0.0),
        "batch_size": Param(16, "mini-batch size", ge=2),
        "val_fraction": Param(0.25, "share of adapt windows held out for early stopping (0 = keep last epoch)", ge=0.0, le=0.9),
        "freeze_bn": Param(False, "keep BatchNorm layers of frozen blocks in eval mode (the paper lets them update)"),
    }

    def choose_block(self, generic: Backbone, user: UserData) -> BlockChoice:
        requested, drift = self.params.block, user.context.drift
        if requested != "auto":
            return BlockChoice(requested, "fixed", drift)
        if self.params.auto_by == "drift" and drift is not None:
            return BlockChoice(DRIFT_TO_BLOCK[drift], "declared-drift", drift)
        rgn = choose_by_rgn(generic, user.adapt)
        return BlockChoice(rgn.block, "auto-rgn", drift, rgn.scores)

    def adapt(self, generic: torch.nn.Module, state: MethodState, user: UserData, ctx: MethodContext) -> AdaptResult:
        if not isinstance(generic, Backbone):
            raise TypeError(f"TBFT needs a harbench.Backbone with named blocks, got {type(generic).__name__}")
        p = self.params
        model = frozen_copy(generic)
        example = user.adapt.x[:2]
        probe_flops = 0.0
        choice = self.choose_block(model, user)
        if choice.rgn_scores is not None:  # the probe is one full forward + backward over the adapt set
            probe_flops = step_flops(model, example, cut=0).train * len(user.adapt)
        plan = plan_for(model, choice.block)
        step = step_flops(model, example, plan.cut)

        train, val = split_train_val(user.adapt, p.val_fraction) if p.val_fraction > 0 else (user.adapt, None)
        lr = p.lr_fc if plan.block == "fc" else p.lr
        optimizer = make_optimizer(model.parameters(), p.optimizer, lr, p.weight_decay, p.momentum)
        report = fit(
            model, train, epochs=p.epochs, optimizer=optimizer, batch_size=p.batch_size,
            generator=ctx.generator(), loss_fn=cut_loss(plan.cut), val=val, val_metric="loss",
            patience=p.patience if val is not None else None, select_initial=False,
            train_mode=train_mode(model, plan, p.freeze_bn),
        )
        forward_only = report.forward_samples - report.backward_samples
        flops = adapt_phase_flops(step, report.backward_samples, forward_only) + probe_flops
        return AdaptResult(model, AdaptFacts(
            params_trained=count_params(model, trainable_only=True),
            optimizer_steps=report.optimizer_steps,
            forward_samples=report.forward_samples,
            backward_samples=report.backward_samples,
            batch_size=p.batch_size,
            epochs=report.epochs_run,
            trainable=list(plan.trainable),
            flops=flops,
            extra={
                "block": choice.block,
                "block_source": choice.source,
                "drift": choice.drift,
                **({"rgn_scores": choice.rgn_scores} if choice.rgn_scores is not None else {}),
                "lr": lr,
                "best_epoch": report.best_epoch,
                "optimizer_steps": report.optimizer_steps,
                "backward_samples": report.backward_samples,
                "train_step_flops": step.train,
                "forward_flops": step.forward,
                "probe_flops": probe_flops,
            },
        ))
