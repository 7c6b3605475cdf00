import pytest
import torch
from harbench_devicekit.testing import fake_ina3221, fake_programs, fake_sysfs

from harbench import build_backbone


@pytest.fixture
def device_tree(tmp_path):
    """A fabricated device: sysfs (thermal, cpufreq, devfreq), INA3221 rails and fake vcgencmd/nvpmodel."""
    sysfs = fake_sysfs(tmp_path / "sys")
    ina = fake_ina3221(tmp_path / "ina3221")
    bin_dir = fake_programs(tmp_path / "bin")
    return {"sysfs": sysfs, "ina": ina, "bin": bin_dir, "root": tmp_path}


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return build_backbone("resnet1d", 6, 4, width=4, depth=1).eval()


@pytest.fixture(autouse=True)
def isolated_profiles(tmp_path, monkeypatch):
    """A user's calibrated profiles (~/.config/harbench/profiles) must not change what the tests see."""
    monkeypatch.setenv("HARBENCH_PROFILE_DIR", str(tmp_path / "user-profiles"))
