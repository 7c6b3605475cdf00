import pytest


@pytest.fixture(autouse=True)
def isolated_profiles(tmp_path, monkeypatch):
    """A user's calibrated profiles (~/.config/harbench/profiles) must not change what the tests see."""
    monkeypatch.setenv("HARBENCH_PROFILE_DIR", str(tmp_path / "user-profiles"))
