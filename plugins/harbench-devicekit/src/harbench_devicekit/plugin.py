"""harbench hooks: the generic profile-driven ``device`` target and the ``harbench calibrate`` command."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import click
import yaml

from harbench import Param, hookimpl

from .calibrate import (
    calibrate_host,
    cpu_profile_document,
    device_profile_document,
    fit,
    measure,
    reference_points,
    report_lines,
    today,
    write_profile,
)
from .cli_check import calibrate_from_measurements, estimator_check_command
from .nasbench201 import DEAD_CODE_RULES, DEFAULT_RULE
from .profiles import PACKAGE_PROFILES, DeviceProfile, load_profile
from .target import COMMON_PARAMETERS, DeviceTarget
from .transport import make_transport


class ProfiledDevice(DeviceTarget):
    """Any device described by a profile file: how a user adds a board without writing code."""

    name = "device"
    description = "a device described by a profile YAML (estimate with the roofline, or measure over SSH)"
    profile_dirs = [PACKAGE_PROFILES]
    parameters = {
        **COMMON_PARAMETERS,
        "profile": Param("cpu", "profile name: <name>.yaml in $HARBENCH_PROFILE_DIR or a plugin's profiles"),
        "unit": Param("cpu", "compute unit of the profile to run on", choices=("cpu", "gpu")),
        "power_mode": Param("", "power mode of the profile ('' = its default)"),
    }

    @cached_property
    def profile(self) -> DeviceProfile:
        """Any installed board plugin's profiles are usable by name, after the user's folder."""
        folders = [d for cls in DeviceTarget.registry.values() for d in cls.profile_dirs]
        return load_profile(self.params.profile, list(dict.fromkeys(folders)))


def _parse_settings(settings: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        params[key.strip()] = yaml.safe_load(value)
    return params


def calibration_device(target: str, settings: tuple[str, ...], threads: int) -> DeviceTarget:
    """The device target ``TARGET`` in remote mode, for calibration: any :class:`DeviceTarget` subclass (this
    kit's, a board plugin's or a third party's), given only the parameters it declares (``threads`` and ``mode``
    where it has them) plus ``--set``. Problems are one-line :class:`click.ClickException`s."""
    cls = DeviceTarget.registry.get(target)
    if cls is None:
        raise click.BadParameter(f"unknown device target {target!r}; known: cpu, "
                                 f"{', '.join(sorted(DeviceTarget.registry))}", param_hint="TARGET")
    declared = getattr(cls, "parameters", {}) or {}
    params = {k: v for k, v in (("threads", threads), ("mode", "remote")) if k in declared}
    params.update(_parse_settings(settings))
    if "mode" in declared:
        params["mode"] = "remote"
    try:
        device = cls(**params)
    except Exception as exc:  # a bad --set value, an unknown parameter, a subclass that cannot be built
        raise click.ClickException(f"calibrate {target}: {exc}") from None
    if not device.params.get("host"):
        raise click.ClickException(f"calibrate {target}: needs the device to measure: --set host=USER@HOST "
                                   "(an ssh destination) or --set host=local (this machine)")
    try:
        device.profile  # noqa: B018 - load it now: a missing profile is a one-line error, not a traceback
    except (OSError, ValueError, KeyError) as exc:
        raise click.ClickException(f"calibrate {target}: its device profile cannot be loaded: {exc}") from None
    return device


@click.command("calibrate")
@click.argument("target")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="target parameter, e.g. --set host=pi@rpi5 --set power_mode=MAXN (devices need host=)")
@click.option("--quick", is_flag=True, help="two reference models instead of five (a fast check)")
@click.option("--min-duration", default=0.3, show_default=True, help="seconds of timing per workload")
@click.option("--threads", default=1, show_default=True,
              help="intra-op threads while timing (1 is robust on a shared machine; match the runs you estimate)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the profile (default: $HARBENCH_PROFILE_DIR/<profile>.yaml)")
@click.option("--no-write", is_flag=True, help="print the fit and its error without writing a profile")
@click.option("--measurements", type=click.Path(dir_okay=False, path_type=Path),
              help="k-shot calibration from a CSV of measured architectures (arch_index,arch,latency_ms) instead "
                   "of timing the reference models on the device")
@click.option("--shots", default=10, show_default=True, type=int, help="with --measurements: rows to fit on")
@click.option("--seed", default=0, show_default=True, type=int, help="with --measurements: which rows")
@click.option("--min-ms", default=1.0, show_default=True, type=float, help="with --measurements: skip rows below")
@click.option("--dead-code", default=DEFAULT_RULE, show_default=True, type=click.Choice(DEAD_CODE_RULES),
              help="with --measurements: which dead cell edges the builder drops")
def calibrate_command(target: str, settings: tuple[str, ...], quick: bool, min_duration: float, threads: int,
                      output: Path | None, no_write: bool, measurements: Path | None, shots: int, seed: int,
                      min_ms: float, dead_code: str) -> None:
    """Fit the estimator of TARGET (``cpu`` or any device target) to measured runs and print its MAPE."""
    date = today()
    if measurements is not None:
        calibrate_from_measurements(target, measurements, shots, seed, min_ms, dead_code, output, no_write, date)
        return
    if target == "cpu":
        points, fitted, result = calibrate_host(quick, min_duration, threads)
        doc = cpu_profile_document(result, fitted, date)
    else:
        device = calibration_device(target, settings, threads)
        profile = device.profile
        try:
            unit = profile.unit(device.unit_name, device.power_mode)
            points, files, items = reference_points(quick)
            agent = {**device.agent_settings(), "energy": {"meter": "none"}}
            result = measure(points, files, items, make_transport(device.params).run, agent, min_duration)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # ssh, the agent, the profile's units
            raise click.ClickException(f"calibrate {target}: {exc}") from None
        fitted = fit(points, unit.peak_flops, unit.bandwidth_bytes_s, unit.cores, unit.threads, unit.name)
        doc = device_profile_document(profile, fitted, date, unit.name, device.power_mode, result)
    for line in report_lines(points, fitted):
        click.echo(line)
    if not no_write:
        click.echo(f"profile written to {write_profile(doc, output)}")


@hookimpl
def harbench_register_hardware(register):
    register(ProfiledDevice)


@hookimpl
def harbench_register_commands(cli):
    cli.add_command(calibrate_command)
    cli.add_command(estimator_check_command)
