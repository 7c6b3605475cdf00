"""Conformance of a hardware plugin: description, cost contracts of adapt and inference, determinism."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import torch

from .. import (
    AdaptFacts,
    AdaptResult,
    Hardware,
    HardwareInfo,
    InferenceCost,
    PhaseCost,
    Windows,
    build_backbone,
    fit,
    make_optimizer,
)
from .core import (
    SHORT_RUN,
    TINY_DATA,
    ConformanceReport,
    _builtin_registry,
    _check_parameters,
    _check_plugin_class,
    _Checker,
    _require,
    _short_run,
)

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
