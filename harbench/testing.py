"""The plugin author's conformance suite: call it from your plugin's own tests.

    from harbench.testing import check_method
    def test_conformance():
        check_method(MyMethod, {"epochs": 1})

Each ``check_*`` runs named checks — interface, parameter schema, a short run on tiny synthetic data, determinism,
no use of forbidden data, serialisable state — and finally one tiny suite through the real runner, so a plugin that
passes here runs under ``harbench run``. It returns a :class:`ConformanceReport` and raises
:class:`ConformanceError` (an ``AssertionError``, so pytest shows every failed check) when any check fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from . import (AdaptFacts, AdaptResult, Dataset, DatasetInfo, Hardware, HardwareInfo, InferenceCost, JobOutputs,
               Method, MethodContext, MethodState, Metric, Param, ParamError, PhaseCost, Splits, UserData, Windows,
               build_backbone, fit, make_optimizer, predict)

TINY_DATA = {"users": 4, "windows": 8, "sessions": 2, "k": 3, "unseen_windows": 3}
FAST_CPU = {"min_duration_s": 0.0, "min_count": 5, "energy_min_s": 0.0, "warmup": 1, "energy": False}
_UNKNOWN = "__conformance_unknown_parameter__"
SHORT_RUN = "short run through the runner"


class ConformanceError(AssertionError):
    pass


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ConformanceReport:
    kind: str
    name: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def __str__(self) -> str:
        lines = [f"conformance of {self.kind} {self.name!r}:"]
        lines += [f"  {'ok  ' if c.passed else 'FAIL'} {c.name}" + (f": {c.detail}" if c.detail else "")
                  for c in self.checks]
        return "\n".join(lines)


class _Checker:
    """Runs checks in order, recording each; a check that raises fails with the exception as its detail.

    Checks run single-threaded (torch threads restored afterwards): they test behaviour, not speed, and one
    thread is both faster on a busy CI machine and free of thread-count-dependent float reductions.
    """

    def __init__(self, kind: str, name: str):
        self.report = ConformanceReport(kind, name)
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __call__(self, name: str, fn: Callable[[], str | None]) -> bool:
        if name == SHORT_RUN and self.report.failed:
            self.report.checks.append(Check(name, False, "not run: fix the failures above first"))
            return False
        try:
            detail = fn() or ""
            self.report.checks.append(Check(name, True, detail))
            return True
        except Exception as exc:  # the check's failure is the result, whatever raised it
            self.report.checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
            return False

    def finish(self) -> ConformanceReport:
        torch.set_num_threads(self._threads)
        if self.report.failed:
            raise ConformanceError(str(self.report))
        return self.report


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# ---------------------------------------------------------------------------------------------- shared


def _check_plugin_class(cls: type, base: type, params: dict[str, Any]) -> Any:
    _require(isinstance(cls, type) and issubclass(cls, base), f"{cls!r} is not a subclass of harbench.{base.__name__}")
    _require(not inspect.isabstract(cls), f"{cls.__name__} leaves abstract methods unimplemented: "
             f"{sorted(getattr(cls, '__abstractmethods__', ()))}")
    name = getattr(cls, "name", None)
    _require(isinstance(name, str) and name and name.strip() == name and " " not in name,
             f"`name` must be a non-empty string without spaces, got {name!r}")
    _require(isinstance(cls.description, str) and cls.description.strip() != "", "`description` is empty: "
             "`harbench list` shows it to users")
    return None


def _check_parameters(cls: type, params: dict[str, Any]) -> str:
    declared = cls.parameters
    _require(isinstance(declared, dict), "`parameters` must be a dict of name -> harbench.Param")
    for pname, p in declared.items():
        _require(isinstance(p, Param), f"parameter {pname!r} is a {type(p).__name__}, not a harbench.Param")
        _require(bool(p.help), f"parameter {pname!r} has no help text (`harbench list` shows it)")
    cls()  # the defaults validate against their own declarations
    cls(**params)
    try:
        cls(**{_UNKNOWN: 1})
    except ParamError:
        pass
    else:
        raise AssertionError("an unknown parameter was accepted; declare parameters with harbench.Param and call "
                             "super().__init__(**params)")
    return f"{len(declared)} parameter(s)"


def _builtin_registry(kind: str | None = None, cls: type | None = None):
    """Built-ins only (third-party plugins pinned out), plus ``cls`` registered as a test plugin."""
    from .hookspecs import hookimpl
    from .plugins import Registry

    registry = Registry()
    registry.load_entry_points(allowed=[])
    if cls is not None:
        existing = registry.items[kind].get(cls.name)
        if existing is not None:
            _require(existing.cls is cls, f"{kind} name {cls.name!r} is taken by the built-in {existing.cls.__name__}")
        else:
            module = types.ModuleType(f"conformance_{kind}")
            setattr(module, f"harbench_register_{'hardware' if kind == 'hardware' else kind + 's'}",
                    hookimpl(lambda register: register(cls)))
            registry.add_plugin(module, "harbench-conformance", "0")
    return registry


def _short_run(registry, *, dataset: dict, methods: list[dict], hardware: dict, metrics: list[str] | None = None,
               target_users: int = 1) -> str:
    """Run one tiny suite through the real runner and store; every job must end ``ok``."""
    from .runner import Runner
    from .store import Store
    from .suite import parse_suite

    doc = {"name": "conformance", "datasets": [dataset], "methods": methods, "hardware": [hardware], "seeds": [0],
           "target_users": target_users, "generic": {"epochs": 1, "batch_size": 32}}
    if metrics is not None:
        doc["metrics"] = metrics
    with tempfile.TemporaryDirectory(prefix="harbench-conformance-") as folder:
        suite = parse_suite(json.dumps(doc), "conformance.yaml", registry)
        summary = Runner(suite, registry, Store(folder)).run()
        rows = Store(folder).job_rows(summary.run_id)
    bad = [f"{r['method']} on {r['user']}: {r['status']} {r.get('error') or ''}".strip()
           for r in rows if r["status"] != "ok"]
    _require(not bad, "jobs did not succeed: " + "; ".join(bad))
    return f"{len(rows)} job(s) ok through the runner"


def _tiny_splits(seed: int, targets: int = 1) -> Splits:
    from .builtin.datasets import SyntheticDrift

    dataset = SyntheticDrift(**TINY_DATA)
    return dataset.load(seed, list(dataset.describe().users[:targets]))


def _fingerprint(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------- methods


def check_method(cls: type[Method], params: dict[str, Any] | None = None, timeout_s: float = 120.0) -> ConformanceReport:
    """Check a :class:`harbench.Method`; ``params`` should make it cheap (e.g. ``{"epochs": 1}``).

    ``timeout_s`` bounds each prepare and adapt on the tiny data (a hang fails the check instead of the test run).
    """
    params = dict(params or {})
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
    from .models import BACKBONES
    from .runner import CAPABILITIES

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
        from .stream import label_free_stream

        target = list(splits.targets.values())[index]
        adapt = label_free_stream(target.adapt, self.seed, target.user) if method.label_free else target.adapt
        return UserData(target.user, splits.info.context(target.adapt_context), adapt)

    def _adapt(self, method: Method, generic, state: MethodState, user: UserData) -> AdaptResult:
        from .builtin.hardware import Cpu

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
        self.predictions = self._predictions(result)
        self.weights = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
        return f"{result.facts.optimizer_steps} optimizer step(s), {result.facts.params_trained} parameter(s) trained"

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
        from .cache import WeightCache

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


@contextlib.contextmanager
def _time_limit(seconds: float | None, what: str):
    """Fail the check when ``what`` runs longer than ``seconds`` (main thread only; elsewhere unlimited)."""
    if not seconds or not math.isfinite(seconds) or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise ConformanceError(f"{what} exceeded the conformance time limit of {seconds:g} s on tiny data")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
    from .leakage import check_splits

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


# --------------------------------------------------------------------------------------------- hardware


def check_hardware(cls: type[Hardware], params: dict[str, Any] | None = None) -> ConformanceReport:
    """Check a :class:`harbench.Hardware` target; ``params`` should make its measurement loops short."""
    params = dict(params or {})
    check = _Checker("hardware", getattr(cls, "name", repr(cls)))
    state: dict[str, Any] = {}
    if not check("interface", lambda: _check_plugin_class(cls, Hardware, params)):
        return check.finish()
    if not check("parameter schema", lambda: _check_parameters(cls, params)):
        return check.finish()
    if not check("describe()", lambda: _hardware_describe(cls, params, state)):
        return check.finish()
    check("run_adapt() runs adapt once and costs it", lambda: _hardware_adapt(cls, params, state))
    check("run_inference() gives latency samples and energy", lambda: _hardware_inference(cls, params, state))
    check("radio_joules_per_byte()", lambda: _hardware_radio(cls, params))
    if state.get("mode") == "estimated":
        check("estimated costs are deterministic", lambda: _hardware_deterministic(cls, params))
    check(SHORT_RUN, lambda: _short_run(
        _builtin_registry("hardware", cls), dataset={"name": "synthetic-drift", "params": TINY_DATA},
        methods=[{"name": "generic"}, {"name": "finetune-last", "params": {"epochs": 1}}],
        hardware={"name": cls.name, "params": params}))
    return check.finish()


def _hardware_describe(cls, params, state) -> str:
    info = cls(**params).describe()
    _require(isinstance(info, HardwareInfo), f"describe() returned {type(info).__name__}, expected HardwareInfo")
    _require(info.mode in ("measured", "estimated"), f"mode must be 'measured' or 'estimated', got {info.mode!r}")
    _require(isinstance(info.processor, str) and info.processor, "processor must be a non-empty string")
    for k, v in info.power.items():
        _require(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, f"power[{k!r}] must be a finite W ≥ 0")
    json.dumps(dict(info.extra), default=str)
    state["mode"] = info.mode
    return f"{info.mode}: {info.processor}"


def _tiny_model_and_data():
    torch.manual_seed(0)
    model = build_backbone("resnet1d", 6, 6)
    x = torch.randn(12, 6, 128, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % 6
    return model, x, y


def _tiny_adapt(model, x, y, calls: list[int]) -> Callable[[], AdaptResult]:
    def adapt() -> AdaptResult:
        calls.append(1)
        opt = make_optimizer(model.head.parameters(), "adam", 1e-2)
        w = Windows(x, y, torch.zeros(len(x), dtype=torch.long), torch.arange(len(x)) * 128,
                    torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x), dtype=torch.long))
        report = fit(model, w, epochs=1, optimizer=opt, batch_size=6, generator=torch.Generator().manual_seed(0))
        return AdaptResult(model, AdaptFacts(params_trained=sum(p.numel() for p in model.head.parameters()),
                                             optimizer_steps=report.optimizer_steps,
                                             forward_samples=report.forward_samples,
                                             backward_samples=report.backward_samples, batch_size=6, epochs=1))
    return adapt


def _check_cost(cost: PhaseCost | InferenceCost, what: str) -> None:
    _require(isinstance(cost.energy_method, str) and cost.energy_method, f"{what}: energy_method must be named")
    fields = ("joules", "joules_net") if isinstance(cost, PhaseCost) else ("joules_per_window", "joules_net_per_window")
    for name in fields:
        v = getattr(cost, name)
        _require(v is None or (isinstance(v, (int, float)) and math.isfinite(v)), f"{what}: {name} must be finite "
                 "or None (unknown)")
        if name in ("joules", "joules_per_window"):
            _require(v is None or v >= 0, f"{what}: {name} must be ≥ 0")
    json.dumps(cost.extra, default=str)


def _hardware_adapt(cls, params, state) -> str:
    model, x, y = _tiny_model_and_data()
    calls: list[int] = []
    out = cls(**params).run_adapt(_tiny_adapt(model, x, y, calls))
    _require(isinstance(out, tuple) and len(out) == 2, "run_adapt() must return (AdaptResult, PhaseCost)")
    result, cost = out
    _require(len(calls) == 1, f"run_adapt() called adapt {len(calls)} times, expected once")
    _require(isinstance(result, AdaptResult), "run_adapt() must return adapt()'s AdaptResult")
    _require(isinstance(cost, PhaseCost), f"run_adapt() cost is {type(cost).__name__}, expected PhaseCost")
    _require(math.isfinite(cost.seconds) and cost.seconds >= 0, "PhaseCost.seconds must be finite and ≥ 0")
    _check_cost(cost, "run_adapt")
    return f"{cost.seconds:.3g} s, {cost.joules} J ({cost.energy_method})"


def _hardware_inference(cls, params, state) -> str:
    model, x, _ = _tiny_model_and_data()
    cost = cls(**params).run_inference(model.eval(), x[:1])
    _require(isinstance(cost, InferenceCost), f"run_inference() returned {type(cost).__name__}, expected InferenceCost")
    _require(len(cost.latency_s) > 0, "no latency samples")
    _require(all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in cost.latency_s),
             "latency samples must be finite seconds > 0")
    _check_cost(cost, "run_inference")
    return f"{len(cost.latency_s)} latency samples"


def _hardware_radio(cls, params) -> str:
    v = cls(**params).radio_joules_per_byte()
    _require(v is None or (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0), "must be None or ≥ 0")
    return "unknown" if v is None else f"{v:.3g} J/byte"


def _hardware_deterministic(cls, params) -> str:
    costs = []
    for _ in range(2):
        model, x, y = _tiny_model_and_data()
        hw = cls(**params)
        _, adapt_cost = hw.run_adapt(_tiny_adapt(model, x, y, []))
        infer = hw.run_inference(model.eval(), x[:1])
        costs.append((adapt_cost.joules, infer.latency_s, infer.joules_per_window))
    _require(costs[0] == costs[1], "an estimated target gave different costs for the same work")
    return ""


# ----------------------------------------------------------------------------------------------- metrics


def tiny_outputs(seed: int = 0) -> JobOutputs:
    """A small, plausible JobOutputs for testing a metric without running a job."""
    gen = torch.Generator().manual_seed(seed)
    from .builtin.datasets import SyntheticDrift

    info = SyntheticDrift(**TINY_DATA).describe()
    y = torch.randint(0, info.num_classes, (30,), generator=gen)
    noisy = torch.where(torch.rand(30, generator=gen) < 0.7, y, torch.randint(0, info.num_classes, (30,), generator=gen))
    # probabilities whose argmax is the prediction: softmax of random logits with the predicted class lifted
    logits = torch.randn(30, info.num_classes, generator=gen, dtype=torch.float64)
    logits.scatter_(1, noisy.view(-1, 1), logits.max(dim=1, keepdim=True).values + 1.0)
    prob = torch.softmax(logits, dim=1)
    return JobOutputs(
        info=info, y_seen=y, pred_seen=noisy, y_unseen=y.flip(0), pred_unseen=noisy.flip(0).roll(3),
        generic_acc_seen=0.5, adapt=PhaseCost(0.8, 4.0, 1.5, "conformance"),
        facts=AdaptFacts(params_trained=390, optimizer_steps=10, forward_samples=160, backward_samples=160,
                         batch_size=16, epochs=10),
        inference=InferenceCost([0.001, 0.0012, 0.0011, 0.0013], 0.002, 0.001, "conformance"),
        model_stats={"params": 10_000, "model_kb": 40.0, "flops": 2e6},
        prob_seen=prob, prob_unseen=prob.flip(0).roll(3, 0),
    )


def check_metric(cls: type[Metric], params: dict[str, Any] | None = None) -> ConformanceReport:
    """Check a :class:`harbench.Metric` on synthetic job outputs and in a tiny run."""
    params = dict(params or {})
    check = _Checker("metric", getattr(cls, "name", repr(cls)))
    if not check("interface", lambda: _metric_interface(cls, params)):
        return check.finish()
    if not check("parameter schema", lambda: _check_parameters(cls, params)):
        return check.finish()
    check("compute() returns a finite number, a label or None, deterministically", lambda: _metric_compute(cls, params))
    check(SHORT_RUN, lambda: _short_run(
        _builtin_registry("metric", cls), dataset={"name": "synthetic-drift", "params": TINY_DATA},
        methods=[{"name": "generic"}], hardware={"name": "cpu", "params": FAST_CPU},
        metrics=["acc_seen", cls.name]))
    return check.finish()


def _metric_interface(cls, params) -> str:
    _check_plugin_class(cls, Metric, params)
    _require(isinstance(cls.unit, str), "`unit` must be a string ('' when unitless)")
    _require(cls.higher_is_better in (True, False, None), "`higher_is_better` must be True, False or None (a label)")
    return f"unit {cls.unit!r}, higher_is_better={cls.higher_is_better}"


def _metric_compute(cls, params) -> str:
    out = tiny_outputs()
    before = (out.y_seen.clone(), out.pred_seen.clone())
    metric = cls(**params)
    a, b = metric.compute(out), metric.compute(tiny_outputs())
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    _require(a == b or both_nan, f"compute() gave {a!r} then {b!r} on the same outputs")
    _require(torch.equal(before[0], out.y_seen) and torch.equal(before[1], out.pred_seen), "compute() modified outputs")
    values = [metric.compute(tiny_outputs(seed)) for seed in range(5)]
    _require(any(v is not None for v in values), "compute() returned None on every tiny output: the metric would show "
             "'—' in every row; read what it needs from JobOutputs (see harbench.testing.tiny_outputs())")
    if isinstance(a, str):
        _require(cls.higher_is_better is None, "a metric returning text must declare higher_is_better = None")
    elif a is not None:
        _require(isinstance(a, (int, float)) and not isinstance(a, bool), f"compute() returned {type(a).__name__}")
        _require(math.isfinite(a), f"compute() returned {a!r}; return None when the value is unknown")
    return f"value {a!r} on the synthetic outputs"
