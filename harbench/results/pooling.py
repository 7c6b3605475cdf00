"""Pooling runs that are folds of one study (``publish --pool``, ``claims --pool``): the one rule, that no job is
in two of them. A target in two folds would count twice in every claim its rows enter."""

from __future__ import annotations

import json
from typing import Any, Sequence


class PoolGuard:
    """Refuses a job that two pooled runs both hold.

    A job is its (dataset, parameters, method, parameters, variant, hardware, seed, user); ``publish --pool``
    feeds it every row it writes (before the bundle is renamed into place), :func:`pool_rows` every row it pools."""

    KEY = ("dataset", "dataset_params", "method", "method_params", "variant", "hardware", "seed", "user")

    def __init__(self) -> None:
        self.seen: dict[tuple, str] = {}

    def add(self, label: str, row: dict[str, Any]) -> None:
        key = tuple(json.dumps(row.get(c), sort_keys=True, default=str) for c in self.KEY)
        if self.seen.get(key, label) != label:  # (a run's own rows may pass twice: publish reads each run twice)
            raise ValueError(f"cannot pool {self.seen[key]} and {label}: both hold the {row.get('method')} job of "
                             f"user {row.get('user')!r}, seed {row.get('seed')} on {row.get('dataset')} (the same "
                             "targets in two runs would count twice; pool runs whose targets differ, e.g. folds)")
        self.seen[key] = label


def pool_rows(parts: Sequence[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """The rows of several runs (label, rows) as one list; a job that two runs both hold is refused."""
    guard = PoolGuard()
    rows: list[dict[str, Any]] = []
    for label, part in parts:
        for row in part:
            guard.add(label, row)
        rows += part
    return rows
