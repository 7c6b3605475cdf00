"""``DeviceTarget``: a harbench hardware target with two modes, chosen in the suite.

``mode: estimate`` runs the method on the host (accuracy) and models time and energy with the calibrated roofline
of the device profile; rows are ``estimated`` and name the profile and its calibration date.
``mode: remote`` also runs the method on the host, then measures on the real device through the agent over SSH:
batch-1 inference of the personalized model, and a replay of the adapt workload the method reported.

Board plugins subclass it with a profile name, their profile folder and their sensors' defaults.
"""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from harbench import AdaptResult, Hardware, HardwareInfo, InferenceCost, Param, PhaseCost

from .export import onnx_bytes, torchscript_bytes
from .memory import adapt_memory, inference_memory
from .opmodel import ESTIMATOR as OPMODEL
from .opmodel import OpModel, features
from .profiles import DeviceProfile, load_profile
from .roofline import Estimate, estimate
from .trace import trace_forward, trace_train_step
from .transport import JobFiles, make_transport
from .workload import AdaptWorkload, InputShapes, output_classes

ESTIMATOR = "roofline-v1"

COMMON_PARAMETERS: dict[str, Param] = {
    "mode": Param("estimate", "estimate: calibrated roofline on the host; remote: measure on the device over SSH",
                  choices=("estimate", "remote")),
    "host": Param("", "remote mode: ssh destination or ssh-config alias (keys from your SSH config); 'local' runs "
                      "the agent on this machine"),
    "ssh_config": Param("", "remote mode: an ssh config file to use instead of ~/.ssh/config"),
    "ssh_options": Param([], "remote mode: extra ssh arguments, e.g. ['-p', '2222']", type=list[str]),
    "python": Param("python3", "remote mode: the device's Python (>= 3.8, with torch or onnxruntime)"),
    "remote_dir": Param("~/.cache/harbench-agent", "remote mode: where job folders are unpacked on the device"),
    "runtime": Param("torch", "remote inference runtime (adapt replay always uses torch)",
                     choices=("torch", "onnxruntime")),
    "threads": Param(0, "intra-op threads on the device (0 = the runtime's default)", ge=0),
    "warmup_s": Param(0.5, "latency warm-up seconds", ge=0.0),
    "min_duration_s": Param(1.0, "minimum seconds of timed single inferences", ge=0.0),
    "min_count": Param(20, "minimum number of timed single inferences", ge=1),
    "energy_min_s": Param(5.0, "seconds of back-to-back work per energy measurement (sensors sample at 2-10 Hz)",
                          ge=0.0),
    "idle_s": Param(3.0, "seconds of idle power measured in the same session, for idle subtraction", ge=0.0),
    "energy_hz": Param(10.0, "power sampling rate", ge=0.1, le=100.0),
    "meter": Param("auto", "energy source on the device (auto = best available)",
                   choices=("auto", "ina3221", "pmic", "command", "utilisation", "none")),
    "meter_command": Param([], "external meter adapter: a command printing instantaneous watts", type=list[str]),
    "sysfs_root": Param("/sys", "sysfs root on the device (thermal zones, cpufreq, devfreq)"),
    "ina3221_root": Param("", "INA3221 driver folder(s), ':'-separated ('' = the JetPack 4/5 defaults)"),
    "vcgencmd": Param("vcgencmd", "the vcgencmd program on the device"),
    "nvpmodel": Param("nvpmodel", "the nvpmodel program on the device"),
    "proc_stat": Param("/proc/stat", "CPU-time counters for the utilisation power model"),
    "temp_threshold_c": Param(70.0, "wait until every thermal zone is below this before measuring", ge=0.0),
    "settle_timeout_s": Param(180.0, "give up waiting for the temperature after this long (recorded)", ge=0.0),
    "lease_path": Param("/tmp/harbench-agent.lock", "device lock file: one job at a time per device"),
    "lease_timeout_s": Param(3600.0, "fail when the device stays leased longer than this", ge=0.0),
    "job_timeout_s": Param(3600.0, "fail a remote job that runs longer than this", ge=1.0),
    "usable_memory_mb": Param(0.0, "memory the adapt phase may use on the device, MB (0 = the profile's "
                                   "usable_memory_mb); a job that needs more is skipped", ge=0.0),
}


class DeviceTarget(Hardware):
    """A profiled device: estimated with the roofline, or measured remotely through the agent."""

    profile_name: ClassVar[str] = ""
    profile_dirs: ClassVar[list[Path]] = []
    compute_unit: ClassVar[str] = "cpu"
    parameters = COMMON_PARAMETERS

    registry: ClassVar[dict[str, type["DeviceTarget"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Remember every device target by name, so ``harbench calibrate NAME`` can build it."""
        super().__init_subclass__(**kwargs)
        if getattr(cls, "name", None):
            DeviceTarget.registry[cls.name] = cls

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._shapes = InputShapes()
        self._window: tuple[int, int] | None = None

    # --------------------------------------------------------------------------------------- configuration
    @cached_property
    def profile(self) -> DeviceProfile:
        return load_profile(self.params.get("profile") or self.profile_name, list(self.profile_dirs))

    @property
    def unit_name(self) -> str:
        return self.params.get("unit") or self.compute_unit

    @property
    def power_mode(self) -> str | None:
        return self.params.get("power_mode") or self.profile.default_mode

    @property
    def remote(self) -> bool:
        return self.params.get("mode", "estimate") == "remote"

    def describe(self) -> HardwareInfo:
        profile = self.profile
        power = profile.power(self.power_mode)
        extra: dict[str, Any] = {
            "target_mode": self.params.mode, "profile": profile.name, "profile_path": profile.path,
            "calibration_date": profile.calibration_date, "calibration_status": profile.calibration_status,
            "unit": self.unit_name,
        }
        if self.power_mode:
            extra["power_mode"] = self.power_mode
        model = None if self.remote else self.opmodel
        if model is not None:  # only then: extras of uncalibrated profiles (and their job keys) stay as they were
            extra["inference_estimator"] = OPMODEL
            extra["calibrated_from"] = model.source
            if model.ratio_low is not None:
                extra["cost_intervals"] = {"latency_ms_p50": [model.ratio_low, model.ratio_high]}
        elif not self.remote and self.roofline_ratios is not None:
            low, high = self.roofline_ratios
            extra["cost_intervals"] = {axis: [low, high] for axis in ("latency_ms_p50", "adapt_j", "adapt_s")}
            extra["calibrated_from"] = self._roofline_block.get("source")
        if self.remote:
            extra["host"] = self.params.host
            extra["runtime"] = self.params.runtime
        else:
            extra["estimator"] = ESTIMATOR
        return HardwareInfo(
            name=self.name, processor=profile.processor, memory_gb=profile.memory_gb,
            mode="measured" if self.remote else "estimated",
            power={"idle_w": power.idle_w, "load_w": power.load_w}, extra=extra,
            usable_memory_mb=self.params.get("usable_memory_mb") or profile.usable_memory_mb,
        )

    # ---------------------------------------------------------------------------------------------- phases
    def run_adapt(self, adapt: Callable[[], AdaptResult]) -> tuple[AdaptResult, PhaseCost]:
        started = time.perf_counter()
        with self._shapes.recording():
            result = adapt()
        host_s = time.perf_counter() - started
        workload = AdaptWorkload.from_facts(result.facts, result.model, output_classes(result.model))
        common = {"target_mode": self.params.mode, "host_adapt_s": host_s, "workload": workload.to_json()}
        if workload.empty:
            return result, PhaseCost(0.0, 0.0, 0.0, "none", {**common, "reason": "the method executed no work",
                                     "memory": {"kind": "estimated", "total_mb": 0.0}}, peak_mb=0.0)
        window = self._shapes.window_of(result.model) or self._window
        if window is None:
            raise RuntimeError(f"{self.name}: cannot tell the input window shape of the adapted model (it was never "
                               "called on a (N, C, T) batch while adapting)")
        self._window = window
        memory = self._adapt_memory(result, workload, window)
        common["memory"] = memory
        if self.remote:
            cost = self._remote_adapt(result.model, workload, window, common)
        else:
            est = self._estimate_adapt(result.model, workload, window)
            roofline_status = (profile_cal := self.profile.raw.get("calibration") or {}).get(
                "roofline_status", self.profile.calibration_status)
            cost = PhaseCost(est.seconds, est.joules, est.joules_net, f"estimate:{ESTIMATOR}",
                             {**common, **self._estimate_extra(est), "calibration_status": roofline_status,
                              **self._adapt_uncertainty(est, roofline_status, profile_cal)})
        cost.peak_mb = memory["total_mb"]
        return result, cost

    def _adapt_uncertainty(self, est: Estimate, status: str, cal: dict[str, Any]) -> dict[str, Any]:
        if status == "uncalibrated":
            return {"uncertainty": "uncalibrated"}
        out: dict[str, Any] = {"calibrated_from": (cal.get(self.unit_name) or {}).get("source")}
        ratios = self.roofline_ratios
        if ratios is None:
            return {**out, "uncertainty": "no interval"}
        return {**out, "uncertainty": "interval", "seconds_interval": [est.seconds * ratios[0], est.seconds * ratios[1]],
                "joules_interval": [est.joules * ratios[0], est.joules * ratios[1]]}

    def _adapt_memory(self, result: AdaptResult, workload: AdaptWorkload, window: tuple[int, int]) -> dict[str, Any]:
        """The adapt phase's peak memory, modelled from the workload (see :mod:`harbench_devicekit.memory`)."""
        extra = result.facts.extra or {}
        momentum = extra.get("momentum")
        if workload.optimizer_steps:
            mem = _traced(adapt_memory, result.model, torch.zeros(workload.batch_size, *window),
                          workload.num_classes, workload.trainable, workload.optimizer,
                          None if momentum is None else float(momentum)).to_json()
        else:  # forward-only adaptation (statistics, pseudo-labels): one evaluation batch through the model
            fwd = _traced(inference_memory, result.model, torch.zeros(workload.eval_batch, *window))
            mem = {"weights_mb": fwd["weights_mb"], "batch_mb": fwd["input_mb"], "activations_mb": fwd["activations_mb"],
                   "gradients_mb": 0.0, "optimizer_mb": 0.0, "batch_size": workload.eval_batch, "saved_mb": 0.0,
                   "notes": ["forward only: peak live activations of one evaluation batch"], "total_mb": fwd["total_mb"]}
        return {"kind": "estimated", "estimator": "devicekit memory-v1", **mem}

    def run_inference(self, model: nn.Module, example: torch.Tensor) -> InferenceCost:
        self._window = (int(example.shape[1]), int(example.shape[2]))
        if self.remote:  # the agent measures time and energy; memory stays the model's figure
            cost = self._remote_inference(model, example[:1])
            memory = _traced(inference_memory, model, example[:1])
            cost.extra["memory"] = {"kind": "estimated", **memory}
            cost.peak_mb = memory["total_mb"]
            return cost
        trace = _traced(trace_forward, model, example[:1])
        unit = self._unit()
        est = estimate(trace, unit, self.profile.power(self.power_mode))
        memory = _traced(inference_memory, model, example[:1])
        extra = {"target_mode": "estimate", **self._estimate_extra(est),
                 "memory": {"kind": "estimated", "calibration": "uncalibrated", **memory}}
        fitted = self.opmodel
        if fitted is None:
            ratios = self.roofline_ratios
            if ratios is not None:
                extra.update({"latency_interval_s": [est.seconds * ratios[0], est.seconds * ratios[1]],
                              "joules_interval": [est.joules * ratios[0], est.joules * ratios[1]],
                              "uncertainty": "interval", "calibrated_from": self._roofline_block.get("source")})
            else:
                extra["uncertainty"] = ("uncalibrated" if self.profile.calibration_status == "uncalibrated"
                                        else "no interval")
            return InferenceCost([est.seconds], est.joules, est.joules_net, f"estimate:{ESTIMATOR}", extra,
                                 peak_mb=memory["total_mb"])
        seconds = max(float(fitted.predict(features(trace, unit))), 0.0)
        scale = seconds / est.seconds if est.seconds > 0 else 0.0  # energy is linear in time at fixed utilisation
        interval = fitted.interval(seconds)
        extra.update({"estimator": OPMODEL, "roofline_s": est.seconds, "calibration_status": "calibrated",
                      "calibrated_from": fitted.source, "latency_interval_s": None if interval is None else list(interval),
                      "joules_interval": None if interval is None or seconds <= 0 else
                      [est.joules * scale * interval[0] / seconds, est.joules * scale * interval[1] / seconds],
                      "uncertainty": "interval" if interval else "no interval (fewer than 3 shots)"})
        return InferenceCost([seconds], est.joules * scale, est.joules_net * scale, f"estimate:{OPMODEL}", extra,
                             peak_mb=memory["total_mb"])

    @property
    def _roofline_block(self) -> dict[str, Any]:
        return ((self.profile.raw.get("calibration") or {}).get(self.unit_name) or {})

    @property
    def roofline_ratios(self) -> tuple[float, float] | None:
        """The measured / estimated range of the roofline's calibration (``harbench calibrate`` against timed
        reference workloads, leave-one-model-out), when the profile was calibrated by measurement."""
        block = self._roofline_block
        status = (self.profile.raw.get("calibration") or {}).get("roofline_status", self.profile.calibration_status)
        if status == "uncalibrated" or block.get("ratio_low") is None or block.get("ratio_high") is None:
            return None
        return float(block["ratio_low"]), float(block["ratio_high"])

    @cached_property
    def opmodel(self) -> OpModel | None:
        """The k-shot latency model of ``harbench calibrate TARGET --measurements`` in the profile, if any."""
        block = ((self.profile.raw.get("calibration") or {}).get(self.unit_name) or {}).get("opmodel")
        try:
            return None if not block else OpModel.from_json(block)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"device profile {self.profile.path}: calibration.{self.unit_name}.opmodel: {exc}; "
                             f"recalibrate (harbench calibrate {self.name} --measurements FILE) or delete the "
                             "file") from None

    # --------------------------------------------------------------------------------------------- estimate
    def _unit(self):
        return self.profile.unit(self.unit_name, self.power_mode)

    def _estimate_adapt(self, model: nn.Module, workload: AdaptWorkload, window: tuple[int, int]) -> Estimate:
        unit, power = self._unit(), self.profile.power(self.power_mode)
        parts = []
        if workload.optimizer_steps:
            x = torch.zeros(workload.batch_size, *window)
            step = _traced(trace_train_step, model, x, workload.num_classes, workload.trainable, workload.optimizer)
            parts.append(estimate(step, unit, power, calls=workload.optimizer_steps))
        if workload.eval_calls:
            forward = _traced(trace_forward, model, torch.zeros(workload.eval_batch, *window))
            parts.append(estimate(forward, unit, power, calls=workload.eval_calls))
        seconds = sum(p.seconds for p in parts)
        return Estimate(
            seconds=seconds, joules=sum(p.joules for p in parts), joules_net=sum(p.joules_net for p in parts),
            compute_bound_s=sum(p.compute_bound_s for p in parts), memory_bound_s=sum(p.memory_bound_s for p in parts),
            overhead_s=sum(p.overhead_s for p in parts),
            utilisation=sum(p.utilisation * p.seconds for p in parts) / seconds if seconds else 0.0,
        )

    def _estimate_extra(self, est: Estimate) -> dict[str, Any]:
        profile = self.profile
        return {
            "estimated": True, "estimator": ESTIMATOR, "profile": profile.name,
            "calibration_date": profile.calibration_date, "calibration_status": profile.calibration_status,
            "unit": self.unit_name, "power_mode": self.power_mode, "compute_bound_s": est.compute_bound_s,
            "memory_bound_s": est.memory_bound_s, "overhead_s": est.overhead_s, "utilisation": est.utilisation,
        }

    # ----------------------------------------------------------------------------------------------- remote
    def agent_settings(self) -> dict[str, Any]:
        """The parts of a job every kind shares: device, threads, sensors, state, lease."""
        def p(name: str) -> Any:  # a subclass may drop a common parameter: its default then applies
            value = self.params.get(name)
            return COMMON_PARAMETERS[name].default if value is None and name in COMMON_PARAMETERS else value

        energy = {**self.profile.agent_energy_config(), "hz": p("energy_hz"), "min_s": p("energy_min_s"),
                  "idle_s": p("idle_s")}
        if p("meter") != "auto":
            energy["meter"] = p("meter")
        else:
            energy.setdefault("meter", "auto")
        if p("meter_command"):
            energy["command"] = list(p("meter_command"))
        if p("ina3221_root"):
            energy["ina3221_roots"] = p("ina3221_root").split(":")
        energy["proc_stat"] = p("proc_stat")
        return {
            "device": "cuda" if self.unit_name == "gpu" else "cpu",
            "threads": p("threads"),
            "energy": energy,
            "state": {"sysfs_root": p("sysfs_root"), "vcgencmd": p("vcgencmd"), "nvpmodel": p("nvpmodel"),
                      "temp_threshold_c": p("temp_threshold_c"), "settle_timeout_s": p("settle_timeout_s")},
            "lease": {"path": p("lease_path"), "timeout_s": p("lease_timeout_s")},
        }

    def _run_job(self, job: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        return make_transport(self.params).run(JobFiles({**self.agent_settings(), **job}, files))

    def _remote_extra(self, result: dict[str, Any]) -> dict[str, Any]:
        energy = result.get("energy", {})
        return {
            "target_mode": "remote", "host": self.params.host, "node": result.get("node"),
            "python": result.get("python"), "runtime": result.get("runtime"), "lease_wait_s": result["lease"]["wait_s"],
            "state_start": result.get("state_start"), "state_end": result.get("state_end"),
            "settle": result.get("settle"),
            "energy": {k: v for k, v in energy.items() if k not in ("joules_per_unit", "joules_net_per_unit")},
            "energy_modelled": energy.get("kind") == "modelled",
        }

    def _remote_inference(self, model: nn.Module, example: torch.Tensor) -> InferenceCost:
        p = self.params
        if p.runtime == "onnxruntime":
            files, model_file = {"model.onnx": onnx_bytes(model, example)}, "model.onnx"
        else:
            files, model_file = {"model.pt": torchscript_bytes(model, example)}, "model.pt"
        job = {
            "kind": "inference", "runtime": p.runtime, "model": model_file, "input_shape": list(example.shape),
            "timing": {"warmup_s": p.warmup_s, "min_duration_s": p.min_duration_s, "min_count": p.min_count},
        }
        result = self._run_job(job, files)
        energy = result.get("energy", {})
        return InferenceCost(
            latency_s=[float(s) for s in result["latency_s"]], joules_per_window=energy.get("joules_per_unit"),
            joules_net_per_window=energy.get("joules_net_per_unit"), energy_method=energy.get("method", "none"),
            extra=self._remote_extra(result),
        )

    def _remote_adapt(self, model: nn.Module, workload: AdaptWorkload, window: tuple[int, int],
                      common: dict[str, Any]) -> PhaseCost:
        example = torch.zeros(max(workload.batch_size, 2), *window)
        job = {
            "kind": "adapt", "train_model": "train.pt", "input_shape": [1, *window],
            "replay": workload.to_json(),
            "timing": {"min_duration_s": self.params.min_duration_s, "min_replays": 3},
        }
        result = self._run_job(job, {"train.pt": torchscript_bytes(model, example, train=True)})
        durations = sorted(result["replay_s"])
        energy = result.get("energy", {})
        return PhaseCost(
            seconds=durations[len(durations) // 2], joules=energy.get("joules_per_unit"),
            joules_net=energy.get("joules_net_per_unit"), energy_method=energy.get("method", "none"),
            extra={**common, **self._remote_extra(result), "replay_s": durations, "replayed": result.get("replayed")},
        )


_TRACES: dict[tuple, Any] = {}


def _traced(trace, model: nn.Module, x: torch.Tensor, *args: Any):
    """``trace(model, x, *args)``, memoised on the model's structure: a trace counts operators, FLOPs and bytes,
    which depend on the architecture and input shape, not on the weights. Every adapted copy of one backbone, on
    every estimated target, shares one trace, so an extra target costs its arithmetic rather than a re-trace."""
    structure = (repr(model), tuple((n, tuple(t.shape), str(t.dtype)) for n, t in model.state_dict().items()))
    key = (trace.__name__, structure, tuple(x.shape), tuple(tuple(a) if isinstance(a, list) else a for a in args))
    if key not in _TRACES:
        if len(_TRACES) >= 256:
            _TRACES.clear()
        _TRACES[key] = trace(model, x, *args)
    return _TRACES[key]
