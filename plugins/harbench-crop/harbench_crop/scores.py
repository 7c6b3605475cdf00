"""The scores CRoP selects and prunes by: balanced accuracy (the authors' code) or plain accuracy.

The authors' ``test()`` uses ``sklearn.metrics.balanced_accuracy_score``: the mean over the classes present in the
true labels of each class's recall. scikit-learn is not a dependency of harbench, so the same definition is
computed here from ``torch.bincount`` (a test checks it against a hand computation). The code averages the score
over shuffled mini-batches of 32 with ``drop_last``; with a few dozen adapt windows that would leave no batch at
all, so the score is computed once over the whole split.
"""

from __future__ import annotations

from typing import Literal

import torch

from harbench import accuracy

Metric = Literal["balanced_accuracy", "accuracy"]
METRICS = ("balanced_accuracy", "accuracy")


def balanced_accuracy(y: torch.Tensor, pred: torch.Tensor) -> float:
    """Mean recall over the classes present in ``y`` (NaN for no windows)."""
    if not len(y):
        return float("nan")
    n = int(max(int(y.max()), int(pred.max()))) + 1
    support = torch.bincount(y, minlength=n)
    hits = torch.bincount(y[pred == y], minlength=n)
    present = support > 0
    return float((hits[present].double() / support[present].double()).mean())


def score(metric: str, y: torch.Tensor, pred: torch.Tensor) -> float:
    if metric == "balanced_accuracy":
        return balanced_accuracy(y, pred)
    if metric == "accuracy":
        return accuracy(y, pred)
    raise ValueError(f"unknown score {metric!r}; expected one of {', '.join(METRICS)}")
