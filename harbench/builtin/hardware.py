"""The host CPU, measured: wall-clock latency and codecarbon energy in this process."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from .. import AdaptResult, Hardware, HardwareInfo, InferenceCost, Param, PhaseCost, hookimpl
from ..machine import memory_gb, processor
from ..measure import EnergyMeter, latency_loop
from ..measure.memory import LiveBytes


def _energy_method() -> str:
    """What :class:`EnergyMeter` will report, without starting codecarbon's tracker: RAPL where codecarbon finds
    readable RAPL files (its first choice on Linux), its TDP model elsewhere. Where none of the folders codecarbon
    scans for RAPL has an entry, codecarbon is not even imported."""
    import importlib.util

    if importlib.util.find_spec("codecarbon") is None:
        return "unavailable (ModuleNotFoundError)"
    bases = ("/sys/class/powercap/intel-rapl/subsystem", "/sys/class/powercap/intel-rapl", "/sys/class/powercap",
             "/sys/devices/virtual/powercap")
    if not any(os.path.isdir(b) and os.listdir(b) for b in bases):
        return "codecarbon-estimate"
    try:
        from codecarbon.core.cpu import is_rapl_available
    except Exception as exc:  # the meter records the same when it cannot start
        return f"unavailable ({type(exc).__name__})"
    return "rapl" if platform.system() == "Linux" and is_rapl_available() else "codecarbon-estimate"


class Cpu(Hardware):
    name = "cpu"
    measures_host = True
    description = "this host's CPU, measured (wall-clock latency; energy by codecarbon: RAPL or its estimate)"
    parameters = {
        "threads": Param(0, "torch threads while measuring (0 = torch's default)", ge=0),
        "warmup": Param(10, "untimed warm-up inferences", ge=0),
        "min_duration_s": Param(1.0, "minimum timed duration of the latency loop (MLPerf single-stream)", ge=0.0),
        "min_count": Param(100, "minimum number of timed inferences", ge=1),
        "energy_min_s": Param(5.0, "minimum duration of the inference run measured for energy", ge=0.0),
        "energy": Param(True, "measure energy with codecarbon"),
        "radio_nj_per_bit": Param(
            100.0, "modelled device<->cloud transfer energy (not measured): an order-of-magnitude Wi-Fi uplink "
            "figure; set it for your radio", ge=0.0),
    }

    def describe(self) -> HardwareInfo:
        """Cheap: it never starts the meter (the plan, job keys and --dry-run describe targets too). The energy
        method is the one the meter will use (codecarbon's own RAPL probe); idle power is included once this
        process's meter has started, i.e. once something was measured."""
        meter = EnergyMeter._instance if self.params.energy else None
        method = meter.method if meter is not None else _energy_method() if self.params.energy else "none"
        return HardwareInfo(
            name=self.name, processor=processor(), memory_gb=round(memory_gb(), 1), mode="measured",
            power={"idle_w": meter.idle_w} if meter is not None and meter.idle_w is not None else {},
            extra={"cores": os.cpu_count(), "energy_method": method, "torch_threads": torch.get_num_threads()},
        )

    def _meter(self) -> EnergyMeter:
        return EnergyMeter.shared() if self.params.energy else EnergyMeter(enabled=False)

    def _threads(self):
        return _Threads(self.params.threads)

    def run_adapt(self, adapt):
        meter = self._meter()
        with self._threads(), meter.region() as energy:
            result: AdaptResult = adapt()
        e = energy[0]
        return result, PhaseCost(e.seconds, e.joules, e.joules_net, e.method)

    def run_inference(self, model, example):
        p = self.params
        meter = self._meter()
        with self._threads():
            run = latency_loop(model, example, warmup=p.warmup, min_duration_s=max(p.min_duration_s, p.energy_min_s),
                               min_count=p.min_count, meter=meter)
        n = len(run.samples_s)
        e = run.energy
        peak_mb, memory = inference_memory(model, example[:1])  # after the timed loop: never inside it
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # how busy the machine was meanwhile
        return InferenceCost(
            latency_s=run.samples_s,
            joules_per_window=None if e.joules is None else e.joules / n,
            joules_net_per_window=None if e.joules_net is None else e.joules_net / n,
            energy_method=e.method,
            extra={"count": n, "seconds": e.seconds, "memory": memory, "load_1min": load},
            peak_mb=peak_mb,
        )

    def radio_joules_per_byte(self):
        return self.params.radio_nj_per_bit * 8e-9


def inference_memory(model: torch.nn.Module, example: torch.Tensor) -> tuple[float, dict[str, Any]]:
    """Peak memory (MB) of one batch-1 inference: weights and buffers + the input + the peak live activations of
    one forward (:class:`LiveBytes`). What a device must hold for the model itself; the runtime (libtorch, the
    interpreter) and the allocator's slack are not included."""
    held = [*model.parameters(), *model.buffers()]
    weights = sum(t.numel() * t.element_size() for t in held)
    tracker = LiveBytes([*held, example])
    with torch.no_grad(), tracker:
        model(example)
    total = weights + example.numel() * example.element_size() + tracker.peak
    return total / 2**20, {"method": "traced: weights + input + peak live operator outputs of one forward",
                           "weights_mb": weights / 2**20, "activations_mb": tracker.peak / 2**20}


class _Threads:
    """Temporarily set torch's intra-op thread count (0 leaves it alone)."""

    def __init__(self, n: int):
        self.n = n
        self.saved = torch.get_num_threads()

    def __enter__(self):
        if self.n:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.saved)


@hookimpl
def harbench_register_hardware(register):
    register(Cpu)


