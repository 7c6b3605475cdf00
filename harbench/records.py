"""What the runner tells hooks about jobs and runs."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from .hashing import content_hash


@dataclass(frozen=True)
class JobSpec:
    """One cell of the grid: a method with resolved parameters on one user of a dataset, on one target, one seed."""

    dataset: str
    dataset_params: dict[str, Any]
    method: str
    method_params: dict[str, Any]
    variant: str
    hardware: str
    hardware_params: dict[str, Any]
    seed: int
    user: str

    @functools.cached_property
    def key(self) -> str:
        """The job's identity in the store (computed once per spec: the driver asks for it per job, twice)."""
        return content_hash(
            [self.dataset, self.dataset_params, self.method, self.method_params, self.hardware,
             self.hardware_params, self.seed, self.user]
        )

    def label(self) -> str:
        v = f"[{self.variant}]" if self.variant else ""
        return f"{self.method}{v} · {self.dataset} · {self.user} · {self.hardware} · seed {self.seed}"


@dataclass
class JobRecord:
    spec: JobSpec
    status: str  # ok | failed | skipped
    mode: str | None = None  # measured | estimated
    metrics: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0  # wall time of the job's own work (adapt, evaluation, measurement)


@dataclass
class RunSummary:
    run_id: int
    suite: str
    total: int
    ok: int
    failed: int
    skipped: int
    failures: list[JobRecord] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False
    cached: int = 0  # jobs whose outputs came from the cache (an earlier run computed or measured them)
    results: str | None = None  # the results folder holding the run (run hooks read it back: harbench.report)
