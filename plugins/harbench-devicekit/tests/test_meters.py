"""Energy meters and the sampler against fabricated sensors."""

import importlib.util
import time

import pytest
from harbench_devicekit import testing
from harbench_devicekit.transport import AGENT_FILE

spec = importlib.util.spec_from_file_location("harbench_agent_under_test", AGENT_FILE)
agent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agent)


@pytest.mark.parametrize("layout", ["hwmon", "iio"])
def test_ina3221_sums_the_six_xavier_rails(tmp_path, layout):
    root = testing.fake_ina3221(tmp_path / "ina", layout)
    meter = agent.Ina3221Meter([str(root)], ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"])
    assert meter.available()
    assert sorted(l.replace("VDD_", "") for l in meter.describe()["rails"]) == sorted(
        ["GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"])
    assert meter.read_watts() == pytest.approx(testing.xavier_watts(), rel=1e-3)


def test_ina3221_rail_filter_and_missing_root(tmp_path):
    root = testing.fake_ina3221(tmp_path / "ina")
    gpu_only = agent.Ina3221Meter([str(root)], ["GPU"])
    assert gpu_only.read_watts() == pytest.approx(19.0 * 0.2)
    assert not agent.Ina3221Meter([str(tmp_path / "absent")]).available()


def test_pmic_meter_multiplies_volts_and_amps(tmp_path):
    bin_dir = testing.fake_programs(tmp_path / "bin")
    meter = agent.PmicMeter(str(bin_dir / "vcgencmd"))
    assert meter.available()
    assert meter.read_watts() == pytest.approx(testing.pmic_watts())
    assert "EXT5V" not in meter.describe()["rails"]  # voltage only: no power


def test_command_meter_and_missing_program(tmp_path):
    bin_dir = testing.fake_programs(tmp_path / "bin")
    assert agent.CommandMeter([str(bin_dir / "watts-meter")]).read_watts() == 4.25
    assert not agent.CommandMeter([str(tmp_path / "nope")]).available()


def test_utilisation_model_reads_proc_stat_deltas(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    meter = agent.UtilisationMeter({"idle_w": 2.0, "slope_w": 4.0}, str(stat))
    assert meter.available()
    stat.write_text("cpu  175 0 125 900 0 0 0 0 0 0\n")  # +100 busy, +100 idle -> u = 0.5
    assert meter.read_watts() == pytest.approx(4.0)
    assert meter.kind == "modelled"


def test_choose_meter_prefers_rails_then_pmic_then_model(tmp_path):
    ina = testing.fake_ina3221(tmp_path / "ina")
    bin_dir = testing.fake_programs(tmp_path / "bin")
    state = {"vcgencmd": str(bin_dir / "vcgencmd")}
    model = {"idle_w": 2.0, "slope_w": 4.0}
    assert agent.choose_meter({"ina3221_roots": [str(ina)]}, state).name == "ina3221"
    assert agent.choose_meter({"ina3221_roots": [str(tmp_path / "x")]}, state).name == "pmic"
    chosen = agent.choose_meter({"ina3221_roots": [], "utilisation_model": model}, {"vcgencmd": "/nonexistent"})
    assert chosen.name == "utilisation-model"
    assert agent.choose_meter({"ina3221_roots": []}, {"vcgencmd": "/nonexistent"}) is None
    with pytest.raises(RuntimeError, match="not available"):
        agent.choose_meter({"meter": "pmic"}, {"vcgencmd": "/nonexistent"})


class Ramp:
    """Power that rises linearly with time: the trapezoid mean over [0, T] must be the midpoint."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def read_watts(self):
        return 10.0 * (time.perf_counter() - self.t0)


def test_sampler_integrates_a_ramp():
    with agent.PowerSampler(Ramp(), hz=50) as sampler:
        time.sleep(0.4)
    (_, w_first), (_, w_last) = sampler.samples[0], sampler.samples[-1]
    assert len(sampler.samples) >= 5
    assert sampler.mean_watts() == pytest.approx((w_first + w_last) / 2, rel=0.05)


def test_device_state_reads_fabricated_sysfs(device_tree):
    state = agent.DeviceState({"sysfs_root": str(device_tree["sysfs"]), "vcgencmd": str(device_tree["bin"] / "vcgencmd"),
                               "nvpmodel": str(device_tree["bin"] / "nvpmodel")})
    snap = state.snapshot()
    assert snap["temperatures_c"] == {"zone0-thermal": 45.0, "zone1-thermal": 47.5}
    assert snap["governors"] == ["performance"] and snap["clocks_pinned"] is True
    assert snap["power_mode"] == {"name": "MAXN", "id": 0}
    assert snap["throttled"] == {"raw": "0x50000", "now": False, "since_boot": True}
    settle = state.settle(threshold_c=50.0, timeout_s=1.0)
    assert settle["settled"] and settle["waited_s"] < 1.0
    hot = state.settle(threshold_c=40.0, timeout_s=0.2, poll_s=0.05)
    assert not hot["settled"] and hot["waited_s"] >= 0.2
