"""The harness face of CRoP: declared parameters, the split of the user's data, and the facts it reports."""

from __future__ import annotations

import torch

from harbench import AdaptFacts, AdaptResult, Method, Param, Windows, count_params, flops_per_window, split_train_val

from .layers import prunable_weights
from .objective import ALPHA_MODES
from .pipeline import CropConfig, CropRun, run_crop
from .scores import METRICS

_DEFAULTS = CropConfig()
SALT = 0xC20F  # the method's generator: ``ctx.generator(salt=SALT)`` (scripts/gip_stages.py uses the same)


def random_split(w: Windows, val_fraction: float, generator: torch.Generator) -> tuple[Windows, Windows]:
    """The code's ``random_split(train_dataset, [int(0.7·n), n − int(0.7·n)], generator)``: windows drawn at
    random, so overlapping neighbours of a validation window may be in train. Both parts keep time order."""
    n = len(w)
    n_train = int((1 - val_fraction) * n)
    order = torch.randperm(n, generator=generator)
    return w.subset(torch.sort(order[:n_train]).values), w.subset(torch.sort(order[n_train:]).values)


class CRoP(Method):
    """Kaur et al., "CRoP: Context-wise Robust Static Human-Sensing Personalization" (IMWUT 2025).

    Only ``user.adapt`` (the available context) is read: it is split into train and validation; the unseen
    context never reaches a method, so it can be used neither for training nor for model selection.
    """

    name = "crop"
    description = "CRoP: L1 fine-tune, tolerated magnitude pruning, mix pruned weights back from the generic model, fine-tune"
    parameters = {
        "epochs": Param(_DEFAULTS.epochs, "epochs of step 1 (L1-regularised fine-tuning)", ge=1),
        "final_epochs": Param(_DEFAULTS.final_epochs, "epochs of step 4 (fine-tuning the mixed model)", ge=0),
        "lr": Param(_DEFAULTS.lr, "Adam learning rate of step 1 (also for the trainable α)", ge=0.0),
        "final_lr": Param(_DEFAULTS.final_lr, "Adam learning rate of step 4 (code: 1e-4)", ge=0.0),
        "alpha": Param(_DEFAULTS.alpha0, "initial L1 coefficient α0 (0 = no L1)", ge=0.0),
        "alpha_mode": Param(_DEFAULTS.alpha_mode, "α as in the code (raw trainable, may pass through zero), "
                            "softplus (kept > 0), or fixed", choices=ALPHA_MODES),
        "alpha_reset": Param(_DEFAULTS.alpha_reset, "step 4 starts a new loss at α0 (code) instead of reusing step 1's"),
        "tau": Param(_DEFAULTS.tau, "tolerated absolute drop of the train score when pruning (τ)", ge=0.0, le=1.0),
        "k": Param(_DEFAULTS.k, "first pruning amount (k)", ge=0.001, le=0.99),
        "k_step": Param(_DEFAULTS.k_step, "pruning amount increment (k')", ge=0.001, le=0.99),
        "max_prune": Param(_DEFAULTS.max_amount, "largest pruning amount tried", ge=0.001, le=0.99),
        "prune_scheme": Param(_DEFAULTS.scheme, "erk: the code's ERK per-layer quantiles of one score pool that "
                              "includes the classifier; global: one ranking of the prunable weights",
                              choices=("erk", "global")),
        "prune_from": Param(_DEFAULTS.prune_from, "step-1 model that is pruned: the last epoch (code) or the best "
                            "validation epoch", choices=("last", "best")),
        "prune_metric": Param(_DEFAULTS.prune_metric, "score of ToleratedPrune's tolerance check",
                              choices=METRICS),
        "batch_size": Param(_DEFAULTS.batch_size, "mini-batch size", ge=2),
        "val_split": Param("random", "validation windows drawn at random (code) or the latest in time of each "
                           "recording (no overlap with train)", choices=("random", "time")),
        "val_fraction": Param(0.3, "share of the adapt windows held out for model selection (code: 0.3)",
                              ge=0.05, le=0.9),
        "select_by": Param(_DEFAULTS.select_by, "validation score for the best epoch (loss = cross-entropy only)",
                           choices=("balanced_accuracy", "accuracy", "loss")),
    }

    def config(self) -> CropConfig:
        p = self.params
        return CropConfig(epochs=p.epochs, final_epochs=p.final_epochs, lr=p.lr, final_lr=p.final_lr,
                          alpha0=p.alpha, alpha_mode=p.alpha_mode, alpha_reset=p.alpha_reset, tau=p.tau, k=p.k,
                          k_step=p.k_step, max_amount=p.max_prune, scheme=p.prune_scheme, prune_from=p.prune_from,
                          prune_metric=p.prune_metric, batch_size=p.batch_size, select_by=p.select_by)

    def split(self, adapt: Windows, generator: torch.Generator) -> tuple[Windows, Windows]:
        if self.params.val_split == "random":
            return random_split(adapt, self.params.val_fraction, generator)
        return split_train_val(adapt, self.params.val_fraction)

    def run(self, generic, adapt: Windows, ctx) -> tuple[CropRun, int]:
        """The whole adapt path (split, then steps 1–4) with the method's own generator; returns the run and the
        number of training windows. ``adapt`` and ``scripts/gip_stages.py`` both call this."""
        generator = ctx.generator(salt=SALT)
        train, val = self.split(adapt, generator)
        return run_crop(generic, train, val, self.config(), generator), len(train)

    def adapt(self, generic, state, user, ctx):
        run, n_train = self.run(generic, user.adapt, ctx)
        return AdaptResult(run.final, self._facts(run, n_train, flops_per_window(run.final, user.adapt.x[:1])))

    def _facts(self, run: CropRun, n_train: int, window_flops: float) -> AdaptFacts:
        """Counts for the harness's cost model; a backward pass is counted as twice a forward pass."""
        ft, final, prune = run.finetune_report, run.final_report, run.prune
        fallback = 1 if self.params.prune_scheme == "erk" else 0  # erk scores its amount-0 fallback too
        prune_forwards = n_train * (1 + fallback + len(prune.steps))  # the unpruned score, one pass per candidate
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
                "prune_metric": prune.metric,
                "train_score_unpruned": prune.accuracy_unpruned,
                "train_score_pruned": prune.accuracy,
                "prunable_params": sum(w.numel() for w in prunable_weights(run.final).values()),
                "finetune_best_epoch": ft.best_epoch,
                "finetune_kept_epoch": run.step1.kept_epoch,
                "final_selected_epoch": run.step4.kept_epoch,
                "selected_state": "mixed" if run.selected_mixed else "final-finetune",
                "alpha_step1_start": run.step1.alpha_start,
                "alpha_step1_end": run.step1.alpha_end,
                "alpha_step4_start": run.step4.alpha_start,
                "alpha_step4_end": run.step4.alpha_end,
                "alpha_min": min([run.step1.alpha_start, *run.step1.alphas, run.step4.alpha_start, *run.step4.alphas]),
            },
        )
