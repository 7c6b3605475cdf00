"""The harness face of CRoP: declared parameters, the split of the user's data, and the facts it reports."""

from __future__ import annotations

from harbench import AdaptFacts, AdaptResult, Method, Param, count_params, flops_per_window, split_train_val

from .layers import prunable_weights
from .pipeline import CropConfig, CropRun, run_crop

_DEFAULTS = CropConfig()


class CRoP(Method):
    """Kaur et al., "CRoP: Context-wise Robust Static Human-Sensing Personalization" (IMWUT 2025).

    Only ``user.adapt`` (the available context) is read: it is split in time into train and validation; the
    unseen context never reaches a method, so it can be used neither for training nor for model selection.
    """

    name = "crop"
    description = "CRoP: L1 fine-tune, tolerated magnitude pruning, mix pruned weights back from the generic model, fine-tune"
    parameters = {
        "epochs": Param(_DEFAULTS.epochs, "epochs of step 1 (L1-regularised fine-tuning)", ge=1),
        "final_epochs": Param(_DEFAULTS.final_epochs, "epochs of step 4 (fine-tuning the mixed model)", ge=0),
        "lr": Param(_DEFAULTS.lr, "Adam learning rate of steps 1 and 4 (also for the trainable α)", ge=0.0),
        "alpha": Param(_DEFAULTS.alpha0, "initial L1 coefficient α0 (trainable, kept >= 0 by softplus; 0 = no L1)", ge=0.0),
        "tau": Param(_DEFAULTS.tau, "tolerated absolute drop of train accuracy when pruning (τ)", ge=0.0, le=1.0),
        "k": Param(_DEFAULTS.k, "first pruning amount (k)", ge=0.001, le=0.99),
        "k_step": Param(_DEFAULTS.k_step, "pruning amount increment (k')", ge=0.001, le=0.99),
        "max_prune": Param(_DEFAULTS.max_amount, "largest pruning amount tried", ge=0.001, le=0.99),
        "prune_scheme": Param(_DEFAULTS.scheme, "global magnitude ranking, or the paper code's ERK-scaled per-layer amounts",
                              choices=("global", "erk")),
        "batch_size": Param(_DEFAULTS.batch_size, "mini-batch size", ge=2),
        "val_fraction": Param(0.25, "share of the adapt windows held out (latest in time) for model selection", ge=0.05, le=0.9),
        "select_by": Param(_DEFAULTS.select_by, "validation score for keeping the best epoch (loss = cross-entropy only)",
                           choices=("loss", "accuracy")),
    }

    def config(self) -> CropConfig:
        p = self.params
        return CropConfig(epochs=p.epochs, final_epochs=p.final_epochs, lr=p.lr, alpha0=p.alpha, tau=p.tau, k=p.k,
                          k_step=p.k_step, max_amount=p.max_prune, scheme=p.prune_scheme, batch_size=p.batch_size,
                          select_by=p.select_by)

    def adapt(self, generic, state, user, ctx):
        train, val = split_train_val(user.adapt, self.params.val_fraction)
        run = run_crop(generic, train, val, self.config(), ctx.generator(salt=0xC20F))
        return AdaptResult(run.final, self._facts(run, len(train), flops_per_window(run.final, user.adapt.x[:1])))

    def _facts(self, run: CropRun, n_train: int, window_flops: float) -> AdaptFacts:
        """Counts for the harness's cost model; a backward pass is counted as twice a forward pass."""
        ft, final, prune = run.finetune_report, run.final_report, run.prune
        prune_forwards = n_train * (1 + len(prune.steps))  # the unpruned accuracy plus one pass per candidate
        forward = ft.forward_samples + prune_forwards + final.forward_samples
        backward = ft.backward_samples + final.backward_samples
        return AdaptFacts(
            params_trained=count_params(run.final),
            optimizer_steps=ft.optimizer_steps + final.optimizer_steps,
            forward_samples=forward,
            backward_samples=backward,
            batch_size=self.params.batch_size,
            epochs=ft.epochs_run + final.epochs_run,
            trainable=[n for n, _ in run.final.named_parameters()],
            flops=window_flops * (forward + 2 * backward),
            extra={
                "sparsity": prune.sparsity,
                "prune_amount": prune.amount,
                "prune_curve": [[s.amount, s.accuracy] for s in prune.steps],
                "train_acc_unpruned": prune.accuracy_unpruned,
                "train_acc_pruned": prune.accuracy,
                "prunable_params": sum(w.numel() for w in prunable_weights(run.final).values()),
                "finetune_best_epoch": ft.best_epoch,
                "final_selected_epoch": final.best_epoch,
                "selected_state": "mixed" if run.selected_mixed else "final-finetune",
                "alpha_start": run.alpha_start,
                "alpha_after_finetune": run.alpha_after_finetune,
                "alpha_end": run.alpha_end,
            },
        )
