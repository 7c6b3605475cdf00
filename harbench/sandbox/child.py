"""The job's process: where a plugin's ``prepare`` or ``adapt`` runs, and where the model it returns lives.

A request opens the process (a :class:`PrepareRequest`, an :class:`AdaptRequest` or a cached model's
:class:`LoadRequest`); commands then run the method, the hardware target beside the model (an estimating target
traces the model; a host-measuring one times it here while the host meters the energy), the evaluation on test
*inputs*, and the integrity verdict. Every reply is :mod:`harbench.sandbox.wire` data. The model never leaves this
process, and whatever the plugin changed in it (hooks, monkeypatches, dtype, threads, RNG) ends with it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from safetensors.torch import load as safetensors_load

from ..api import AdaptFacts, AdaptResult, MethodState
from ..models import build_backbone, count_params
from ..run.observe import Observer
from ..training import flops_per_window
from .digests import changed, model_digest, state_digest
from .messages import AdaptRequest, LoadRequest, ModelSpec, PrepareRequest
from .wire import encode, plain


def second_batch(n: int) -> int:
    """The second evaluation's batch size: reversed order in batches of at most 32 and at most half the windows,
    so every window meets other company (and another batch size) than in the first pass."""
    return max(1, min(32, n // 2))


def build_model(spec: ModelSpec) -> torch.nn.Module:
    model = build_backbone(spec.backbone, spec.channels, spec.classes)
    model.load_state_dict(safetensors_load(spec.weights))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class PeakRss:
    """The adapt phase's peak resident memory above the job process's own at "go" (Linux ``/proc``).

    ``start`` resets the kernel's high-water mark (``VmHWM``, by writing 5 to ``/proc/self/clear_refs``) to the
    current RSS, which already holds the unpacked request and every page inherited from the zygote; ``stop``
    reads the mark again. Without ``clear_refs`` the mark since the fork is used. None where ``/proc`` is missing."""

    def __init__(self) -> None:
        self.base_kb: int | None = None
        self.how = "VmHWM after clear_refs"

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return None

    def start(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.how = "VmHWM since fork (clear_refs not writable)"
        self.base_kb = self._status("VmRSS")

    def stop(self) -> dict | None:
        peak = self._status("VmHWM")
        if self.base_kb is None or peak is None:
            return None
        return {"peak_mb": max(peak - self.base_kb, 0) / 1024.0, "baseline_mb": self.base_kb / 1024.0,
                "method": f"rss: {self.how}, over the job process's RSS at go"}


class HostMeter:
    """Stands in for :class:`~harbench.measure.EnergyMeter` in a job's process: each region is metered by the
    host's one long-running meter (a meter per job process would pay codecarbon's start and idle measurement per
    job), while the timing stays here beside the model."""

    tracker = None

    def __init__(self, ask: Callable[[str], dict]):
        self.ask = ask
        self._info: dict | None = None  # asked for on first use: a target with energy off never starts the meter

    def _described(self) -> dict:
        if self._info is None:
            self._info = self.ask("describe")
        return self._info

    @property
    def method(self) -> str:
        return self._described()["method"]

    @property
    def idle_w(self) -> float | None:
        return self._described()["idle_w"]

    @contextmanager
    def region(self) -> Iterator[list]:
        from ..measure.energy import Energy

        out: list = []
        self.ask("start")
        try:
            yield out
        finally:
            e = self.ask("stop")
            out.append(Energy(e["joules"], e["joules_net"], e["seconds"], e["method"]))


def error_message(exc: BaseException) -> bytes:
    message = f"the plugin called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else str(exc)
    return encode("error", {"type": type(exc).__name__, "message": message,
                            "traceback": "".join(traceback.format_exception(exc))})


def _cost(cost: Any) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cost), default=plain))


class JobProcess:
    """One opened request and the commands on it (see the module's docstring); ``handle`` never raises."""

    def __init__(self, registry, targets, request, ask: Callable[[str], dict] | None = None):
        self.registry, self.targets, self.request, self.ask = registry, targets, request, ask
        torch.set_num_threads(max(1, request.threads))
        self.result: AdaptResult | None = None
        self.before: tuple | None = None
        if isinstance(request, LoadRequest):
            self.result = AdaptResult(build_model(request.model), AdaptFacts(**request.facts))
            return
        self.method = registry.get("method", request.method).cls(**request.params)
        self.generic = build_model(request.generic)
        if isinstance(request, AdaptRequest):
            self.before = model_digest(self.generic), state_digest(request.state)

    def handle(self, command: tuple) -> bytes:
        try:
            return getattr(self, f"do_{command[0].replace('-', '_')}")(*command[1:])
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the job fails, the process stays
            return error_message(exc)

    # --------------------------------------------------------------------------------------- the method
    def _adapt(self) -> AdaptResult:
        r = self.request
        torch.manual_seed(r.torch_seed)
        with Observer() as observer:
            result = self.method.adapt(self.generic, r.state, r.user, r.ctx)
        if not isinstance(result, AdaptResult):
            raise TypeError(f"method {r.method!r}: adapt() returned {type(result).__name__}, expected harbench.AdaptResult")
        observer.apply(result)
        self.result = result
        return result

    def do_go(self) -> bytes:
        """``prepare``, or an ``adapt`` the host measures from outside (its energy meter, this process's peak RSS)."""
        if isinstance(self.request, PrepareRequest):
            return self._prepare()
        memory = PeakRss()
        memory.start()
        self._adapt()
        return encode("returned", {"memory": memory.stop()})

    def _prepare(self) -> bytes:
        r = self.request
        torch.manual_seed(r.torch_seed)
        state = self.method.prepare(self.generic, r.population, r.ctx)
        if not isinstance(state, MethodState):
            raise TypeError(f"method {r.method!r}: prepare() returned {type(state).__name__}, expected harbench.MethodState")
        bad = [k for k, t in state.tensors.items() if not isinstance(k, str) or not isinstance(t, torch.Tensor)]
        if bad:
            raise TypeError(f"method {r.method!r}: prepare() returned MethodState.tensors with non-tensor entries "
                            f"{bad[:4]}; state crosses the boundary as tensors and JSON only")
        try:
            json.dumps(state.meta, default=plain)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"method {r.method!r}: prepare() returned MethodState.meta that is not JSON ({exc})") from None
        return encode("state", {"meta": state.meta}, state.tensors)

    def _probe(self, result: AdaptResult, example: torch.Tensor) -> None:
        """One forward on the returned model, so a target that estimates from traced calls sees the input shape."""
        with torch.no_grad():
            result.model.eval()(example[:1])

    def do_go_target(self, job, example: torch.Tensor) -> bytes:
        """An ``adapt`` the job's target runs (or models) here, beside the method."""
        hw = self.targets.of(job)

        def run() -> AdaptResult:
            result = self._adapt()
            self._probe(result, example)
            return result

        _, cost = hw.run_adapt(run)
        return encode("adapted", {"cost": _cost(cost)})

    def do_replay(self, job, example: torch.Tensor) -> bytes:
        """Another estimating target models the adapt phase this process already ran (or loaded from the cache)."""
        assert self.result is not None
        hw, result = self.targets.of(job), self.result

        def replay() -> AdaptResult:
            self._probe(result, example)
            return result

        _, cost = hw.run_adapt(replay)
        return encode("adapted", {"cost": _cost(cost)})

    # ------------------------------------------------------------------------------------- the model
    def do_evaluate(self, x_seen: torch.Tensor, x_unseen: torch.Tensor, example: torch.Tensor) -> bytes:
        """Logits on the test inputs (the labels stay in the host), twice: in order in batches of 512, then in
        reverse order in batches of :func:`second_batch`; the model's statistics; its weights when the cache can
        rebuild it (the generic architecture)."""
        assert self.result is not None
        model, method = self.result.model.eval(), self.request.method
        for name, p in model.state_dict().items():
            if p.is_floating_point() and not torch.isfinite(p).all():
                raise ValueError(f"method {method!r} returned a model with non-finite weights in {name!r}")
        with torch.no_grad():
            shape = tuple(model(example[:1]).shape)
            seen, unseen = _logits(model, x_seen), _logits(model, x_unseen)
            both = torch.cat([x_seen, x_unseen])
            order = torch.arange(len(both) - 1, -1, -1)
            again = torch.empty(0)
            if len(both):
                size = second_batch(len(both))
                parts = [model(both[order[i : i + size]]) for i in range(0, len(both), size)]
                again = torch.empty_like(torch.cat(parts))
                again[order] = torch.cat(parts)
        try:
            flops = flops_per_window(model, example[:1])
        except Exception:  # noqa: BLE001 -- a model the counter cannot trace has no FLOP figure
            flops = math.nan
        kb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1024
        stats = {"params": count_params(model), "model_kb": kb, "flops": flops}
        tensors = {"seen": seen, "unseen": unseen, "again": again}
        cacheable = self._cacheable(model)
        if cacheable:
            tensors.update({f"w/{k}": v for k, v in model.state_dict().items()})
        facts = json.loads(json.dumps(dataclasses.asdict(self.result.facts), default=plain))
        return encode("evaluated", {"shape": list(shape), "stats": stats, "facts": facts, "cacheable": cacheable},
                      tensors)

    def _cacheable(self, model: torch.nn.Module) -> bool:
        if not isinstance(self.request, AdaptRequest) or type(model) is not type(self.generic):
            return False
        theirs, ours = model.state_dict(), self.generic.state_dict()
        return theirs.keys() == ours.keys() and all(theirs[k].shape == ours[k].shape for k in ours)

    def do_inference(self, job, example: torch.Tensor) -> bytes:
        """Batch-1 inference measured (or modelled) by the job's target, here beside the model."""
        assert self.result is not None
        hw = self.targets.of(job)
        if hw.measures_host and self.ask is not None:
            from ..measure.energy import EnergyMeter

            EnergyMeter._instance = HostMeter(self.ask)  # type: ignore[assignment]
        cost = hw.run_inference(self.result.model.eval(), example[:1])
        return encode("inference", {"cost": _cost(cost)})

    def do_verdict(self) -> bytes:
        if self.before is None:
            return encode("verdict", {"generic": [], "state": []})
        return encode("verdict", {"generic": changed(self.before[0], model_digest(self.generic)),
                                  "state": changed(self.before[1], state_digest(self.request.state))})


def _logits(model: torch.nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    if not len(x):
        return torch.zeros(0, 0)
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])
