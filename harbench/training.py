"""The training and evaluation loops every method shares, so no plugin re-implements (or subtly varies) them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from .api import Windows

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


@dataclass
class FitReport:
    """What a fit did: counts for cost accounting and the selected epoch (0 = the model as given)."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_val: float | None = None
    optimizer_steps: int = 0
    forward_samples: int = 0
    backward_samples: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def make_optimizer(
    params: Iterable[nn.Parameter], kind: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, momentum: float = 0.9
) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}; expected 'adam' or 'sgd'")


def fit(
    model: nn.Module,
    train: Windows,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
    loss_fn: LossFn = cross_entropy,
    val: Windows | None = None,
    val_metric: str = "loss",
    patience: int | None = None,
    select_initial: bool = True,
    train_mode: Callable[[nn.Module], None] | None = None,
) -> FitReport:
    """Mini-batch training; with ``val``, keeps the best epoch's weights (restored in place).

    ``select_initial`` lets the untouched model (epoch 0) win the selection, as CRoP's final phase needs.
    ``train_mode`` replaces ``model.train()`` (e.g. to keep frozen BatchNorm layers in eval mode).
    """
    if train.y is None:
        raise ValueError("fit() needs labelled windows")
    report = FitReport()
    best_state = None
    if val is not None and select_initial:
        report.best_val = _val_score(model, val, loss_fn, val_metric)
        best_state = copy.deepcopy(model.state_dict())
    stale = 0
    n = len(train)
    for epoch in range(1, epochs + 1):
        (train_mode or (lambda m: m.train()))(model)
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2 and n >= 2:  # BatchNorm cannot train on a single window
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, train.x[idx], train.y[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            report.optimizer_steps += 1
            report.forward_samples += len(idx)
            report.backward_samples += len(idx)
        report.epochs_run = epoch
        entry = {"epoch": epoch, "train_loss": total / max(n, 1)}
        if val is not None:
            score = _val_score(model, val, loss_fn, val_metric)
            report.forward_samples += len(val)
            entry["val"] = score
            if report.best_val is None or _better(score, report.best_val, val_metric):
                report.best_val, report.best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        report.history.append(entry)
        if patience is not None and stale >= patience:
            break
    if val is not None and best_state is not None:
        model.load_state_dict(best_state)
    elif val is None:
        report.best_epoch = report.epochs_run
    model.eval()
    return report


def _better(a: float, b: float, metric: str) -> bool:
    return a < b if metric == "loss" else a > b


@torch.no_grad()
def _val_score(model: nn.Module, val: Windows, loss_fn: LossFn, metric: str) -> float:
    was = model.training
    model.eval()
    if metric == "loss":
        score = float(loss_fn(model, val.x, val.y))
    elif metric == "accuracy":
        score = float((predict(model, val.x) == val.y).float().mean())
    else:
        raise ValueError(f"unknown validation metric {metric!r}; expected 'loss' or 'accuracy'")
    model.train(was)
    return score


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    was = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0, dtype=torch.long)
    model.train(was)
    return out


def accuracy(y: torch.Tensor, pred: torch.Tensor) -> float:
    return float((y == pred).float().mean()) if len(y) else float("nan")


def macro_f1(y: torch.Tensor, pred: torch.Tensor, num_classes: int) -> float:
    """Macro-F1 over the classes present in ``y`` or ``pred`` (absent classes would only add zeros)."""
    if not len(y):
        return float("nan")
    scores = []
    for c in range(num_classes):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def split_train_val(w: Windows, val_fraction: float, generator: torch.Generator | None = None) -> tuple[Windows, Windows]:
    """Split by contiguous time inside each (recording, class): the validation windows are the latest part of each
    recording, so overlapping windows never straddle train and validation.
    """
    train_idx, val_idx = [], []
    keys = w.recording * 1000 + (w.y if w.y is not None else 0)
    for key in torch.unique(keys):
        idx = torch.nonzero(keys == key).flatten()
        idx = idx[torch.argsort(w.start[idx])]
        n_val = int(round(len(idx) * val_fraction))
        if len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        else:
            n_val = 0
        train_idx.append(idx[: len(idx) - n_val])
        val_idx.append(idx[len(idx) - n_val :])
    return w.subset(torch.cat(train_idx)), w.subset(torch.cat(val_idx))


def flops_per_window(model: nn.Module, example: torch.Tensor) -> float:
    """Forward FLOPs of one window, counted by ``torch.utils.flop_counter`` (2 per multiply-accumulate)."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example[:1])
    model.train(was)
    return float(counter.get_total_flops())


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy for a method to modify, leaving the shared generic model untouched."""
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.requires_grad_(True)
    return clone
