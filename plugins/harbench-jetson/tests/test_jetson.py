"""Jetson AGX Xavier: power modes, GPU/CPU estimates, and remote mode over a real OpenSSH server on 127.0.0.1
with fabricated INA3221 rails and a fake nvpmodel on PATH."""

import pytest
import torch
from harbench_devicekit import testing
from harbench_devicekit.profiles import unsourced_figures
from harbench_jetson.plugin import NVPMODEL_NAMES, POWER_MODES, JetsonXavierAgx

from harbench import build_backbone
from harbench.testing import registry as get_registry


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_backbone("resnet1d", 6, 4, width=4, depth=1).eval()


def test_registered_and_profile_sourced():
    assert get_registry(refresh=True).get("hardware", "jetson-xavier-agx").cls is JetsonXavierAgx
    profile = JetsonXavierAgx().profile
    assert unsourced_figures(profile.raw) == []
    assert set(profile.modes) == set(POWER_MODES) == set(NVPMODEL_NAMES)


def test_power_modes_scale_peak_bandwidth_and_overheads():
    profile = JetsonXavierAgx().profile
    maxn, low = profile.unit("cpu", "MAXN"), profile.unit("cpu", "10W")
    assert low.cores == 2
    assert low.peak_flops == pytest.approx(maxn.peak_flops * (1200 / 2265.6) * (2 / 8))
    assert low.bandwidth_bytes_s == pytest.approx(maxn.bandwidth_bytes_s * 1065.6 / 2133)
    assert low.calibration.t_op_s == pytest.approx(maxn.calibration.t_op_s * 2265.6 / 1200)
    gpu_maxn, gpu_10w = profile.unit("gpu", "MAXN"), profile.unit("gpu", "10W")
    assert gpu_10w.peak_flops == pytest.approx(gpu_maxn.peak_flops * 520 / 1377)
    assert profile.power("10W").load_w == 10.0 and profile.power("MAXN").load_w == 30.0


def test_estimates_per_mode_and_unit(model):
    example = torch.randn(1, 6, 32)
    maxn = JetsonXavierAgx(power_mode="MAXN", unit="cpu").run_inference(model, example)
    low = JetsonXavierAgx(power_mode="10W", unit="cpu").run_inference(model, example)
    gpu = JetsonXavierAgx().run_inference(model, example)
    assert low.latency_s[0] > maxn.latency_s[0]
    assert gpu.extra["unit"] == "gpu" and gpu.extra["power_mode"] == "MAXN"
    info = JetsonXavierAgx(power_mode="15W").describe()
    assert info.mode == "estimated" and info.power == {"idle_w": 7.64, "load_w": 15.0}
    assert info.extra["power_mode"] == "15W" and info.extra["estimator"] == "roofline-v1"


def test_remote_over_ssh_reads_the_rails_and_checks_the_power_mode(tmp_path, model):
    reason = testing.sshd_unavailable()
    if reason:
        pytest.skip(reason)
    bin_dir = testing.fake_programs(tmp_path / "bin", power_mode="MODE_15W")
    server = testing.start_sshd(tmp_path / "ssh", path_prefix=bin_dir)
    try:
        target = JetsonXavierAgx(
            mode="remote", host=server.host, ssh_config=str(server.client_config), unit="cpu", power_mode="15W",
            python=testing.python_for_agent(), remote_dir=str(tmp_path / "remote"),
            sysfs_root=str(testing.fake_sysfs(tmp_path / "sys")),
            ina3221_root=str(testing.fake_ina3221(tmp_path / "ina3221")), lease_path=str(tmp_path / "lease"),
            threads=1, warmup_s=0.0, min_duration_s=0.0, min_count=10, energy_min_s=0.3, idle_s=0.2, energy_hz=20.0,
        )
        cost = target.run_inference(model, torch.randn(1, 6, 32))
    finally:
        server.stop()
    assert cost.energy_method == "ina3221"
    assert sorted(r.replace("VDD_", "") for r in cost.extra["energy"]["meter"]["rails"]) == sorted(
        ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"])
    energy = cost.extra["energy"]
    assert energy["active_w"] == pytest.approx(testing.xavier_watts())
    assert cost.joules_per_window == pytest.approx(testing.xavier_watts() * energy["active_s"] / energy["units"])
    assert cost.extra["state_start"]["power_mode"] == {"name": "MODE_15W", "id": 2}
    assert cost.extra["power_mode_matches"] is True and cost.extra["state_start"]["clocks_pinned"] is True
    assert "17000000.gv11b" in cost.extra["state_end"]["devfreq"]
