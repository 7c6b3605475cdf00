"""Checks, run on every dataset load, that no information leaks between what a method sees and what it is tested on."""

from __future__ import annotations

import torch

from ..api import Splits, Windows


class LeakageError(RuntimeError):
    pass


def _overlaps(a: Windows, b: Windows, window: int) -> int:
    """Number of windows of ``a`` that share samples of a recording with some window of ``b``."""
    if not len(a) or not len(b):
        return 0
    same = a.recording[:, None] == b.recording[None, :]
    close = (a.start[:, None] - b.start[None, :]).abs() < window
    return int((same & close).any(dim=1).sum())


def check_splits(splits: Splits, dataset: str) -> None:
    info = splits.info
    window = info.window
    context_names = [c.name for c in info.contexts]
    pop_users = set(splits.population.user.unique().tolist())
    for name, t in splits.targets.items():
        where = f"dataset {dataset!r}, target user {name!r}"
        uid = info.users.index(name)
        if uid in pop_users:
            raise LeakageError(f"{where}: the target user's windows are also in the population")
        for part_name in ("adapt", "test_seen", "test_unseen"):
            part: Windows = getattr(t, part_name)
            if len(part) and not bool((part.user == uid).all()):
                raise LeakageError(f"{where}: {part_name} holds windows of other users")
        adapt_ci = context_names.index(t.adapt_context)
        if len(t.adapt) and not bool((t.adapt.context == adapt_ci).all()):
            raise LeakageError(f"{where}: adapt holds windows outside its context {t.adapt_context!r}")
        if len(t.test_unseen) and bool((t.test_unseen.context == adapt_ci).any()):
            raise LeakageError(f"{where}: test_unseen holds windows of the adapt context {t.adapt_context!r}")
        for a, b in (("adapt", "test_seen"), ("adapt", "test_unseen"), ("test_seen", "test_unseen")):
            n = _overlaps(getattr(t, a), getattr(t, b), window)
            if n:
                raise LeakageError(f"{where}: {n} {a} windows overlap {b} windows in time")
        if t.adapt.y is None or not len(t.adapt):
            raise LeakageError(f"{where}: adapt split is empty or unlabelled")
        if not len(t.test_seen):  # every job would fail later, blaming its method for a (0, C) output
            raise LeakageError(f"{where}: test_seen is empty: the {len(t.adapt)} adapt windows leave no later window "
                               f"of context {t.adapt_context!r} to test on; lower the dataset's k (adapt windows per "
                               "class) or give it more windows")
    if not len(splits.population):
        raise LeakageError(f"dataset {dataset!r}: the population is empty (too many target users?)")
    if not torch.isfinite(splits.population.x).all():
        raise LeakageError(f"dataset {dataset!r}: population windows contain NaN or infinity")
