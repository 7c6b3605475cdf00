"""The run layer: plan a suite, compute its node keys, serve the cache, execute nodes (in this process, a local
pool or Ray) and drive the run into the store. ``Runner`` is the driver; workers are built from a ``WorkerSpec``."""

from .driver import Runner
from .nodes import CAPABILITIES, PROVENANCE_METRICS, Counters, Worker, WorkerSpec
from .plan import PlanCounts, plan_counts, plan_jobs, suite_hash, units

__all__ = ["CAPABILITIES", "PROVENANCE_METRICS", "Counters", "PlanCounts", "Runner", "Worker", "WorkerSpec",
           "plan_counts", "plan_jobs", "suite_hash", "units"]
