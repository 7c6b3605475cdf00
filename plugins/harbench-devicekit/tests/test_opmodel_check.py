"""The k-shot estimator (opmodel-v1), the NAS-Bench-201 builder, the measurements reader, ``harbench
estimator-check`` and ``harbench calibrate TARGET --measurements`` on small fabricated CSVs.

The fabricated latencies are planted: a known linear function of each network's traced-op features, so a correct
pipeline recovers them almost exactly and a broken one (wrong features, wrong rows held out, a fit that ignores a
column) does not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from harbench_devicekit import opmodel
from harbench_devicekit.check import shipped_unit
from harbench_devicekit.cli_check import estimator_check_command
from harbench_devicekit.nasbench201 import OPS, Genotype, build, example_input, network_trace
from harbench_devicekit.plugin import calibrate_command
from harbench_devicekit.trace import trace_forward
from harbench_raspberrypi.plugin import PROFILES

import harbench

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
PLANTED = {"conv_spatial": 6.0, "conv_pointwise": 12.0, "pool_memory": 5.0, "other_memory": 2.0, "ops": 40e-6}


def arch_of(ops: tuple[str, ...]) -> str:
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


COMMANDS = {"estimator-check": estimator_check_command, "calibrate": calibrate_command}


def rpi4_unit():
    return shipped_unit([PROFILES], "rpi4")[0]


def planted_csv(path, n: int = 40, seed: int = 0):
    """``n`` random architectures with latencies planted from their features (PLANTED coefficients)."""
    rng = np.random.default_rng(seed)
    unit = rpi4_unit()
    lines = ["arch_index,arch,latency_ms"]
    while len(lines) <= n:
        ops = tuple(OPS[i] for i in rng.integers(1, len(OPS), 6))  # no `none`: every network is whole
        f = opmodel.features(network_trace(arch_of(ops)), unit)
        seconds = sum(PLANTED[c] * f[opmodel.FEATURES.index(c)] for c in PLANTED)
        lines.append(f"{len(lines)},{arch_of(ops)},{float(seconds) * 1e3!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------------ builder and traces
def test_architecture_strings_parse_and_bad_ones_say_what_is_wrong():
    assert Genotype.parse(ARCH).ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect",
                                        "nor_conv_3x3", "skip_connect")
    for bad, words in [("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv_5x5'"),
                       ("|none~0|+|none~0|none~1|", "3 nodes"),
                       ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "none~1")]:
        with pytest.raises(ValueError, match=words):
            Genotype.parse(bad)


def test_dead_edges_are_the_ones_that_cannot_reach_the_output():
    # node 1 and node 2 reach node 3 only through `none`: their convolutions are dead code
    g = Genotype.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|")
    assert g.live_edges("reachable") == (False, False, False, True, False, False)
    # node 1 is all zeros: the identity of it folds away, a convolution of it is still computed (reachable)
    g = Genotype.parse("|none~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|")
    assert g.live_edges("reachable") == (False, True, False, True, True, True)
    assert g.live_edges("constant-zero") == (False, True, False, True, False, True)
    # node 2 sums a zero (the `none` from the input) with node 1: dead under `reachable`, computed under
    # `zero-sums`, which is how the measured board behaves (its convolution is paid for)
    g = Genotype.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|")
    assert g.live_edges("reachable") == (False, False, False, True, False, False)
    assert g.live_edges("zero-sums") == (True, False, True, True, False, False)
    cut = Genotype.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|")
    assert not cut.passes_input() and len(network_trace(cut)) == 0


@pytest.mark.parametrize("arch", [ARCH, "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|",
                                  "|none~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|",
                                  "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"])
def test_the_composed_trace_is_the_trace_of_the_built_network(arch):
    """The check composes cached block traces for speed; they must describe the network ``build`` returns."""
    whole = trace_forward(build(arch), example_input())
    composed = network_trace(arch)
    assert [(o.op, o.flops) for o in whole.ops] == [(o.op, o.flops) for o in composed.ops]
    assert composed.bytes == pytest.approx(whole.bytes, rel=0.05)  # a sum of a tensor with itself counts it once
    assert build(arch)(example_input()).shape == (1, 10)


# ---------------------------------------------------------------------------------------------- the fit
def test_the_fit_recovers_planted_coefficients_and_brackets_new_points():
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(60, len(opmodel.FEATURES)))) * np.array([1e-2, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 100, 10])
    true = np.array([0, 8.0, 12.0, 0, 5.0, 3.0, 40e-6, 0])
    y = x @ true * rng.uniform(0.97, 1.03, len(x))  # ±3 % noise
    model = opmodel.fit(x[:20], y[:20])
    assert model.columns == opmodel.columns_for(20)
    coef = dict(zip(model.columns, model.coefficients))
    assert coef["conv_spatial"] == pytest.approx(8.0, rel=0.1) and coef["other_memory"] == pytest.approx(3.0, rel=0.1)
    assert coef["conv_pointwise"] == pytest.approx(12.0, rel=0.1)
    ratio = y[20:] / model.predict(x[20:])
    assert model.ratio_low < 1 < model.ratio_high and np.mean((ratio >= model.ratio_low) & (ratio <= model.ratio_high)) > 0.7
    assert opmodel.fit(x[:2], y[:2]).ratio_low is None  # too few shots for residuals: no interval


# -------------------------------------------------------------------------------------------- commands
def test_estimator_check_recovers_a_planted_board(tmp_path):
    csv = planted_csv(tmp_path / "board.csv")
    res = CliRunner().invoke(estimator_check_command, ["rpi4", "--measurements", str(csv), "--shots", "10",
                                    "--repeats", "3", "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert {"spearman", "mape", "within_10", "within_20"} <= set(out)
    assert out["spearman"]["min"] > 0.99 and out["mape"]["max"] < 2.0 and out["within_10"]["min"] == 100.0
    assert out["excluded"] == 0 and out["evaluated"] == 30
    # FLOPs alone cannot see the memory-bound part that was planted
    assert out["references"]["flops"]["mape"]["median"] > 3 * out["mape"]["median"]
    table = CliRunner().invoke(estimator_check_command, ["rpi4", "--measurements", str(csv), "--shots", "1,5",
                                      "--repeats", "2", "--format", "markdown"])
    assert table.exit_code == 0 and "| opmodel-v1 | 5 |" in table.output and "| flops | 1 |" in table.output


@pytest.mark.parametrize("content, words", [
    ("arch_index,arch\n1,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n", "row 1: missing column latency_ms"),
    ("arch_index,arch,latency_ms\n1,|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|,3.0\n",
     "row 2: field arch: unknown operation 'bogus'"),
    (f"arch_index,arch,latency_ms\n1,{ARCH},3.0\n2,{ARCH},-1\n", "row 3: field latency_ms: -1.0 is not a positive"),
    (f"arch_index,arch,latency_ms\n1,{ARCH},0\n", "row 2: field latency_ms: 0.0 is not a positive"),
    (f"arch_index,arch,latency_ms\nx,{ARCH},3\n", "row 2: field arch_index: 'x' is not an integer"),
    (f"arch_index,arch,latency_ms\n1,{ARCH},3\n2,{ARCH},4\n", "2 usable rows (at or above --min-ms), fewer than --shots 10"),
])
@pytest.mark.parametrize("command", ["estimator-check", "calibrate"])
def test_bad_measurements_are_one_line_naming_file_row_and_field(tmp_path, content, words, command):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    res = CliRunner().invoke(COMMANDS[command], ["rpi4", "--measurements", str(path), "--shots", "10"])
    assert res.exit_code != 0 and res.exception is None or isinstance(res.exception, SystemExit), res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and words in lines[0], res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "user-profiles" / "rpi4.yaml").exists()  # nothing half-written


def test_calibrate_from_measurements_writes_the_profile_the_target_reads(tmp_path):
    model = build(ARCH)
    before = harbench.estimate("rpi4", model, example_input())
    assert before.status == "uncalibrated" and before.latency_interval_s is None
    csv = planted_csv(tmp_path / "board.csv")
    res = CliRunner().invoke(calibrate_command, ["rpi4", "--measurements", str(csv), "--shots", "10"])
    assert res.exit_code == 0, res.output
    written = tmp_path / "user-profiles" / "rpi4.yaml"  # $HARBENCH_PROFILE_DIR (the conftest points it here)
    assert f"profile written to {written}" in res.output
    after = harbench.estimate("rpi4", model, example_input())
    assert after.status == "calibrated" and after.estimator == "opmodel-v1"
    assert "board.csv" in after.calibrated_from and "sha256" in after.calibrated_from
    f = opmodel.features(network_trace(ARCH), rpi4_unit())
    planted_s = sum(PLANTED[c] * f[opmodel.FEATURES.index(c)] for c in PLANTED)
    assert after.latency_s == pytest.approx(planted_s, rel=0.02)
    low, high = after.latency_interval_s
    assert low <= after.latency_s <= high and after.joules_interval[0] <= after.joules <= after.joules_interval[1]
    hw = harbench.estimate("rpi4", torch.nn.Sequential(torch.nn.Conv1d(6, 8, 5), torch.nn.ReLU(),
                                                       torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(),
                                                       torch.nn.Linear(8, 4)), torch.zeros(1, 6, 128))
    assert hw.latency_s > 0 and hw.latency_interval_s is not None  # any traced module, 1-D included
    from harbench_raspberrypi.plugin import RaspberryPi4

    extra = RaspberryPi4().describe().extra  # what the decision view and the reports read
    assert extra["cost_intervals"]["latency_ms_p50"] == [pytest.approx(low / after.latency_s),
                                                          pytest.approx(high / after.latency_s)]
    assert extra["calibrated_from"] == after.calibrated_from and extra["calibration_status"] == "calibrated"
    written.write_text(written.read_text().replace("conv_spatial", "conv_hexagonal"))
    with pytest.raises(ValueError, match=f"{written}: calibration.cpu.opmodel: unknown feature.*conv_hexagonal"):
        harbench.estimate("rpi4", model, example_input())


def test_convolutions_are_traced_with_their_efficiency_class():
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 1), torch.nn.Conv2d(8, 8, 3, padding=1),
                                torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.Conv1d(8, 8, 1),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 2))
    kinds = [o.kind for o in trace_forward(model[:3], torch.zeros(1, 8, 4, 4)).ops if o.op == "convolution"]
    assert kinds == ["pointwise", "spatial", "grouped"]
    f = opmodel.features(trace_forward(model[:3], torch.zeros(1, 8, 4, 4)), rpi4_unit())
    assert all(f[opmodel.FEATURES.index(c)] > 0 for c in ("conv_pointwise", "conv_spatial", "conv_grouped"))


def test_a_roofline_calibrated_profile_puts_its_held_out_residuals_on_every_estimate(tmp_path):
    """``harbench calibrate`` against timed reference workloads stores the leave-one-model-out measured/estimated
    range; a profile with it gives inference and adapt estimates an interval, one without it (shipped,
    ``uncalibrated``) gives none."""
    import yaml
    from harbench_devicekit.calibrate import CalibrationPoint, calibration_block, fit
    from harbench_devicekit.roofline import roofline_seconds
    from harbench_raspberrypi.plugin import RaspberryPi4

    unit = rpi4_unit()
    points = []
    for i, arch in enumerate([ARCH, arch_of(("nor_conv_1x1",) * 6), arch_of(("avg_pool_3x3",) * 6)]):
        trace = network_trace(arch)
        p = CalibrationPoint(f"net{i}", f"net{i}", "forward", 1, trace)
        p.measured_s = sum(roofline_seconds(trace, unit)) * (1.0 + 0.1 * i)  # planted misfit: 0 %, +10 %, +20 %
        points.append(p)
    fitted = fit(points, unit.peak_flops, unit.bandwidth_bytes_s, unit.cores, unit.threads)
    assert fitted.ratio_low is not None and 0 < fitted.ratio_low < fitted.ratio_high  # held-out misfit, both ways or not
    doc = yaml.safe_load(open(next(iter(RaspberryPi4.profile_dirs)) / "rpi4.yaml"))
    doc["calibration"].update(calibration_block(fitted, "2026-12-06", "cpu", "three planted workloads"))
    (tmp_path / "user-profiles").mkdir()
    (tmp_path / "user-profiles" / "rpi4.yaml").write_text(yaml.safe_dump(doc))
    est = harbench.estimate("rpi4", build(ARCH), example_input())
    assert est.status == "calibrated" and est.estimator == "roofline-v1"
    low, high = est.latency_interval_s
    assert low == pytest.approx(est.latency_s * fitted.ratio_low) and high == pytest.approx(est.latency_s * fitted.ratio_high)
    assert RaspberryPi4().describe().extra["cost_intervals"]["adapt_j"] == [fitted.ratio_low, fitted.ratio_high]
