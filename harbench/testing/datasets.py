"""Conformance of a dataset plugin: interface, parameters, splits that pass the leakage checks, determinism."""

from __future__ import annotations

from typing import Any

import torch

from .. import (
    Dataset,
    DatasetInfo,
    Splits,
)
from ..run.leakage import check_splits
from .core import (
    FAST_CPU,
    SHORT_RUN,
    ConformanceReport,
    _builtin_registry,
    _check_parameters,
    _check_plugin_class,
    _Checker,
    _require,
    _short_run,
)

# --------------------------------------------------------------------------------------------- datasets


def check_dataset(cls: type[Dataset], params: dict[str, Any] | None = None, seed: int = 0) -> ConformanceReport:
    """Check a :class:`harbench.Dataset`; ``params`` should make it small (and point it at test files if needed)."""
    params = dict(params or {})
    check = _Checker("dataset", getattr(cls, "name", repr(cls)))
    state: dict[str, Any] = {}
    if not check("interface", lambda: _check_plugin_class(cls, Dataset, params)):
        return check.finish()
    if not check("parameter schema", lambda: _check_parameters(cls, params)):
        return check.finish()
    if not check("describe()", lambda: _describe(cls, params, state)):
        return check.finish()
    if not check("load() on one target user, leakage-free", lambda: _load(cls, params, seed, state)):
        return check.finish()
    check("deterministic for a fixed seed", lambda: _dataset_deterministic(cls, params, seed, state))
    check(SHORT_RUN, lambda: _short_run(
        _builtin_registry("dataset", cls), dataset={"name": cls.name, "params": params},
        methods=[{"name": "generic"}, {"name": "finetune-last", "params": {"epochs": 1}}],
        hardware={"name": "cpu", "params": FAST_CPU}))
    return check.finish()


def _describe(cls, params, state) -> str:
    info = cls(**params).describe()
    _require(isinstance(info, DatasetInfo), f"describe() returned {type(info).__name__}, expected DatasetInfo")
    _require(info.channels > 0 and info.window > 0 and info.rate_hz > 0, "channels, window and rate_hz must be > 0")
    _require(len(info.classes) >= 2 and len(set(info.classes)) == len(info.classes), "classes: ≥ 2 distinct names")
    _require(len(info.users) >= 2 and len(set(info.users)) == len(info.users), "users: ≥ 2 distinct ids (a target "
             "and a population)")
    names = [c.name for c in info.contexts]
    _require(names and len(set(names)) == len(names), "contexts: at least one, with distinct names")
    state["info"] = info
    return f"{len(info.users)} users, {info.num_classes} classes, contexts {names}"


def _load(cls, params, seed, state) -> str:
    info: DatasetInfo = state["info"]
    target = info.users[0]
    splits = cls(**params).load(seed, [target])
    _require(isinstance(splits, Splits), f"load() returned {type(splits).__name__}, expected Splits")
    _require(splits.info == info, "load().info differs from describe()")
    _require(list(splits.targets) == [target], f"load() returned targets {list(splits.targets)}, asked for [{target!r}]")
    check_splits(splits, cls.name)
    parts = [("population", splits.population)] + [(f"{n}.{p}", getattr(t, p)) for n, t in splits.targets.items()
                                                   for p in ("adapt", "test_seen", "test_unseen")]
    for where, w in parts:
        if not len(w):
            continue
        _require(tuple(w.x.shape[1:]) == (info.channels, info.window),
                 f"{where}: windows of shape {tuple(w.x.shape[1:])}, expected ({info.channels}, {info.window})")
        _require(w.x.dtype == torch.float32, f"{where}: x must be float32, got {w.x.dtype}")
        if w.y is not None:
            _require(int(w.y.min()) >= 0 and int(w.y.max()) < info.num_classes, f"{where}: labels out of range")
        _require(int(w.user.max()) < len(info.users) and int(w.context.max()) < len(info.contexts),
                 f"{where}: user or context index out of range")
    t = splits.targets[target]
    _require(len(t.test_seen) > 0, "the target has no test windows in its adapt context")
    state["splits"] = splits
    return (f"population {len(splits.population)}, adapt {len(t.adapt)}, test seen {len(t.test_seen)}, "
            f"unseen {len(t.test_unseen)} windows")


def _dataset_deterministic(cls, params, seed, state) -> str:
    a: Splits = state["splits"]
    b = cls(**params).load(seed, list(a.targets))
    for name in ("x", "y", "recording", "start", "user", "context"):
        _require(torch.equal(getattr(a.population, name), getattr(b.population, name)),
                 f"population.{name} differs between two loads with seed {seed}")
    for user, t in a.targets.items():
        for part in ("adapt", "test_seen", "test_unseen"):
            _require(torch.equal(getattr(t, part).x, getattr(b.targets[user], part).x), f"{user}.{part} differs")
    return ""
