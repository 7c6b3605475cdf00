"""The embedded default dataset: synthetic IMU data with personal traits and named drifts (no download, ever)."""

from __future__ import annotations

from typing import Sequence

from .. import Dataset, DatasetInfo, Param, Splits, hookimpl
from ..data.synthetic import CLASSES, CONTEXTS, SyntheticConfig, describe, generate


class SyntheticDrift(Dataset):
    name = "synthetic-drift"
    description = "IMU-like 6-axis windows (50 Hz, 128 samples), 6 activities, per-user traits and named context drifts"
    parameters = {
        "users": Param(16, "number of simulated users (targets + population)", ge=2),
        "contexts": Param(["home", "sensor", "recovery", "labels"], "contexts recorded for target users"),
        "adapt_context": Param("home", "the context of the target users' personal (adapt) data", choices=tuple(CONTEXTS)),
        "population_contexts": Param(["home"], "contexts recorded for population users"),
        "strength": Param(1.0, "scale of every drift (0 = none)", ge=0.0),
        "variability": Param(1.0, "scale of between-user differences", ge=0.0),
        "windows": Param(24, "windows per activity in each population/adapt-context recording set", ge=4),
        "sessions": Param(3, "separate recording sessions per activity and context", ge=1),
        "k": Param(8, "adapt windows per activity (the user's labelled personal data)", ge=1),
        "unseen_windows": Param(12, "test windows per activity in each unseen context", ge=1),
    }

    def _config(self) -> SyntheticConfig:
        p = dict(self.params)
        p["contexts"] = tuple(p["contexts"])
        p["population_contexts"] = tuple(p["population_contexts"])
        for field in ("contexts", "population_contexts"):
            for c in p[field]:
                if c not in CONTEXTS:
                    raise ValueError(f"{field}: unknown context {c!r}; known: {', '.join(CONTEXTS)}")
        if p["adapt_context"] not in p["contexts"]:
            raise ValueError(f"adapt_context {p['adapt_context']!r} must be one of contexts {list(p['contexts'])}")
        if p["k"] >= p["windows"] - 1:
            raise ValueError(f"k ({p['k']}) must leave test windows: it must be below windows - 1 ({p['windows'] - 1})")
        return SyntheticConfig(**p)

    def describe(self) -> DatasetInfo:
        return describe(self._config())

    def load(self, seed: int, targets: Sequence[str]) -> Splits:
        return generate(self._config(), seed, targets)

    def size_hint(self) -> int:
        """Every session yields at least two windows, whatever ``windows`` says; unseen contexts up to 1.75x
        (class priors of the output drift)."""
        p = self.params
        seen = max(p.windows, 2 * p.sessions) + 2 * p.sessions
        unseen = max(int(1.75 * p.unseen_windows) + 1, 2 * p.sessions) + 2 * p.sessions
        per_user = max(len(p.population_contexts) * seen, seen + (len(p.contexts) - 1) * unseen)
        return p.users * len(CLASSES) * per_user


@hookimpl
def harbench_register_datasets(register):
    register(SyntheticDrift)
