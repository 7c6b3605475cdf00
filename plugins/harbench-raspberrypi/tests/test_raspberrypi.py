"""Raspberry Pi targets: profiles, estimate mode, and remote mode through a real OpenSSH server on 127.0.0.1."""

import pytest
import torch
from harbench_devicekit import testing
from harbench_devicekit.profiles import unsourced_figures
from harbench_raspberrypi.plugin import RaspberryPi4, RaspberryPi5

from harbench import build_backbone
from harbench.testing import registry as get_registry


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_backbone("resnet1d", 6, 4, width=4, depth=1).eval()


def test_registered_through_the_entry_point_group():
    registry = get_registry(refresh=True)
    assert registry.get("hardware", "rpi4").cls is RaspberryPi4
    assert registry.get("hardware", "rpi5").distribution == "harbench-raspberrypi"


@pytest.mark.parametrize("target", [RaspberryPi4, RaspberryPi5])
def test_profiles_source_every_figure(target):
    profile = target().profile
    assert unsourced_figures(profile.raw) == []
    assert profile.unit("cpu").cores == 4 and profile.power().load_w > profile.power().idle_w


def test_estimate_mode_marks_rows_and_orders_the_boards(model):
    example = torch.randn(1, 6, 32)
    costs = {}
    for cls in (RaspberryPi4, RaspberryPi5):
        target = cls()
        info = target.describe()
        assert info.mode == "estimated" and info.extra["profile"] == cls.profile_name
        assert info.extra["calibration_status"] == "uncalibrated"
        cost = target.run_inference(model, example)
        assert cost.energy_method == "estimate:roofline-v1" and cost.extra["estimated"] is True
        assert "calibration_date" in cost.extra and cost.extra["profile"] == cls.profile_name
        result, adapt = target.run_adapt(testing.tiny_adapt(model))
        assert adapt.seconds > cost.latency_s[0] and adapt.joules > adapt.joules_net > 0
        assert adapt.extra["workload"]["optimizer_steps"] == result.facts.optimizer_steps
        costs[cls.name] = (cost.latency_s[0], adapt.seconds)
    assert costs["rpi5"][0] < costs["rpi4"][0] and costs["rpi5"][1] < costs["rpi4"][1]  # A76 @ 2.4 beats A72 @ 1.5


def test_a_method_that_does_nothing_costs_nothing(model):
    from harbench import AdaptFacts, AdaptResult

    _, cost = RaspberryPi4().run_adapt(lambda: AdaptResult(model, AdaptFacts()))
    assert (cost.seconds, cost.joules, cost.energy_method) == (0.0, 0.0, "none")


def test_remote_mode_needs_a_host(model):
    with pytest.raises(ValueError, match="host"):
        RaspberryPi5(mode="remote").run_inference(model, torch.randn(1, 6, 32))


@pytest.fixture
def ssh_device(tmp_path):
    reason = testing.sshd_unavailable()
    if reason:
        pytest.skip(reason)
    bin_dir = testing.fake_programs(tmp_path / "bin")
    server = testing.start_sshd(tmp_path / "ssh", path_prefix=bin_dir)
    yield {"server": server, "sysfs": testing.fake_sysfs(tmp_path / "sys"), "root": tmp_path}
    server.stop()


def remote_params(dev, **extra):
    return {"mode": "remote", "host": dev["server"].host, "ssh_config": str(dev["server"].client_config),
            "python": testing.python_for_agent(), "remote_dir": str(dev["root"] / "remote"),
            "sysfs_root": str(dev["sysfs"]), "ina3221_root": str(dev["root"] / "no-rails"),
            "lease_path": str(dev["root"] / "lease"), "threads": 1, "warmup_s": 0.0, "min_duration_s": 0.0,
            "min_count": 10, "energy_min_s": 0.3, "idle_s": 0.2, "energy_hz": 20.0, **extra}


def test_rpi5_remote_over_ssh_measures_with_the_pmic(ssh_device, model):
    """End to end through sshd: copy, lease, fake vcgencmd found on PATH, sampling, integration, replay."""
    target = RaspberryPi5(**remote_params(ssh_device))
    assert target.describe().mode == "measured"
    cost = target.run_inference(model, torch.randn(1, 6, 32))
    assert len(cost.latency_s) >= 10 and cost.energy_method == "pmic"
    assert cost.joules_per_window == pytest.approx(testing.pmic_watts() * cost.extra["energy"]["active_s"]
                                                   / cost.extra["energy"]["units"])
    assert cost.extra["target_mode"] == "remote" and cost.extra["energy_modelled"] is False
    assert cost.extra["state_start"]["throttled"]["since_boot"] is True
    result, adapt = target.run_adapt(testing.tiny_adapt(model))
    assert adapt.extra["replayed"]["optimizer_steps"] == result.facts.optimizer_steps
    assert adapt.extra["replayed"]["trainable_tensors"] == 2  # fc.weight and fc.bias only
    assert adapt.energy_method == "pmic" and adapt.seconds > 0
    assert not list((ssh_device["root"] / "remote").iterdir())  # job folders are removed after each run


def test_rpi4_jobs_carry_the_utilisation_model_and_the_meter_adapter():
    """A Pi 4 has no power telemetry: its jobs carry the published model (fallback) and the external meter hook."""
    settings = RaspberryPi4(meter_command=["usb-meter", "--watts"]).agent_settings()
    assert settings["energy"]["command"] == ["usb-meter", "--watts"]
    model = settings["energy"]["utilisation_model"]
    assert (model["idle_w"], model["slope_w"]) == (2.286, 4.534) and "PowerJoular" in model["source"]
