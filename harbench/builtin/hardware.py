"""The host CPU, measured: wall-clock latency and codecarbon energy in this process."""

from __future__ import annotations

import os
import platform

import torch

from .. import AdaptResult, Hardware, HardwareInfo, InferenceCost, Param, PhaseCost, hookimpl
from ..measure import EnergyMeter, latency_loop



def _processor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


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
        meter = self._meter()
        return HardwareInfo(
            name=self.name, processor=_processor(), memory_gb=round(_memory_gb(), 1), mode="measured",
            power={"idle_w": meter.idle_w} if meter.idle_w is not None else {},
            extra={"cores": os.cpu_count(), "energy_method": meter.method, "torch_threads": torch.get_num_threads()},
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
        return InferenceCost(
            latency_s=run.samples_s,
            joules_per_window=None if e.joules is None else e.joules / n,
            joules_net_per_window=None if e.joules_net is None else e.joules_net / n,
            energy_method=e.method,
            extra={"count": n, "seconds": e.seconds},
        )

    def radio_joules_per_byte(self):
        return self.params.radio_nj_per_bit * 8e-9


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


