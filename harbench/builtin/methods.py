"""Baselines: the generic model as is, full fine-tuning, and classifier-only fine-tuning."""

from __future__ import annotations

from .. import (
    AdaptFacts,
    AdaptResult,
    Method,
    Param,
    count_params,
    fit,
    frozen_copy,
    hookimpl,
    make_optimizer,
    split_train_val,
)


class Generic(Method):
    name = "generic"
    description = "the population-trained model, unchanged (the reference every gain is measured against)"

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(model=generic, facts=AdaptFacts())


class FineTune(Method):
    """Fine-tunes a copy of the generic model on the user's adapt data, keeping the best epoch on a held-out part."""

    name = "finetune-full"
    description = "fine-tune every parameter on the user's labelled data"
    parameters = {
        "epochs": Param(15, "training epochs", ge=1),
        "lr": Param(1e-3, "learning rate", ge=0.0),
        "optimizer": Param("adam", "optimizer", choices=("adam", "sgd")),
        "batch_size": Param(16, "mini-batch size", ge=2),
        "val_fraction": Param(0.25, "share of adapt windows held out for model selection (0 = keep last epoch)", ge=0.0, le=0.9),
    }

    def trainable(self, model):
        return model

    def train_mode(self, model):
        model.train()

    def adapt(self, generic, state, user, ctx):
        p = self.params
        model = frozen_copy(generic)
        for param in model.parameters():
            param.requires_grad_(False)
        for param in self.trainable(model).parameters():
            param.requires_grad_(True)
        train, val = split_train_val(user.adapt, p.val_fraction) if p.val_fraction > 0 else (user.adapt, None)
        opt = make_optimizer(model.parameters(), p.optimizer, p.lr)
        report = fit(model, train, epochs=p.epochs, optimizer=opt, batch_size=p.batch_size,
                     generator=ctx.generator(), val=val, train_mode=self.train_mode)
        names = [n for n, q in model.named_parameters() if q.requires_grad]
        return AdaptResult(model, AdaptFacts(
            params_trained=count_params(model, trainable_only=True), optimizer_steps=report.optimizer_steps,
            forward_samples=report.forward_samples, backward_samples=report.backward_samples,
            batch_size=p.batch_size, epochs=report.epochs_run, trainable=names,
            extra={"best_epoch": report.best_epoch},
        ))


class FineTuneLast(FineTune):
    name = "finetune-last"
    description = "fine-tune the classifier only"
    parameters = {**FineTune.parameters, "lr": Param(1e-2, "learning rate", ge=0.0), "epochs": Param(30, "training epochs", ge=1)}

    def trainable(self, model):
        return model.head

    def train_mode(self, model):
        """The frozen backbone stays in eval mode: its BatchNorm statistics are part of what is frozen."""
        model.eval()
        model.head.train()


@hookimpl
def harbench_register_methods(register):
    register(Generic)
    register(FineTune)
    register(FineTuneLast)
