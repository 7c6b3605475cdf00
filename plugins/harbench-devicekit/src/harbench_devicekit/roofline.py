"""The calibrated per-operator roofline: latency and energy of a traced workload on a profiled compute unit.

latency = t_call + sum over operators [ max(FLOPs / (eta_c * peak), bytes / (eta_m * bandwidth)) + t_op ]
energy  = P_idle * t + (P_load - P_idle) * u * t

A pure FLOPs/peak estimate is 5-20x optimistic for batch-1 HAR models: they reach 5-60 % of matmul peak and pay a
fixed cost per call and per operator. ``t_call``, ``t_op``, ``eta_c`` and ``eta_m`` are fitted by
``harbench calibrate`` against measured runs. Utilisation ``u`` is the share of the device's cores busy: the
roofline part of an operator keeps ``threads`` of ``cores`` busy, the dispatch overheads keep one core busy.
"""

from __future__ import annotations

from dataclasses import dataclass

from .profiles import ComputeUnit, PowerModel
from .trace import OpTrace


@dataclass(frozen=True)
class Estimate:
    """An estimated phase: seconds, gross and idle-subtracted joules, and how the time splits."""

    seconds: float
    joules: float
    joules_net: float
    compute_bound_s: float
    memory_bound_s: float
    overhead_s: float
    utilisation: float


def roofline_seconds(trace: OpTrace, unit: ComputeUnit, calls: int = 1) -> tuple[float, float, float]:
    """(compute-bound seconds, memory-bound seconds, overhead seconds) of ``calls`` calls of ``trace``."""
    cal = unit.calibration
    flops_rate = cal.eta_c * unit.peak_flops
    bytes_rate = cal.eta_m * unit.bandwidth_bytes_s
    compute = memory = 0.0
    for op in trace.ops:
        t_flops, t_bytes = op.flops / flops_rate, op.bytes / bytes_rate
        if t_flops >= t_bytes:
            compute += t_flops
        else:
            memory += t_bytes
    optimizer_ops = trace.count("optimizer")
    t_opt = cal.t_op_s if cal.t_op_optimizer_s is None else cal.t_op_optimizer_s
    overhead = cal.t_call_s + cal.t_op_s * (len(trace) - optimizer_ops) + t_opt * optimizer_ops
    return compute * calls, memory * calls, overhead * calls


def estimate(trace: OpTrace, unit: ComputeUnit, power: PowerModel, calls: int = 1) -> Estimate:
    compute, memory, overhead = roofline_seconds(trace, unit, calls)
    seconds = compute + memory + overhead
    parallel_share = min(unit.threads, unit.cores) / max(unit.cores, 1) if unit.name == "cpu" else 1.0
    busy = (compute + memory) * parallel_share + overhead / max(unit.cores, 1)
    utilisation = busy / seconds if seconds > 0 else 0.0
    dynamic = (power.load_w - power.idle_w) * utilisation * seconds
    return Estimate(
        seconds=seconds, joules=power.idle_w * seconds + dynamic, joules_net=dynamic,
        compute_bound_s=compute, memory_bound_s=memory, overhead_s=overhead, utilisation=utilisation,
    )
