"""Conventional fine-tuning through CRoP's own ``train()``: the M^C that ΔG is measured against.

In the authors' WIDAR script (``WIDAR/run_WIDAR_PERSONAL_aaai_final.py``, ``main``) conventional fine-tuning is the
first call of the same ``train()`` CRoP's step 1 uses, with ``regularizer_name = 'None'`` (cross-entropy only), on
the same 70/30 ``random_split`` of the available context, the same hard-coded Adam learning rate and the same number
of epochs; the best-validation model is saved and loaded before it is scored. ``crop-ft`` is that call here: the
split, the mini-batch order (the method's generator, ``ctx.generator(salt=SALT)``), the learning rate, the epochs
and the selection score are CRoP's, so CRoP − ``crop-ft`` measures what steps 2–4 and the penalty add, nothing else.
``finetune-full`` (the harness's baseline, a 25 % time split and best validation loss) stays available as the
named alternative baseline of the summary (``baseline="finetune-full"``).
"""

from __future__ import annotations

from harbench import AdaptFacts, AdaptResult, count_params, flops_per_window, frozen_copy

from .method import SALT, CRoP
from .pipeline import CropConfig, run_conventional

SHARED = ("epochs", "lr", "batch_size", "val_split", "val_fraction", "select_by")


class CRoPFinetune(CRoP):
    """M^C of the paper's ΔG: fine-tune all layers with cross-entropy through CRoP's step-1 ``train()``."""

    name = "crop-ft"
    description = ("conventional fine-tuning as CRoP's authors run it for ΔG: CRoP's step-1 train() (same split, "
                   "lr, epochs, selection) with the L1 penalty off")
    parameters = {k: CRoP.parameters[k] for k in SHARED}

    def config(self) -> CropConfig:
        p = self.params
        return CropConfig(epochs=p.epochs, lr=p.lr, batch_size=p.batch_size, select_by=p.select_by)

    def adapt(self, generic, state, user, ctx):
        generator = ctx.generator(salt=SALT)  # the same stream as CRoP's, so the same split and batches
        train, val = self.split(user.adapt, generator)
        model = frozen_copy(generic)
        phase = run_conventional(model, train, val, self.config(), generator)
        report = phase.fit
        window_flops = flops_per_window(model, user.adapt.x[:1])
        return AdaptResult(model, AdaptFacts(
            params_trained=count_params(model),
            optimizer_steps=report.optimizer_steps,
            forward_samples=report.forward_samples,
            backward_samples=report.backward_samples,
            batch_size=self.params.batch_size,
            epochs=report.epochs_run,
            trainable=[n for n, _ in model.named_parameters()],
            flops=window_flops * (report.forward_samples + 2 * report.backward_samples),
            extra={"selected_epoch": phase.kept_epoch, "best_val": report.best_val, "train_windows": len(train)},
        ))
