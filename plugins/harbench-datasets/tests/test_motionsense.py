import pytest
from harbench_datasets import LayoutError, MotionSense, fabricate

from harbench.testing import check_splits


def test_trials_group_into_long_and_short_contexts(tmp_path):
    root = fabricate.motionsense(tmp_path, subjects=(1, 2, 3), seconds=6.0)
    ds = MotionSense(path=str(root), window=64, stride=32, k=2)
    info = ds.describe()
    assert info.users == ("sub01", "sub02", "sub03")
    assert [c.name for c in info.contexts] == ["long", "short"]
    assert info.channels == 9 and info.extra["channels"][:3] == ["userAcceleration_x", "userAcceleration_y",
                                                                  "userAcceleration_z"]
    assert len(info.extra["trials"]) == 15
    splits = ds.load(0, ["sub03"])
    check_splits(splits, "motionsense")
    t = splits.targets["sub03"]
    assert t.adapt_context == "long" and t.unseen_contexts == ("short",)
    assert sorted(set(t.adapt.y.tolist())) == list(range(6)) and len(t.adapt) == 12
    # 6 s at 50 Hz = 300 samples -> 8 windows of 64 every 32 per trial; 6 short trials
    assert len(t.test_unseen) == 6 * 8 and set(t.test_unseen.y.tolist()) == set(range(6))
    # long trials: 9 of them, 2 adapt windows + 1 gap per class (in the earliest trial of the class)
    assert len(t.test_seen) == 9 * 8 - 6 * 3
    assert ds.describe().extra["class_balance_s"]["walking"] == pytest.approx(3 * 3 * 6.0)


def test_kaggle_nesting_and_signal_choice(tmp_path):
    fabricate.motionsense(tmp_path, subjects=(1, 2), trials=("wlk_7", "wlk_15"), kaggle=True)
    ds = MotionSense(path=str(tmp_path), signals=["attitude"])
    info = ds.describe()
    assert info.extra["root"].endswith("A_DeviceMotion_data/A_DeviceMotion_data")
    assert info.extra["channels"] == ["attitude_roll", "attitude_pitch", "attitude_yaw"]
    parsed = ds.parsed()
    assert [(s.user, s.context, s.label) for s in parsed.segments] == [
        ("sub01", "long", 2), ("sub02", "long", 2), ("sub01", "short", 2), ("sub02", "short", 2)]


def test_header_and_layout_errors(tmp_path):
    root = fabricate.motionsense(tmp_path, subjects=(1, 2), trials=("sit_5",))
    f = root / "sit_5" / "sub_2.csv"
    f.write_text("x,y,z\n1,2,3\n")  # a B_Accelerometer_data file in the wrong place
    with pytest.raises(LayoutError, match="'sit_5/sub_2.csv' header 'x,y,z' is not the device-motion header"):
        MotionSense(path=str(root)).load(0, ["sub01"])
    empty = tmp_path / "empty" / "A_DeviceMotion_data"
    empty.mkdir(parents=True)
    with pytest.raises(LayoutError) as err:
        MotionSense(path=str(empty)).describe()
    assert "A_DeviceMotion_data/<dws|ups|wlk|jog|sit|std>_<trial>/sub_<n>.csv" in str(err.value)
