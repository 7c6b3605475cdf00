"""The four steps of CRoP on one user's available-context data, returning every intermediate model.

The harness method (:mod:`harbench_crop.method`) keeps only the final model and a few facts; the diagnostics
(:mod:`harbench_crop.diagnostics`) need the intermediate models too, which is why the steps live here, apart from
the harness interface.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from harbench import FitReport, Windows, fit, frozen_copy, make_optimizer

from .mixing import mix_with_generic
from .objective import L1Objective
from .pruning import PruneOutcome, Scheme, apply_masks, tolerated_prune

SelectBy = Literal["loss", "accuracy"]


@dataclass(frozen=True)
class CropConfig:
    """The method's hyper-parameters (the paper's names in brackets)."""

    epochs: int = 30  # step 1 epochs ("initial epochs")
    final_epochs: int = 30  # step 4 epochs ("final epochs")
    lr: float = 1e-3
    alpha0: float = 1e-4  # initial L1 coefficient [α]
    tau: float = 0.05  # tolerated absolute accuracy drop [τ]
    k: float = 0.05  # first pruning amount [k]
    k_step: float = 0.05  # pruning increment [k′]
    max_amount: float = 0.95
    scheme: Scheme = "global"
    batch_size: int = 16
    select_by: SelectBy = "loss"


@dataclass
class CropRun:
    """Every stage of one CRoP run: the models after steps 1–4 and what each step decided."""

    finetuned: nn.Module
    pruned: nn.Module
    mixed: nn.Module
    final: nn.Module
    finetune_report: FitReport
    prune: PruneOutcome
    final_report: FitReport
    alpha_start: float
    alpha_after_finetune: float
    alpha_end: float

    @property
    def selected_mixed(self) -> bool:
        """True when step 4's selection kept the mixed model itself (epoch 0)."""
        return self.final_report.best_epoch == 0


def finetune_with_l1(
    model: nn.Module,
    objective: L1Objective,
    train: Windows,
    val: Windows | None,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    select_by: SelectBy,
    select_initial: bool,
) -> FitReport:
    """Adam on the model's weights and α together (the paper's code shares one optimizer); keeps the best-validation
    state in place. ``select_initial`` lets the model as given (epoch 0) win the selection."""
    optimizer = make_optimizer([*model.parameters(), *objective.parameters()], "adam", lr)
    return fit(model, train, epochs=epochs, optimizer=optimizer, batch_size=batch_size, generator=generator,
               loss_fn=objective, val=val, val_metric=select_by, select_initial=select_initial)


def run_crop(
    generic: nn.Module, train: Windows, val: Windows | None, cfg: CropConfig, generator: torch.Generator
) -> CropRun:
    """CRoP steps 1–4. ``generic`` is only read. ``train``/``val`` are both from the available context."""
    objective = L1Objective(cfg.alpha0)
    alpha_start = objective.alpha
    common = dict(lr=cfg.lr, batch_size=cfg.batch_size, generator=generator, select_by=cfg.select_by)

    finetuned = frozen_copy(generic)  # step 1: fine-tune with CE + α·Σ|W|
    finetune_report = finetune_with_l1(finetuned, objective, train, val, epochs=cfg.epochs, select_initial=False,
                                       **common)
    alpha_after_finetune = objective.alpha

    outcome = tolerated_prune(finetuned, train, tau=cfg.tau, start=cfg.k, step=cfg.k_step,  # step 2
                              max_amount=cfg.max_amount, scheme=cfg.scheme)
    pruned = apply_masks(copy.deepcopy(finetuned), outcome.masks)

    mixed = mix_with_generic(pruned, generic, outcome.masks)  # step 3
    final = copy.deepcopy(mixed)
    final_report = finetune_with_l1(final, objective, train, val, epochs=cfg.final_epochs, select_initial=True,
                                    **common)  # step 4: no mask, the mixed model itself is a candidate
    return CropRun(finetuned, pruned, mixed, final, finetune_report, outcome, final_report,
                   alpha_start, alpha_after_finetune, objective.alpha)
