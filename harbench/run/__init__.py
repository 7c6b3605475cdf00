"""The run layer: plan a suite, compute its node keys, serve the cache, execute nodes (in this process, a local
pool or Ray) and drive the run into the store. ``Runner`` is the driver; workers are built from a ``WorkerSpec``.

Names are imported on first use (PEP 562), so ``harbench.run.warm`` — the warm run that serves a cached plan —
imports neither the driver nor torch."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"Runner": "driver", "CAPABILITIES": "nodes", "PROVENANCE_METRICS": "nodes", "Counters": "nodes",
          "Worker": "nodes", "WorkerSpec": "nodes", "PlanCounts": "plan", "plan_counts": "plan", "plan_jobs": "plan",
          "suite_hash": "plan", "units": "plan"}

__all__ = ["CAPABILITIES", "PROVENANCE_METRICS", "Counters", "PlanCounts", "Runner", "Worker", "WorkerSpec",
           "plan_counts", "plan_jobs", "suite_hash", "units"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
