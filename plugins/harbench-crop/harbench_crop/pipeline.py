"""The four steps of CRoP on one user's available-context data, returning every intermediate model.

The harness method (:mod:`harbench_crop.method`) keeps only the final model and a few facts; the diagnostics
(:mod:`harbench_crop.diagnostics`) need the intermediate models too, which is why the steps live here, apart from
the harness interface. The defaults follow the authors' code (``Extrasensory/run_EXTRASENSORY_PERSONAL_aaai.py``);
each departure harbench used before is a named option (see the plugin README).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from harbench import FitReport, Windows, cross_entropy, fit, frozen_copy, make_optimizer, predict

from .mixing import mix_with_generic
from .objective import AlphaMode, L1Objective
from .pruning import PruneOutcome, Scheme, apply_masks, tolerated_prune
from .scores import Metric, score

SelectBy = Literal["balanced_accuracy", "accuracy", "loss"]
Keep = Literal["last", "best"]


@dataclass(frozen=True)
class CropConfig:
    """The method's hyper-parameters (the paper's names in brackets); defaults as in the authors' code where the
    mechanism is concerned, scaled to this harness where the amount of training is concerned."""

    epochs: int = 30  # step 1 epochs ("initial epochs"; code 600)
    final_epochs: int = 60  # step 4 epochs ("final epochs"; code 1000)
    lr: float = 1e-4  # step 1 Adam learning rate (ExtraSensory code: 1e-4, hard-coded in train())
    final_lr: float = 1e-4  # step 4 Adam learning rate (code 1e-4)
    alpha0: float = 0.5  # initial L1 coefficient [α] (ExtraSensory code: CostumLoss.gamma = 0.5; α0/lr = 5,000 steps)
    alpha_mode: AlphaMode = "code"
    alpha_reset: bool = True  # step 4 builds a new loss with α = α0 (code: train() makes a new CostumLoss)
    tau: float = 0.05  # tolerated absolute drop [τ]
    k: float = 0.05  # first pruning amount [k]
    k_step: float = 0.05  # pruning increment [k′]
    max_amount: float = 0.95
    scheme: Scheme = "erk"
    prune_from: Keep = "last"  # which step-1 model is pruned (code: the last epoch)
    prune_metric: Metric = "balanced_accuracy"
    batch_size: int = 16
    select_by: SelectBy = "balanced_accuracy"


@dataclass
class PhaseReport:
    """One training phase (step 1 or 4): the core's counts plus what CRoP's selection and α did."""

    fit: FitReport
    kept_epoch: int  # the epoch whose weights the phase returned (0 = the model as given)
    alpha_start: float
    alpha_end: float
    alphas: list[float] = field(default_factory=list)  # α after each epoch


@dataclass
class CropRun:
    """Every stage of one CRoP run: the models after steps 1–4 and what each step decided."""

    finetuned: nn.Module  # the step-1 model handed to pruning
    pruned: nn.Module
    mixed: nn.Module
    final: nn.Module
    step1: PhaseReport
    prune: PruneOutcome
    step4: PhaseReport

    @property
    def finetune_report(self) -> FitReport:
        return self.step1.fit

    @property
    def final_report(self) -> FitReport:
        return self.step4.fit

    @property
    def selected_mixed(self) -> bool:
        """True when step 4's selection kept the mixed model itself (epoch 0)."""
        return self.step4.kept_epoch == 0


@torch.no_grad()
def validation_score(model: nn.Module, val: Windows, select_by: SelectBy) -> float:
    """Higher is better for the accuracies; for ``loss`` (cross-entropy, no penalty) lower is better."""
    model.eval()
    if select_by == "loss":
        return float(cross_entropy(model, val.x, val.y))
    return score(select_by, val.y, predict(model, val.x))


def _better(a: float, b: float, select_by: SelectBy) -> bool:
    return a < b if select_by == "loss" else a > b  # strict, as the code's `valid_bal_acc > best`: earliest wins


def train_phase(
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
    keep: Keep,
    select_initial: bool,
) -> PhaseReport:
    """Adam on the model's weights and α together (the code's ``itertools.chain(model.parameters(),
    loss_fn.parameters())``), one :func:`harbench.fit` epoch at a time so every epoch can be scored.

    The best validation epoch is always recorded (``fit.best_epoch``); ``keep="best"`` restores it in place,
    ``keep="last"`` returns the last epoch's weights, as the code hands step 1's last model to pruning.
    ``select_initial`` lets the model as given (epoch 0) be the best.
    """
    optimizer = make_optimizer([*model.parameters(), *objective.parameters()], "adam", lr)
    report = FitReport()
    alpha_start = objective.alpha
    alphas: list[float] = []
    best_state = None
    if val is not None and select_initial:
        report.best_val = validation_score(model, val, select_by)
        report.forward_samples += len(val)
        best_state = copy.deepcopy(model.state_dict()) if keep == "best" else None
    for epoch in range(1, epochs + 1):
        one = fit(model, train, epochs=1, optimizer=optimizer, batch_size=batch_size, generator=generator,
                  loss_fn=objective)
        report.optimizer_steps += one.optimizer_steps
        report.forward_samples += one.forward_samples
        report.backward_samples += one.backward_samples
        report.epochs_run = epoch
        entry = {"epoch": epoch, "train_loss": one.history[-1]["train_loss"], "alpha": objective.alpha}
        alphas.append(objective.alpha)
        if val is not None:
            value = validation_score(model, val, select_by)
            report.forward_samples += len(val)
            entry["val"] = value
            if report.best_val is None or _better(value, report.best_val, select_by):
                report.best_val, report.best_epoch = value, epoch
                if keep == "best":
                    best_state = copy.deepcopy(model.state_dict())
        report.history.append(entry)
    kept = report.epochs_run
    if keep == "best" and best_state is not None:
        model.load_state_dict(best_state)
        kept = report.best_epoch
    elif val is None:
        report.best_epoch = report.epochs_run
    model.eval()
    return PhaseReport(report, kept, alpha_start, objective.alpha, alphas)


def run_conventional(
    generic: nn.Module, train: Windows, val: Windows | None, cfg: CropConfig, generator: torch.Generator
) -> PhaseReport:
    """Conventional fine-tuning (M^C of ΔG) as the authors' WIDAR script runs it: the **same** ``train()`` as
    CRoP's step 1 (same split, optimizer, learning rate, epochs and mini-batches) with the penalty off
    (``regularizer_name = 'None'`` → plain cross-entropy), and the best-validation model kept, the model as given
    included (``train()`` starts ``best_model`` from the initial scores; the script then loads that best model).
    Returns the phase report; the fine-tuned model is ``generic``'s copy trained in place by the caller."""
    return train_phase(generic, L1Objective(0.0, cfg.alpha_mode), train, val, epochs=cfg.epochs, lr=cfg.lr,
                       keep="best", select_initial=True, batch_size=cfg.batch_size, generator=generator,
                       select_by=cfg.select_by)


def run_crop(
    generic: nn.Module, train: Windows, val: Windows | None, cfg: CropConfig, generator: torch.Generator
) -> CropRun:
    """CRoP steps 1–4. ``generic`` is only read. ``train``/``val`` are both from the available context."""
    objective = L1Objective(cfg.alpha0, cfg.alpha_mode)
    common = dict(batch_size=cfg.batch_size, generator=generator, select_by=cfg.select_by)

    finetuned = frozen_copy(generic)  # step 1: fine-tune with CE + α·Σ|W|
    step1 = train_phase(finetuned, objective, train, val, epochs=cfg.epochs, lr=cfg.lr, keep=cfg.prune_from,
                        select_initial=False, **common)

    outcome = tolerated_prune(finetuned, train, tau=cfg.tau, start=cfg.k, step=cfg.k_step,  # step 2
                              max_amount=cfg.max_amount, scheme=cfg.scheme, metric=cfg.prune_metric)
    pruned = apply_masks(copy.deepcopy(finetuned), outcome.masks)

    mixed = mix_with_generic(pruned, generic, outcome.masks)  # step 3
    final = copy.deepcopy(mixed)
    if cfg.alpha_reset:  # the code's train() builds a new CostumLoss, so α starts again from α0
        objective = L1Objective(cfg.alpha0, cfg.alpha_mode)
    step4 = train_phase(final, objective, train, val, epochs=cfg.final_epochs, lr=cfg.final_lr, keep="best",
                        select_initial=True, **common)  # step 4: no mask, the mixed model itself is a candidate
    return CropRun(finetuned, pruned, mixed, final, step1, outcome, step4)
