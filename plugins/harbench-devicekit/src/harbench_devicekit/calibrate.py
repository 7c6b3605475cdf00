"""``harbench calibrate TARGET``: fit the estimator's t_call, t_op, eta_c and eta_m to measured runs and report
how far the estimate is from measurement (MAPE).

The reference workloads are the built-in backbones at several widths and batch sizes, forward (inference) and
one Adam step (adapt). They are traced on the host (traces do not depend on the device) and timed by the agent:
as a local subprocess for ``cpu``, over SSH for a device in remote mode. For ``cpu`` the peak and bandwidth of
the profile are the agent's own micro-benchmarks (matmul, copy); for a device they stay the documented figures
and the efficiencies absorb the difference.

The fit: for each (eta_c, eta_m) on a log grid, the overheads (t_call, t_op) are the non-negative weighted least
squares solution of the remaining time (the model is linear in them); the grid point with the lowest MAPE wins.
Besides the in-sample MAPE, a leave-one-model-out MAPE says how well the fit transfers to a model it has not seen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from harbench import build_backbone

from .export import torchscript_bytes
from .profiles import Calibration, ComputeUnit, DeviceProfile, user_profile_dir
from .roofline import roofline_seconds
from .trace import OpTrace, trace_forward, trace_train_step
from .transport import JobFiles, LocalTransport

CHANNELS, WINDOW, CLASSES = 6, 128, 6  # the synthetic-drift dataset's shape, typical of IMU HAR
FULL_MODELS = [("resnet1d", {"width": 8}), ("resnet1d", {"width": 16}), ("resnet1d", {"width": 32}),
               ("mobilenet1d", {"width": 0.5}), ("mobilenet1d", {"width": 1.0})]
QUICK_MODELS = [("resnet1d", {"width": 8}), ("mobilenet1d", {"width": 0.5})]
BATCHES = (1, 8, 32)


@dataclass
class CalibrationPoint:
    name: str
    model: str  # backbone + widths: the group left out in cross-validation
    phase: str  # forward | train
    batch: int
    trace: OpTrace
    measured_s: float = float("nan")


@dataclass
class CalibrationFit:
    calibration: Calibration
    mape: float
    mape_cv: float
    estimates: list[float]
    # measured / estimated of each workload predicted by the fold that left its model out: the range is the
    # interval a calibrated profile puts on every estimate (None: fewer than two models to leave out)
    ratio_low: float | None = None
    ratio_high: float | None = None


def reference_points(quick: bool = False, batches: tuple[int, ...] = BATCHES) -> tuple[list[CalibrationPoint], dict[str, bytes], list[dict[str, Any]]]:
    """The reference workloads: their traces, the TorchScript files and the agent's calibrate items."""
    torch.manual_seed(0)
    points, files, items = [], {}, []
    for backbone, kwargs in QUICK_MODELS if quick else FULL_MODELS:
        model = build_backbone(backbone, CHANNELS, CLASSES, **kwargs)
        label = f"{backbone}(width={kwargs['width']})"
        for batch in batches:
            x = torch.randn(batch, CHANNELS, WINDOW)
            for phase in ("forward", "train"):
                if phase == "train" and batch == 1:
                    continue  # BatchNorm cannot train on one window; fit() never does it either
                name = f"{label} b{batch} {phase}"
                file = f"m{len(items)}.pt"
                trace = trace_forward(model, x) if phase == "forward" else trace_train_step(model, x, CLASSES)
                files[file] = torchscript_bytes(model, x, train=phase == "train")
                points.append(CalibrationPoint(name, label, phase, batch, trace))
                items.append({"name": name, "model": file, "input_shape": [batch, CHANNELS, WINDOW], "phase": phase,
                              "num_classes": CLASSES})
    return points, files, items


def _predict(points: list[CalibrationPoint], unit: ComputeUnit) -> list[float]:
    return [sum(roofline_seconds(p.trace, unit)) for p in points]


class _Workloads:
    """The points' per-operator FLOPs and bytes as arrays, so the grid search is vectorised."""

    def __init__(self, points: list[CalibrationPoint]) -> None:
        self.flops = [np.array([o.flops for o in p.trace.ops]) for p in points]
        self.bytes = [np.array([o.bytes for o in p.trace.ops]) for p in points]
        self.graph_ops = np.array([len(p.trace) - p.trace.count("optimizer") for p in points], dtype=float)
        self.optimizer_ops = np.array([p.trace.count("optimizer") for p in points], dtype=float)
        self.measured = np.array([p.measured_s for p in points])

    def roofline(self, flops_rate: float, bytes_rate: float) -> np.ndarray:
        return np.array([np.maximum(f / flops_rate, b / bytes_rate).sum() for f, b in zip(self.flops, self.bytes)])


def _nnls(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative least squares for a handful of columns: the best unconstrained fit over every subset of
    free columns, keeping the feasible one with the lowest residual (exact for 3 columns, no SciPy needed)."""
    columns = design.shape[1]
    best, best_err = np.zeros(columns), float(np.sum(target**2))
    for mask in range(1, 2**columns):
        free = [c for c in range(columns) if mask >> c & 1]
        solution, *_ = np.linalg.lstsq(design[:, free], target, rcond=None)
        if np.any(solution < 0):
            continue
        full = np.zeros(columns)
        full[free] = solution
        err = float(np.sum((target - design @ full) ** 2))
        if err < best_err:
            best, best_err = full, err
    return best


def _fit_overheads(work: _Workloads, roof: np.ndarray) -> tuple[float, float, float | None]:
    """(t_call, t_op, t_op_optimizer) by relative-error least squares, given the roofline part of each point;
    the model is linear in them once eta_c and eta_m are fixed."""
    y = work.measured
    w = 1.0 / y
    design = np.stack([w, work.graph_ops * w, work.optimizer_ops * w], axis=1)
    if not work.optimizer_ops.any():
        design = design[:, :2]
    solution = _nnls(design, (y - roof) * w)
    return float(solution[0]), float(solution[1]), float(solution[2]) if len(solution) > 2 else None


def _mape(estimated: list[float], points: list[CalibrationPoint]) -> float:
    return 100.0 * float(np.mean([abs(e - p.measured_s) / p.measured_s for e, p in zip(estimated, points)]))


def fit(points: list[CalibrationPoint], peak_flops: float, bandwidth: float, cores: int, threads: int,
        name: str = "cpu") -> CalibrationFit:
    def best_for(subset: list[CalibrationPoint]) -> tuple[float, Calibration]:
        work = _Workloads(subset)
        best: tuple[float, Calibration] | None = None
        for eta_c in np.logspace(-3, 0, 25):
            for eta_m in np.logspace(-3, 0.5, 25):
                roof = work.roofline(eta_c * peak_flops, eta_m * bandwidth)
                t_call, t_op, t_opt = _fit_overheads(work, roof)
                predicted = roof + t_call + t_op * work.graph_ops + (t_op if t_opt is None else t_opt) * work.optimizer_ops
                score = 100.0 * float(np.mean(np.abs(predicted - work.measured) / work.measured))
                if best is None or score < best[0]:
                    best = (score, Calibration(t_call, t_op, float(eta_c), float(eta_m), t_opt))
        assert best is not None
        return best

    mape, cal = best_for(points)
    unit = ComputeUnit(name, peak_flops, bandwidth, cores, threads, cal)
    held_out_errors = []
    ratios: list[float] = []
    for model in sorted({p.model for p in points}):
        train = [p for p in points if p.model != model]
        test = [p for p in points if p.model == model]
        if not train:
            continue
        _, cv_cal = best_for(train)
        cv_unit = ComputeUnit(name, peak_flops, bandwidth, cores, threads, cv_cal)
        predicted = _predict(test, cv_unit)
        held_out_errors += [abs(e - p.measured_s) / p.measured_s for e, p in zip(predicted, test)]
        ratios += [p.measured_s / e for e, p in zip(predicted, test) if e > 0]
    mape_cv = 100.0 * float(np.mean(held_out_errors)) if held_out_errors else float("nan")
    low, high = (float(min(ratios)), float(max(ratios))) if ratios else (None, None)
    return CalibrationFit(cal, mape, mape_cv, _predict(points, unit), low, high)


def measure(points: list[CalibrationPoint], files: dict[str, bytes], items: list[dict[str, Any]],
            run_job: Callable[[JobFiles], dict[str, Any]], settings: dict[str, Any], min_duration_s: float,
            clock: str = "wall") -> dict[str, Any]:
    job = {**settings, "kind": "calibrate", "calibrate": {"items": items, "matmul_n": 512, "copy_mb": 32},
           "timing": {"warmup_s": 0.1, "warmup_min": 3, "min_duration_s": min_duration_s, "min_count": 10,
                      "clock": clock}}
    result = run_job(JobFiles(job, files))
    measured = {item["name"]: item["seconds"] for item in result["items"]}
    for p in points:
        p.measured_s = float(measured[p.name])
    return result


def host_settings(threads: int) -> dict[str, Any]:
    return {"device": "cpu", "threads": threads, "energy": {"meter": "none"}, "state": {},
            "lease": {"path": "/tmp/harbench-agent.lock", "timeout_s": 600}}


def cpu_profile_document(result: dict[str, Any], fitted: CalibrationFit, date: str) -> dict[str, Any]:
    """A complete profile of this host, every figure measured by this calibration."""
    import platform

    source = (f"measured by harbench calibrate cpu on {date} ({result['runtime']}, {result['threads']} threads, "
              f"{result.get('clock', 'wall')} clock)")
    return {
        "name": "cpu",
        "description": f"this host ({platform.node()}), profiled by harbench calibrate",
        "processor": {"value": platform.processor() or platform.machine(), "source": "platform.processor()"},
        "memory_gb": {"value": 0, "source": "not measured by calibration"},
        "units": {"cpu": {
            "peak_flops": {"value": float(result["peak_flops"]), "source": source + ", torch.mm 512x512 fp32"},
            "bandwidth_bytes_s": {"value": float(result["bandwidth_bytes_s"]), "source": source + ", 32 MiB copy"},
            "cores": {"value": int(result["threads"]), "source": "torch.get_num_threads() on the host"},
            "threads": {"value": int(result["threads"]), "source": "torch.get_num_threads() on the host"},
        }},
        "calibration": calibration_block(fitted, date, "cpu", source),
    }


def calibration_block(fitted: CalibrationFit, date: str, unit: str, source: str) -> dict[str, Any]:
    cal = fitted.calibration
    return {
        "date": date, "status": "calibrated",
        unit: {"t_call_s": cal.t_call_s, "t_op_s": cal.t_op_s, "t_op_optimizer_s": cal.t_op_optimizer_s,
               "eta_c": cal.eta_c, "eta_m": cal.eta_m,
               "mape_percent": round(fitted.mape, 2), "mape_leave_one_model_out_percent": round(fitted.mape_cv, 2),
               **({"ratio_low": fitted.ratio_low, "ratio_high": fitted.ratio_high}
                  if fitted.ratio_low is not None else {}),
               "source": f"fitted by harbench calibrate on {date} against {source}"
                         + ("; ratio_low/high: measured / estimated range, leave-one-model-out"
                            if fitted.ratio_low is not None else "")},
    }


def device_profile_document(profile: DeviceProfile, fitted: CalibrationFit, date: str, unit: str,
                            mode: str | None, result: dict[str, Any]) -> dict[str, Any]:
    """The device's profile with its calibration for ``unit`` replaced (figures scaled back to reference clocks)."""
    doc = yaml.safe_load(yaml.safe_dump(dict(profile.raw)))
    cal = fitted.calibration
    if mode is not None and profile.modes:
        ref = profile.unit(unit, None).calibration
        at_mode = profile.unit(unit, mode).calibration
        ratio = ref.t_op_s / at_mode.t_op_s if at_mode.t_op_s else 1.0
        cal = Calibration(cal.t_call_s * ratio, cal.t_op_s * ratio, cal.eta_c, cal.eta_m,
                          None if cal.t_op_optimizer_s is None else cal.t_op_optimizer_s * ratio)
    block = calibration_block(CalibrationFit(cal, fitted.mape, fitted.mape_cv, fitted.estimates, fitted.ratio_low,
                                             fitted.ratio_high), date, unit,
                              f"agent measurements on {result.get('node')} ({result.get('runtime')}, mode {mode})")
    doc.setdefault("calibration", {}).update(block)
    return doc


def write_profile(doc: dict[str, Any], output: Path | None) -> Path:
    path = output or user_profile_dir() / f"{doc['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def report_lines(points: list[CalibrationPoint], fitted: CalibrationFit) -> list[str]:
    cal = fitted.calibration
    lines = [f"{'workload':<36} {'measured ms':>12} {'estimated ms':>13} {'error':>8}"]
    for p, e in zip(points, fitted.estimates):
        lines.append(f"{p.name:<36} {p.measured_s * 1e3:>12.3f} {e * 1e3:>13.3f} {100 * (e - p.measured_s) / p.measured_s:>+7.1f}%")
    lines += [
        f"fitted: t_call = {cal.t_call_s * 1e6:.1f} us, t_op = {cal.t_op_s * 1e6:.2f} us, "
        f"t_op(optimizer) = {(cal.t_op_optimizer_s or 0.0) * 1e6:.2f} us, "
        f"eta_c = {cal.eta_c:.3f}, eta_m = {cal.eta_m:.3f}",
        f"MAPE (in-sample, {len(points)} workloads): {fitted.mape:.1f} %",
        f"MAPE (leave-one-model-out): {fitted.mape_cv:.1f} %",
        f"goal on the host: <= 25 % -> {'met' if fitted.mape <= 25.0 else 'NOT met'}",
    ]
    return lines


def today() -> str:
    return dt.date.today().isoformat()


def calibrate_host(quick: bool, min_duration_s: float, threads: int = 1) -> tuple[list[CalibrationPoint], CalibrationFit, dict[str, Any]]:
    points, files, items = reference_points(quick)
    # one thread on a shared host: its CPU time is the cost without the other tenants' share of the cores
    clock = "thread" if threads == 1 else "wall"
    result = measure(points, files, items, LocalTransport().run, host_settings(threads), min_duration_s, clock)
    result["clock"] = clock
    threads = int(result["threads"])
    fitted = fit(points, float(result["peak_flops"]), float(result["bandwidth_bytes_s"]), threads, threads)
    return points, fitted, result
