"""`harbench calibrate` works on any DeviceTarget subclass (a third party's, defined here), with one-line errors;
the estimator reads AdaptFacts' typed optimizer / lr (and old cached facts' extra as a fallback)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from harbench_devicekit.plugin import calibrate_command, calibration_device
from harbench_devicekit.profiles import PACKAGE_PROFILES
from harbench_devicekit.target import COMMON_PARAMETERS, DeviceTarget
from harbench_devicekit.workload import AdaptWorkload

from harbench import AdaptFacts, Param


class ThirdPartyBoard(DeviceTarget):
    """A published board plugin's target: its own parameters (no ``threads``), the kit's cpu profile."""

    name = "thirdparty-board"
    description = "a board from another distribution"
    profile_name = "cpu"
    profile_dirs = [PACKAGE_PROFILES]
    parameters = {**{k: v for k, v in COMMON_PARAMETERS.items() if k != "threads"},
                  "gain": Param(1.0, "a parameter of its own", ge=0.0)}


class Unprofiled(DeviceTarget):
    name = "thirdparty-unprofiled"


def test_a_third_party_subclass_is_built_for_calibration():
    device = calibration_device("thirdparty-board", ("host=local", "gain=2.5"), threads=3)
    assert isinstance(device, ThirdPartyBoard) and device.remote and device.params.gain == 2.5
    assert "threads" not in device.params  # not passed to a target that does not declare it
    settings = device.agent_settings()  # reads the common parameters it dropped at their defaults
    assert settings["threads"] == 0 and settings["lease"]["timeout_s"] == COMMON_PARAMETERS["lease_timeout_s"].default
    assert device.profile.name == "cpu"


@pytest.mark.parametrize("args, says", [
    (["thirdparty-board"], "--set host="),
    (["thirdparty-board", "--set", "host=local", "--set", "bogus=1"], "bogus"),
    (["thirdparty-unprofiled", "--set", "host=local"], "profile"),
    (["no-such-board"], "unknown device target"),
])
def test_calibrate_problems_are_one_line_not_a_traceback(args, says):
    res = CliRunner().invoke(calibrate_command, [*args, "--quick", "--no-write"])
    assert res.exit_code in (1, 2) and isinstance(res.exception, SystemExit), res.exception
    assert says in res.output and "Traceback" not in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) <= 3  # usage + one error line at most


def test_calibration_device_errors_are_click_exceptions():
    with pytest.raises(click.ClickException, match="host"):
        calibration_device("thirdparty-board", (), threads=1)


def test_workload_reads_typed_optimizer_and_lr_with_extra_as_fallback(tiny_model):
    typed = AdaptFacts(optimizer_steps=2, backward_samples=16, batch_size=8, optimizer="sgd", lr=0.05)
    w = AdaptWorkload.from_facts(typed, tiny_model, 4)
    assert (w.optimizer, w.lr) == ("sgd", 0.05)
    old = AdaptFacts(optimizer_steps=2, backward_samples=16, batch_size=8, extra={"optimizer": "sgd", "lr": 0.2})
    w = AdaptWorkload.from_facts(old, tiny_model, 4)  # facts cached before the typed fields existed
    assert (w.optimizer, w.lr) == ("sgd", 0.2)
    both = AdaptFacts(optimizer_steps=2, backward_samples=16, batch_size=8, optimizer="adam", lr=1e-4,
                      extra={"optimizer": "sgd", "lr": 0.2})
    assert (AdaptWorkload.from_facts(both, tiny_model, 4).optimizer, AdaptWorkload.from_facts(both, tiny_model, 4).lr) \
        == ("adam", 1e-4)  # the typed fields win
    unknown = AdaptWorkload.from_facts(AdaptFacts(optimizer_steps=2, backward_samples=16, batch_size=8), tiny_model, 4)
    assert unknown.optimizer == "adam" and any("optimizer not reported" in n for n in unknown.notes)
