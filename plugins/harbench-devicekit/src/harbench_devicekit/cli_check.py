"""``harbench estimator-check TARGET`` and ``harbench calibrate TARGET --measurements FILE``: the k-shot path from
measured architectures to a device profile, and the held-out check of it."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import yaml

from . import opmodel
from .check import feature_matrix, run_check, shipped_unit
from .measurements import MeasurementError, read_measurements, require_rows
from .nasbench201 import DEAD_CODE_RULES, DEFAULT_RULE
from .profiles import user_profile_dir


def _target_profile_dirs(target: str) -> tuple[list[Path], str]:
    from .target import DeviceTarget

    cls = DeviceTarget.registry.get(target)
    if cls is None or not cls.profile_name:
        known = ", ".join(sorted(n for n, c in DeviceTarget.registry.items() if c.profile_name)) or "none"
        raise click.BadParameter(f"unknown device target {target!r}; known: {known}", param_hint="TARGET")
    return list(cls.profile_dirs), cls.profile_name


def _shots(value: str) -> list[int]:
    try:
        shots = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a whole number or a comma list of them", param_hint="--shots") from None
    if not shots or min(shots) < 1:
        raise click.BadParameter(f"{value!r}: shots must be at least 1", param_hint="--shots")
    return shots


@click.command("estimator-check")
@click.argument("target")
@click.option("--measurements", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with columns arch_index,arch,latency_ms (NAS-Bench-201 architecture strings)")
@click.option("--shots", default="10", show_default=True, help="measured rows to calibrate on (a comma list for a table)")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1), help="seeded draws of the shots")
@click.option("--min-ms", default=1.0, show_default=True, type=float, help="score only rows at or above this latency")
@click.option("--seed", default=0, show_default=True, type=int, help="first seed (repeat r uses seed + r)")
@click.option("--dead-code", default=DEFAULT_RULE, show_default=True, type=click.Choice(DEAD_CODE_RULES),
              help="which dead cell edges the builder drops (see docs/devices.md)")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(("text", "json", "markdown")))
def estimator_check_command(target: str, measurements: Path, shots: str, repeats: int, min_ms: float, seed: int,
                            dead_code: str, fmt: str) -> None:
    """Calibrate TARGET's estimator on k measured rows and score it on the others (held out), repeated."""
    shot_list = _shots(shots)
    dirs, name = _target_profile_dirs(target)
    try:
        data = read_measurements(measurements)
        unit, profile = shipped_unit(dirs, name)
        result = run_check(target, data, unit, profile, shot_list, repeats, min_ms, seed, dead_code)
    except (MeasurementError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    if fmt == "json":
        click.echo(json.dumps(result.to_json(shot_list[0]), indent=2))
    elif fmt == "markdown":
        click.echo(result.markdown())
    else:
        for k in shot_list:
            click.echo(result.text(k))


def calibrate_from_measurements(target: str, measurements: Path, shots: int, seed: int, min_ms: float,
                                dead_code: str, output: Path | None, no_write: bool, date: str) -> None:
    """Fit ``opmodel-v1`` for TARGET on ``shots`` random rows (seeded) and write the profile it reads."""
    dirs, name = _target_profile_dirs(target)
    try:
        data = read_measurements(measurements)
        eligible = np.flatnonzero(np.array([m.latency_ms for m in data.rows]) >= min_ms)
        require_rows(data, shots, usable=len(eligible))
        unit, shipped = shipped_unit(dirs, name)
    except (MeasurementError, FileNotFoundError, KeyError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None
    chosen = np.random.default_rng(seed).choice(eligible, size=shots, replace=False)
    feats, _ = feature_matrix(data, unit, dead_code)
    latency = np.array([m.latency_ms for m in data.rows]) / 1e3
    source = (f"{shots} rows (seed {seed}, latency >= {min_ms:g} ms) of {data.path.resolve()} "
              f"(sha256 {data.sha256}), dead-code rule {dead_code}")
    model = opmodel.fit(feats[chosen], latency[chosen], source=source, unit=unit)
    held = np.setdiff1d(eligible, chosen)
    predicted = model.predict(feats[held])
    error = np.abs(predicted - latency[held]) / latency[held]
    click.echo(f"{target}: {opmodel.ESTIMATOR} fitted on {shots} of {len(data.rows)} rows of {data.path.name}: "
               + ", ".join(f"{c} = {v:.4g}" for c, v in zip(model.columns, model.coefficients)))
    if model.ratio_low is not None:
        click.echo(f"interval (leave-one-out measured/estimated over the shots): x{model.ratio_low:.3f} .. x{model.ratio_high:.3f}")
    else:
        click.echo(f"no interval: fewer than {opmodel.MIN_INTERVAL_SHOTS} shots")
    if len(held):
        click.echo(f"held-out rows ({len(held)}): MAPE {100 * error.mean():.1f} %, within ±10 % "
                   f"{100 * np.mean(error <= 0.1):.1f} %")
    doc = yaml.safe_load(Path(shipped).read_text())
    cal = doc.setdefault("calibration", {})
    # the roofline (adapt phase) keeps its own status: these measurements calibrate inference latency only
    cal["roofline_status"] = cal.get("roofline_status") or cal.get("status", "uncalibrated")
    cal["date"] = date
    cal["status"] = "calibrated"
    cal["measured_by"] = source
    cal.setdefault(unit.name, {})["opmodel"] = model.to_json()
    if no_write:
        return
    path = output or user_profile_dir() / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)
    click.echo(f"profile written to {path} (the {target} target reads it from $HARBENCH_PROFILE_DIR, default "
               f"~/.config/harbench/profiles)")
