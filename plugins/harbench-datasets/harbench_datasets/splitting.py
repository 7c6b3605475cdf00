"""Window table -> harbench ``Splits``: population vs targets, time-ordered adapt/test splits, normalisation.

The rules mirror the synthetic dataset so that results are comparable:

* target users never contribute to the population; the population uses ``population_contexts`` (all by default);
* a target's ``adapt`` windows are the first ``k`` windows of each class in its ``adapt_context`` in recording
  order (its earliest data); windows that overlap them in time (same recording, or same source clock) are
  dropped (the gap), and the remaining windows of that context are ``test_seen``;
* ``test_unseen`` holds every other context of the target, minus the windows that were recorded at the same time
  as an adapt window (same source clock): for simultaneous sensors a neighbouring device saw the very movement the
  method adapted on;
* when the windows carry *sessions* (separate executions of a protocol, each its own recording), the split is by
  whole sessions in time order: the sessions that hold an adapt window give nothing to ``test_seen`` or
  ``test_unseen`` (a simultaneous device recorded the same executions); the later sessions are the test data;
* per-channel mean and standard deviation are fitted on the population only and applied to every split;
* a target whose adapt context has fewer than ``k`` windows of one of its classes, or whose split leaves
  ``test_seen`` empty, is refused with one line naming the user and the setting to lower (``k``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from harbench import DatasetInfo, Splits, TargetSplit, Windows

from .windowing import WindowTable


def to_windows(t: WindowTable) -> Windows:
    as_long = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
    return Windows(x=torch.from_numpy(np.ascontiguousarray(t.x, dtype=np.float32)), y=as_long(t.y),
                   recording=as_long(t.recording), start=as_long(t.start), user=as_long(t.user),
                   context=as_long(t.context))


def normalise(table: WindowTable, mean: np.ndarray, std: np.ndarray) -> WindowTable:
    return dataclasses.replace(table, x=((table.x - mean[None, :, None]) / std[None, :, None]).astype(np.float32))


def channel_stats(population: WindowTable) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over every population sample; a constant channel gets std 1 (left centred)."""
    mean = population.x.mean(axis=(0, 2), dtype=np.float64)
    std = population.x.std(axis=(0, 2), dtype=np.float64)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _chronological(table: WindowTable, index: np.ndarray) -> np.ndarray:
    return index[np.lexsort((table.start[index], table.recording[index]))]


def _select_adapt(table: WindowTable, index: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` windows of each class, in recording order."""
    chosen = []
    for label in np.unique(table.y[index]):
        of_class = _chronological(table, index[table.y[index] == label])
        chosen.append(of_class[:k])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _overlapping(table: WindowTable, candidates: np.ndarray, taken: np.ndarray, same: str) -> np.ndarray:
    """Mask over ``candidates``: shares samples with some ``taken`` window on the same recording or source clock."""
    if not len(candidates) or not len(taken):
        return np.zeros(len(candidates), dtype=bool)
    if same == "recording":
        key, pos, span = table.recording, table.start.astype(np.float64), float(table.x.shape[2])
    else:
        key, pos, span = table.source, table.t_start, table.window_s
    same_key = key[candidates][:, None] == key[taken][None, :]
    # a microsecond of slack: windows that merely touch on a clock in seconds must not count as overlapping
    slack = 1e-6 if same == "source" else 0.0
    close = np.abs(pos[candidates][:, None] - pos[taken][None, :]) < span - slack
    return (same_key & close).any(axis=1)


def _too_few(table: WindowTable, in_context: np.ndarray, k: int, classes: Sequence[str]) -> str | None:
    labels, counts = np.unique(table.y[in_context], return_counts=True)
    short = [(int(c), int(n)) for c, n in zip(labels, counts) if n < k]
    if not short:
        return None
    named = ", ".join(f"{n} of {classes[c] if c < len(classes) else c!r}" for c, n in short)
    return f"has only {named} windows, fewer than k={k} per class"


class Refused(ValueError):
    """A target the split rules refuse: what is wrong (``problem``) and what to do (``remedy``), kept apart so a
    caller that names several targets can say the remedy once."""

    def __init__(self, problem: str, remedy: str = ""):
        super().__init__(f"{problem}: {remedy}" if remedy else problem)
        self.problem = problem


def target_indices(table: WindowTable, user: int, name: str, adapt_ci: int, context_names: Sequence[str],
                   k: int, classes: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A target's (adapt, test_seen, test_unseen) window indices; a target the rules refuse raises one line."""
    mine = np.flatnonzero(table.user == user)
    in_context = mine[table.context[mine] == adapt_ci]
    adapt_context = context_names[adapt_ci]
    where = f"target user {name!r} in adapt_context {adapt_context!r}"
    if not len(in_context):
        raise Refused(f"target user {name!r} has no windows in adapt_context {adapt_context!r} "
                      f"(too short recordings for the window length, or a user without that context)")
    problem = _too_few(table, in_context, k, classes)
    if problem:
        raise Refused(f"{where} {problem}", "lower params.k (or choose other target users)")
    adapt = _select_adapt(table, in_context, k)
    rest = np.setdiff1d(in_context, adapt)
    others = mine[table.context[mine] != adapt_ci]
    if table.session is not None and len(in_context) and (table.session[in_context] >= 0).all():
        last = int(table.session[adapt].max())
        rest = rest[table.session[rest] > last]
        others = others[~((table.session[others] >= 0) & (table.session[others] <= last))]
    # the source clock also catches published windows that could not be stitched (UCI-HAR rows that overlap in
    # time but were cut into separate recordings)
    seen = rest[~(_overlapping(table, rest, adapt, same="recording") | _overlapping(table, rest, adapt, same="source"))]
    if not len(seen):
        raise Refused(f"{where}: k={k} windows per class leave no test_seen windows (the adapt data uses all of "
                      f"the context{' sessions' if table.session is not None else ''})", "lower params.k")
    return adapt, seen, others[~_overlapping(table, others, adapt, same="source")]


def split_target(table: WindowTable, user: int, name: str, adapt_ci: int, context_names: Sequence[str],
                 k: int, classes: Sequence[str] = ()) -> TargetSplit:
    adapt, seen, unseen = target_indices(table, user, name, adapt_ci, context_names, k, classes)
    unseen_contexts = tuple(context_names[c] for c in sorted(set(table.context[unseen].tolist())))
    return TargetSplit(user=name, adapt_context=context_names[adapt_ci], unseen_contexts=unseen_contexts,
                       adapt=to_windows(table.take(adapt)), test_seen=to_windows(table.take(seen)),
                       test_unseen=to_windows(table.take(unseen)))


def refused_targets(info: DatasetInfo, table: WindowTable, targets: Sequence[str], adapt_context: str,
                    k: int) -> str | None:
    """Why the split rules would refuse some of ``targets`` (every refused user, one clause each), or None.

    The same rules as :func:`split_target` on the unnormalised table (normalising moves no window), so a suite
    naming a target that cannot be split is refused when it is validated, not by every job of its run."""
    context_names = [c.name for c in info.contexts]
    adapt_ci = context_names.index(adapt_context)
    why = []
    for name in targets:
        if name not in info.users:
            continue  # the harness names unknown users itself
        try:
            target_indices(table, info.users.index(name), name, adapt_ci, context_names, k, info.classes)
        except Refused as exc:
            why.append(exc.problem)
    return f"{'; '.join(why)}: lower params.k or choose other target users" if why else None


def build_splits(info: DatasetInfo, table: WindowTable, targets: Sequence[str], adapt_context: str,
                 population_contexts: Sequence[str], k: int, population_users: Sequence[str] | None = None) -> Splits:
    """``population_users``: the users the population may use (default: every user who is not a target)."""
    context_names = [c.name for c in info.contexts]
    unknown = [t for t in targets if t not in info.users]
    if unknown:
        raise ValueError(f"{info.name}: unknown target users {unknown}; known: {list(info.users)}")
    target_ids = [info.users.index(t) for t in targets]
    pop_ci = [context_names.index(c) for c in (population_contexts or context_names)]
    is_pop = ~np.isin(table.user, target_ids) & np.isin(table.context, pop_ci)
    if population_users is not None:
        is_pop &= np.isin(table.user, [info.users.index(u) for u in population_users if u in info.users])
    pop_index = np.flatnonzero(is_pop)
    if not len(pop_index):
        raise ValueError(f"{info.name}: the population is empty: every user with windows is a target, or the "
                         f"recordings are shorter than one window")
    mean, std = channel_stats(table.take(pop_index))
    table = normalise(table, mean, std)
    adapt_ci = context_names.index(adapt_context)
    splits = {}
    for uid, name in zip(target_ids, targets):
        try:
            splits[name] = split_target(table, uid, name, adapt_ci, context_names, k, info.classes)
        except ValueError as exc:
            raise ValueError(f"{info.name}: {exc}") from None
    return Splits(info=info, population=to_windows(table.take(pop_index)), targets=splits)
