"""Conformance of a method plugin: interface, parameters, a short run, determinism across processes, no
forbidden data, state that survives the cache, read-only inputs."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import torch

from .. import (
    AdaptFacts,
    AdaptResult,
    Method,
    MethodContext,
    MethodState,
    Splits,
    UserData,
    build_backbone,
    fit,
    make_optimizer,
)
from ..builtin.hardware import Cpu
from ..models import BACKBONES
from ..run import CAPABILITIES
from ..run.cache import WeightCache
from ..run.stream import label_free_stream
from ..sandbox import transductive
from ..sandbox.child import second_batch
from .core import (
    FAST_CPU,
    SHORT_RUN,
    TINY_DATA,
    ConformanceReport,
    _builtin_registry,
    _check_parameters,
    _check_plugin_class,
    _Checker,
    _fingerprint,
    _in_own_process,
    _require,
    _same,
    _short_run,
    _time_limit,
    _tiny_splits,
    in_own_process,
)

# ---------------------------------------------------------------------------------------------- methods


def check_method(cls: type[Method], params: dict[str, Any] | None = None, timeout_s: float = 120.0) -> ConformanceReport:
    """Check a :class:`harbench.Method`; ``params`` should make it cheap (e.g. ``{"epochs": 1}``).

    ``timeout_s`` bounds each prepare and adapt on the tiny data (a hang fails the check instead of the test run).
    The checks run in a process of their own (:func:`in_own_process`): a method that ends its process fails.
    """
    params = dict(params or {})
    return in_own_process("method", getattr(cls, "name", repr(cls)), lambda: _check_method(cls, params, timeout_s))


def _check_method(cls: type[Method], params: dict[str, Any], timeout_s: float) -> ConformanceReport:
    check = _Checker("method", getattr(cls, "name", repr(cls)))
    if not check("interface", lambda: _method_interface(cls, params)):
        return check.finish()
    if not check("parameter schema", lambda: _check_parameters(cls, params)):
        return check.finish()
    run = _MethodRun(cls, params, timeout_s)
    if not check("prepare and adapt on tiny data, within the time limit, finite outputs", run.first):
        return check.finish()
    if run.skipped:
        return check.finish()
    check("predictions do not depend on the batch", run.independent_of_batch)
    check("does not modify its inputs", run.inputs_untouched)
    check("adapts a second user", run.second_user)
    check("deterministic for a fixed seed", run.deterministic)
    check("deterministic across processes (another hash seed)", lambda: _across_processes(cls, params))
    check("state is serialisable (safetensors + JSON) and reloads to the same result", run.state_roundtrip)
    check("no use of forbidden data", run.forbidden_data)
    check(SHORT_RUN, lambda: _short_run(
        _builtin_registry("method", cls), dataset={"name": "synthetic-drift", "params": TINY_DATA},
        methods=[{"name": cls.name, "params": params}], hardware={"name": "cpu", "params": FAST_CPU}))
    return check.finish()


def _method_interface(cls: type[Method], params: dict[str, Any]) -> str:
    _check_plugin_class(cls, Method, params)
    _require(cls.backbone in BACKBONES, f"backbone {cls.backbone!r} is not one of {sorted(BACKBONES)}")
    unknown = sorted(set(cls.requires) - set(CAPABILITIES))
    _require(not unknown, f"requires unknown capabilities {unknown}; known: {sorted(CAPABILITIES)}")
    _require(isinstance(cls.label_free, bool), "`label_free` must be a bool")
    _require(cls.adapt is not Method.adapt, "adapt() is not implemented")
    return f"backbone {cls.backbone}, requires {sorted(cls.requires) or 'nothing'}, label_free={cls.label_free}"


class _MethodRun:
    """Tiny data, a one-epoch generic model, and the method's prepare + adapt on one target user."""

    def __init__(self, cls: type[Method], params: dict[str, Any], timeout_s: float = 120.0):
        self.cls, self.params = cls, params
        self.timeout_s = timeout_s
        self.seed = 0
        self.skipped: str | None = None

    def _generic(self, splits: Splits) -> torch.nn.Module:
        info = splits.info
        torch.manual_seed(self.seed)
        model = build_backbone(self.cls.backbone, info.channels, info.num_classes)
        fit(model, splits.population, epochs=1, batch_size=32, generator=torch.Generator().manual_seed(self.seed),
            optimizer=make_optimizer(model.parameters(), "adam", 3e-3))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def _user(self, splits: Splits, method: Method, index: int = 0) -> UserData:
        """As the runner hands it: k labelled windows per class, or the device's unlabelled stream."""
        target = list(splits.targets.values())[index]
        adapt = label_free_stream(target.adapt, self.seed, target.user) if method.label_free else target.adapt
        return UserData(target.user, splits.info.context(target.adapt_context), adapt)

    def _adapt(self, method: Method, generic, state: MethodState, user: UserData) -> AdaptResult:
        target = Cpu(**FAST_CPU)
        torch.manual_seed(self.seed + 1)  # as the runner does: a fixed ambient seed per (seed, user)
        ctx = MethodContext(seed=self.seed, info=self.splits.info, hardware=target.describe(),
                            radio_joules_per_byte=target.radio_joules_per_byte())
        with _time_limit(self.timeout_s, "adapt()"):
            return method.adapt(generic, state, user, ctx)

    def _predictions(self, result: AdaptResult, index: int = 0) -> torch.Tensor:
        """Predictions on the user's test windows; non-finite logits fail (the runner fails such a job)."""
        target = list(self.splits.targets.values())[index]
        x = torch.cat([target.test_seen.x, target.test_unseen.x])
        with torch.no_grad():
            logits = result.model.eval()(x)
        bad = int((~torch.isfinite(logits)).any(dim=1).sum())
        _require(not bad, f"the adapted model's outputs are not finite on {bad} of {len(x)} test windows")
        return logits.argmax(dim=1)

    def first(self) -> str:
        self.splits = _tiny_splits(self.seed, targets=2)
        self.method = self.cls(**self.params)
        reason = self.method.skip(self.splits.info)
        if reason:
            self.skipped = reason
            return f"the method skips the tiny synthetic dataset ({reason}); nothing more to check on it"
        self.generic = self._generic(self.splits)
        self.generic_before = _fingerprint(self.generic)
        self.population_before = self.splits.population.x.clone()
        torch.manual_seed(self.seed)
        with _time_limit(self.timeout_s, "prepare()"):
            self.state = self.method.prepare(self.generic, self.splits.population,
                                             MethodContext(self.seed, self.splits.info))
        _require(isinstance(self.state, MethodState), f"prepare() returned {type(self.state).__name__}, "
                 "expected harbench.MethodState")
        self.user = self._user(self.splits, self.method)
        self.adapt_before = self.user.adapt.x.clone()
        result = self._adapt(self.method, self.generic, self.state, self.user)
        _no_leftover_processes()
        _require(isinstance(result, AdaptResult), f"adapt() returned {type(result).__name__}, expected AdaptResult")
        _require(isinstance(result.facts, AdaptFacts), "AdaptResult.facts must be a harbench.AdaptFacts")
        info = self.splits.info
        with torch.no_grad():
            out = result.model.eval()(self.user.adapt.x[:1])
        _require(tuple(out.shape) == (1, info.num_classes),
                 f"the adapted model outputs shape {tuple(out.shape)}, expected (1, {info.num_classes})")
        for name, t in result.model.state_dict().items():
            _require(not t.is_floating_point() or bool(torch.isfinite(t).all()), f"non-finite weights in {name!r}")
        json.dumps(result.facts.extra)  # facts are stored as JSON
        self.result = result
        self.predictions = self._predictions(result)
        self.weights = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
        return f"{result.facts.optimizer_steps} optimizer step(s), {result.facts.params_trained} parameter(s) trained"

    def independent_of_batch(self) -> str:
        """The runner evaluates every model twice (in order in one batch; reversed in batches of at most 32 and half the windows) and fails a job
        whose logits differ beyond float tolerance: a model must not use the test batch's statistics."""
        target = list(self.splits.targets.values())[0]
        x = torch.cat([target.test_seen.x, target.test_unseen.x])
        model = self.result.model.eval()
        with torch.no_grad():
            first = model(x)
            order = torch.arange(len(x) - 1, -1, -1)
            size = second_batch(len(x))
            parts = [model(x[order[i : i + size]]) for i in range(0, len(x), size)]
        again = torch.empty_like(first)
        again[order] = torch.cat(parts)
        why = transductive(first, again)
        _require(why is None, f"the adapted model's predictions depend on the batch they are evaluated in ({why}); "
                 "predict each window on its own (BatchNorm in eval mode, no statistics of the test batch)")
        return ""

    def second_user(self) -> str:
        user = self._user(self.splits, self.method, index=1)
        result = self._adapt(self.method, self.generic, self.state, user)
        _require(isinstance(result, AdaptResult), f"adapt() returned {type(result).__name__} for a second user")
        self._predictions(result, index=1)
        return f"user {user.user}"

    def inputs_untouched(self) -> str:
        _require(_same(self.generic_before, _fingerprint(self.generic)),
                 "prepare() or adapt() modified the shared generic model; work on harbench.frozen_copy(generic)")
        _require(torch.equal(self.population_before, self.splits.population.x), "prepare() modified the population")
        _require(torch.equal(self.adapt_before, self.user.adapt.x), "adapt() modified the user's adapt windows")
        return ""

    def deterministic(self) -> str:
        splits = _tiny_splits(self.seed, targets=2)
        method = self.cls(**self.params)
        generic = self._generic(splits)
        torch.manual_seed(self.seed)
        state = method.prepare(generic, splits.population, MethodContext(self.seed, splits.info))
        for key, t in self.state.tensors.items():
            _require(key in state.tensors and torch.equal(t, state.tensors[key]), f"prepare() state {key!r} differs")
        result = self._adapt(method, generic, state, self._user(splits, method))
        weights = result.model.state_dict()
        # weights, not predictions: two random models can predict the same constant class by chance
        same = weights.keys() == self.weights.keys() and all(torch.equal(weights[k], v) for k, v in self.weights.items())
        _require(same and torch.equal(self._predictions(result), self.predictions),
                 "two runs with the same seed gave different models; draw randomness from ctx.generator() "
                 "(or torch's seeded global RNG), never from time or os.urandom")
        return ""

    def state_roundtrip(self) -> str:
        for key, t in self.state.tensors.items():
            _require(isinstance(key, str) and isinstance(t, torch.Tensor), f"state tensor {key!r} is not a tensor")
        json.dumps(self.state.meta)  # meta must be plain JSON (no default= fallback)
        with tempfile.TemporaryDirectory() as folder:
            cache = WeightCache(folder)
            cache.put("prepare", "conformance", self.state.tensors, self.state.meta)
            tensors, meta = cache.get("prepare", "conformance")
        restored = MethodState(tensors=tensors, meta=meta)
        again = self._predictions(self._adapt(self.method, self.generic, restored, self.user))
        _require(torch.equal(again, self.predictions), "adapt() with the state reloaded from the cache gives "
                 "different predictions: keep everything adapt needs in MethodState.tensors/meta")
        return f"{len(self.state.tensors)} tensor(s), {len(self.state.meta)} meta key(s)"

    def forbidden_data(self) -> str:
        """The result must not change when everything the method may not use changes.

        The harness passes only the adapt-context windows (without labels for label-free methods), so a method
        passes unless it reaches data some other way (globals, caches keyed by user, ...). Here the user's test
        windows of every context are replaced by noise and, for label-free methods, the adapt labels are
        scrambled; the adapted model must predict exactly as before.
        """
        gen = torch.Generator().manual_seed(99)
        saved = {u: (t.test_seen.x, t.test_unseen.x, t.adapt.y) for u, t in self.splits.targets.items()}
        try:  # in place: a method that finds the split objects themselves (stack, gc) sees the scrambled data
            for t in self.splits.targets.values():
                t.test_seen.x = torch.randn(t.test_seen.x.shape, generator=gen)
                t.test_unseen.x = torch.randn(t.test_unseen.x.shape, generator=gen)
                if self.method.label_free:
                    t.adapt.y = torch.randint(0, self.splits.info.num_classes, t.adapt.y.shape, generator=gen)
            user = self._user(self.splits, self.method)
            if self.method.label_free:
                _require(user.adapt.y is None, "label-free methods must receive no labels")
            result = self._adapt(self.method, self.generic, self.state, user)
        finally:
            for u, (seen, unseen, y) in saved.items():
                t = self.splits.targets[u]
                t.test_seen.x, t.test_unseen.x, t.adapt.y = seen, unseen, y
        again = self._predictions(result)
        _require(torch.equal(again, self.predictions), "the adapted model changed when only test windows"
                 + (" or adapt labels" if self.method.label_free else "") + " changed: the method uses data it must not see")
        return "label-free: adapt labels withheld" if self.method.label_free else "only the adapt context is used"


def _no_leftover_processes() -> None:
    """Every process a method starts must end before its call returns: the runner kills what is left and refuses
    to measure beside it. Orphans re-parent to the checks' subreaper parent (see :func:`in_own_process`)."""
    from ..sandbox.reaper import descendants, kill

    me = os.getpid()
    top = os.getppid() if _in_own_process() else me
    left = [p for p in descendants(top) if p != me]
    kill(left)
    _require(not left, f"prepare() or adapt() left {len(left)} process(es) running (pids {left[:5]}); every process "
             "a method starts must end before it returns (the runner kills them and refuses to measure beside them)")


def adapt_digest(cls: type[Method], params: dict[str, Any]) -> str:
    """A digest of the weights ``cls`` adapts on the tiny data (what two processes must agree on)."""
    run = _MethodRun(cls, params)
    run.first()
    digest = hashlib.sha256()
    for name, t in sorted(run.weights.items()):
        digest.update(name.encode())
        digest.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


_DIGEST_SCRIPT = """
import importlib, json, sys, torch
torch.set_num_threads(1)
from harbench.testing import adapt_digest
obj = importlib.import_module(sys.argv[1])
for part in sys.argv[2].split("."):
    obj = getattr(obj, part)
print(adapt_digest(obj, json.loads(sys.argv[3])))
"""


def _across_processes(cls: type[Method], params: dict[str, Any]) -> str:
    """Two fresh interpreters with different hash seeds: a seed taken from ``hash()`` or ``id()`` differs there."""
    try:
        obj: Any = importlib.import_module(cls.__module__)
        for part in cls.__qualname__.split("."):
            obj = getattr(obj, part)
        importable = obj is cls and "<locals>" not in cls.__qualname__
    except Exception:
        importable = False
    if not importable:
        return f"not checked: {cls.__qualname__} is not importable from {cls.__module__!r} in a fresh process"
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, cls.__module__, cls.__qualname__,
                              json.dumps(params)], capture_output=True, text=True, env=env, timeout=600)
        _require(out.returncode == 0, f"the method failed in a fresh process: {out.stderr.strip()[-500:]}")
        digests.append(out.stdout.strip().splitlines()[-1])
    _require(digests[0] == digests[1], "two processes with different hash seeds adapted different weights; never "
             "derive a seed from hash(), id() or the time: use ctx.generator()")
    return "same weights under PYTHONHASHSEED=1 and 2"
