"""Public helpers for plugin tests: a registry, the built-in synthetic dataset, tiny splits and a trained tiny
generic model, and the core's leakage check. Plugin tests use these instead of reaching into core modules."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

import torch

from .. import Splits, build_backbone, fit, make_optimizer
from ..builtin.datasets import SyntheticDrift
from ..machine import git_commit, processor
from ..plugins import Registry, get_registry
from ..run.leakage import check_splits
from .core import TINY_DATA


def registry(refresh: bool = False, *, builtins_only: bool = False) -> Registry:
    """The registry ``harbench run`` would use (every installed plugin; ``refresh`` reloads it, e.g. after a test
    changed ``HARBENCH_PLUGINS``), or the built-ins only."""
    if builtins_only:
        r = Registry()
        r.load_entry_points(allowed=[])
        return r
    return get_registry(refresh=refresh)


def synthetic_drift(**params: Any) -> SyntheticDrift:
    """The embedded ``synthetic-drift`` dataset with ``params`` (validated like a suite's)."""
    return SyntheticDrift(**params)


def tiny_splits(seed: int = 0, targets: int = 1, **params: Any) -> Splits:
    """Small synthetic splits (``TINY_DATA`` unless overridden), for ``targets`` target users."""
    dataset = SyntheticDrift(**{**TINY_DATA, **params})
    return dataset.load(seed, list(dataset.describe().users[:targets]))


def tiny_generic(splits: Splits, backbone: str = "resnet1d", *, epochs: int = 1, seed: int = 0,
                 lr: float = 1e-3) -> torch.nn.Module:
    """A generic model trained on ``splits.population`` as the runner trains one (Adam, seeded), in eval mode."""
    torch.manual_seed(seed)
    info = splits.info
    model = build_backbone(backbone, info.channels, info.num_classes)
    fit(model, splits.population, epochs=epochs, batch_size=32, optimizer=make_optimizer(model.parameters(), "adam", lr),
        generator=torch.Generator().manual_seed(seed))
    return model.eval()


__all__ = ["check_splits", "registry", "synthetic_drift", "tiny_generic", "tiny_splits"]


def measured_on() -> dict[str, Any]:
    """Where and when a benchmark measures, for the record it stores (``--json``): the time, harbench's commit, this
    machine's processor and cores, and its 1-minute load average now (a record states how busy the machine was)."""
    return {"created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit() or "unknown",
            "processor": processor(), "cores": os.cpu_count(), "load_average": os.getloadavg()[0]}
