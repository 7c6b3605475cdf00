"""Device profiles: YAML data files describing a device for the estimator and the agent, every figure sourced.

A figure is written either as ``{value: 48.0e9, source: "..."}`` or inside a mapping that has its own ``source``
(calibration blocks, written by ``harbench calibrate``). Plugins ship profiles in their package; users add or
override one by dropping ``<name>.yaml`` into ``$HARBENCH_PROFILE_DIR`` (default ``~/.config/harbench/profiles``),
which is searched first, so a calibrated profile replaces the shipped one without touching code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

PACKAGE_PROFILES = Path(__file__).parent / "profiles"


def user_profile_dir() -> Path:
    return Path(os.environ.get("HARBENCH_PROFILE_DIR") or Path.home() / ".config" / "harbench" / "profiles")


def figure(node: Any) -> Any:
    """The value of a figure written either bare or as ``{value, source}``."""
    if isinstance(node, Mapping) and "value" in node:
        return node["value"]
    return node


def _figures(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: figure(v) for k, v in (mapping or {}).items() if k != "source"}


@dataclass(frozen=True)
class Calibration:
    """The estimator's fitted terms for one compute unit: fixed per-call and per-operator overheads, and the
    fractions of peak compute (``eta_c``) and of memory bandwidth (``eta_m``) that operators reach."""

    t_call_s: float
    t_op_s: float
    eta_c: float
    eta_m: float
    t_op_optimizer_s: float | None = None  # per optimizer-update operator (issued from Python); None = t_op_s


@dataclass(frozen=True)
class ComputeUnit:
    """A CPU cluster or GPU at a given clock configuration, with its calibration."""

    name: str
    peak_flops: float
    bandwidth_bytes_s: float
    cores: int
    threads: int
    calibration: Calibration


@dataclass(frozen=True)
class PowerModel:
    """Board power: ``idle_w`` at rest, ``load_w`` with the unit fully busy (linear in utilisation between)."""

    idle_w: float
    load_w: float


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    processor: str
    memory_gb: float
    raw: Mapping[str, Any] = field(repr=False)
    path: str = ""

    # -------------------------------------------------------------------------------------------- lookups
    @property
    def usable_memory_mb(self) -> float | None:
        """Memory an adapt phase may use (MB): ``usable_memory_mb`` when the profile states it (with its source),
        else all of ``memory_gb``; None when the profile gives no memory figure (0)."""
        if "usable_memory_mb" in self.raw:
            return float(figure(self.raw["usable_memory_mb"]))
        return self.memory_gb * 1024.0 if self.memory_gb > 0 else None

    @property
    def calibration_date(self) -> str | None:
        date = (self.raw.get("calibration") or {}).get("date")
        return None if date is None else str(date)

    @property
    def calibration_status(self) -> str:
        return str((self.raw.get("calibration") or {}).get("status", "uncalibrated"))

    @property
    def modes(self) -> dict[str, dict[str, Any]]:
        return {name: _figures(spec) for name, spec in (self.raw.get("modes") or {}).items()}

    @property
    def default_mode(self) -> str | None:
        return self.raw.get("default_mode")

    def units(self) -> list[str]:
        return list((self.raw.get("units") or {}).keys())

    def unit(self, name: str = "cpu", mode: str | None = None) -> ComputeUnit:
        """The compute unit ``name`` with its peak, bandwidth and overheads scaled to power mode ``mode``.

        Mode caps (online cores, CPU/GPU/memory clock limits) scale peak compute by cores x clock, bandwidth by the
        memory clock, and the CPU-bound dispatch overheads by the CPU clock, relative to the profile's reference
        clocks (the clocks the figures were quoted or calibrated at).
        """
        units = self.raw.get("units") or {}
        if name not in units:
            raise KeyError(f"profile {self.name!r} has no compute unit {name!r}; it has {', '.join(units) or 'none'}")
        spec = _figures(units[name])
        cal_block = (self.raw.get("calibration") or {}).get(name)
        if not cal_block:
            raise KeyError(f"profile {self.name!r} has no calibration for unit {name!r}")
        terms: dict[str, Any] = {k: None if v is None else float(v) for k, v in _figures(cal_block).items()
                                 if k in Calibration.__annotations__}  # t_op_optimizer_s null: no optimizer fitted
        cal = Calibration(**terms)
        peak, bandwidth = float(spec["peak_flops"]), float(spec["bandwidth_bytes_s"])
        cores = int(spec.get("cores", 1))
        threads = int(spec.get("threads", cores))
        mode = mode or self.default_mode
        if mode is not None:
            caps = self.modes.get(mode)
            if caps is None:
                raise KeyError(f"profile {self.name!r} has no power mode {mode!r}; modes: {', '.join(self.modes)}")
            ref = _figures(self.raw.get("reference_clocks"))
            cpu_ratio = float(caps["cpu_max_hz"]) / float(ref["cpu_max_hz"])
            mem_ratio = float(caps["emc_max_hz"]) / float(ref["emc_max_hz"])
            if name == "cpu":
                online = int(caps.get("cpu_cores", cores))
                peak *= cpu_ratio * online / cores
                cores, threads = online, min(threads, online)
            else:
                peak *= float(caps[f"{name}_max_hz"]) / float(ref[f"{name}_max_hz"])
            bandwidth *= mem_ratio
            cal = Calibration(cal.t_call_s / cpu_ratio, cal.t_op_s / cpu_ratio, cal.eta_c, cal.eta_m,
                              None if cal.t_op_optimizer_s is None else cal.t_op_optimizer_s / cpu_ratio)
        return ComputeUnit(name, peak, bandwidth, cores, threads, cal)

    def power(self, mode: str | None = None) -> PowerModel:
        mode = mode or self.default_mode
        if mode is not None and mode in self.modes and "idle_w" in self.modes[mode]:
            caps = self.modes[mode]
            return PowerModel(float(caps["idle_w"]), float(caps["load_w"]))
        power = _figures(self.raw.get("power"))
        if "idle_w" not in power or "load_w" not in power:
            raise ValueError(f"profile {self.name!r} ({self.path}) has no power.idle_w / power.load_w figures; "
                             "add them (with their source) to estimate energy")
        return PowerModel(float(power["idle_w"]), float(power["load_w"]))

    def agent_energy_config(self) -> dict[str, Any]:
        """What the agent needs to meter this device (meter choice, rails, a utilisation model as fallback)."""
        energy = dict(self.raw.get("energy") or {})
        model = energy.get("utilisation_model")
        if model:
            energy["utilisation_model"] = {**_figures(model), "source": model.get("source", "")}
        return energy


def load_profile(name: str, search: list[Path] | None = None) -> DeviceProfile:
    """Find ``<name>.yaml`` in the user profile folder, then in ``search`` (the plugins' shipped folders)."""
    folders = [user_profile_dir(), *(search or []), PACKAGE_PROFILES]
    for folder in folders:
        path = Path(folder) / f"{name}.yaml"
        if path.is_file():
            return profile_from_file(path)
    raise FileNotFoundError(f"no device profile {name!r} in {', '.join(str(f) for f in folders)}")


def profile_from_file(path: Path) -> DeviceProfile:
    raw = yaml.safe_load(Path(path).read_text())
    missing = [k for k in ("name", "processor", "memory_gb", "units", "calibration") if k not in raw]
    if missing:
        raise ValueError(f"device profile {path} lacks {', '.join(missing)}")
    return DeviceProfile(
        name=raw["name"], description=raw.get("description", ""), processor=str(figure(raw["processor"])),
        memory_gb=float(figure(raw["memory_gb"])), raw=raw, path=str(path),
    )


def unsourced_figures(node: Any, path: str = "", sourced: bool = False) -> list[str]:
    """Dotted paths of numbers that carry no source (a profile-quality check, used by the tests)."""
    if isinstance(node, Mapping):
        here = sourced or "source" in node
        out: list[str] = []
        for key, value in node.items():
            out += unsourced_figures(value, f"{path}.{key}" if path else str(key), here)
        return out
    if isinstance(node, str):  # YAML 1.1 reads 2.0e9 (no exponent sign) as a string: still a figure
        try:
            float(node)
        except ValueError:
            return []
        return [] if sourced else [path]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return [] if sourced else [path]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in unsourced_figures(v, f"{path}[{i}]", sourced)]
    return []
