import numpy as np
import pytest
from harbench_datasets import HHAR, LayoutError, MalformedRecordsWarning, fabricate
from harbench_datasets.base import PARSE_CACHE

from harbench.testing import check_splits

FAST = dict(window=32, stride=16, k=2)


@pytest.fixture(scope="module")
def hhar_root(tmp_path_factory):
    return fabricate.hhar(tmp_path_factory.mktemp("hhar"), users=("a", "b", "c"), seconds_per_activity=6.0)


def test_describe_reads_headers_only(hhar_root):
    info = HHAR(path=str(hhar_root), users=["a", "b", "c"]).describe()
    assert info.users == ("a", "b", "c")
    assert [c.name for c in info.contexts] == ["nexus4", "s3", "s3mini", "samsungold"]
    assert info.channels == 6 and info.classes == ("standing", "sitting", "walking", "upstairs", "downstairs", "biking")
    assert info.extra["class_balance_s"] is None and "first loaded" in info.extra["class_balance_note"]
    assert not PARSE_CACHE.entries
    assert HHAR(path=str(hhar_root)).describe().users == tuple("abcdefghi")  # the documented nine


def test_every_model_is_resampled_to_one_rate_and_null_is_dropped(hhar_root):
    with pytest.warns(MalformedRecordsWarning, match=r"skipped 2 malformed row\(s\)"):
        parsed = HHAR(path=str(hhar_root), rate_hz=25.0, **FAST).parsed()
    assert {s.rate_hz for s in parsed.segments} == {25.0}
    assert {s.label for s in parsed.segments} == {0, 2, 5}  # stand, walk, bike; never null
    assert len(parsed.segments) == 3 * 4 * 3  # users x phone models x activities, each uninterrupted
    # 100, 75, 60 and 50 Hz devices all give ~6 s of signal at 25 Hz
    for s in parsed.segments:
        assert s.signal.shape[0] == 6 and abs(s.signal.shape[1] / 25.0 - 6.0) < 0.1


def test_unseen_devices_never_cover_the_adapt_moments(hhar_root):
    with pytest.warns(MalformedRecordsWarning):
        ds = HHAR(path=str(hhar_root), users=["a", "b", "c"], adapt_context="s3", **FAST)
        splits = ds.load(0, ["b"])
    check_splits(splits, "hhar")
    t = splits.targets["b"]
    assert t.adapt_context == "s3" and t.unseen_contexts == ("nexus4", "s3mini", "samsungold")
    assert len(t.adapt) == 3 * 2 and len(t.test_seen) > 0
    # 6 s at 50 Hz = 300 samples -> 17 windows; 2 adapt + 1 gap leave 14 test_seen per activity
    assert len(t.test_seen) == 3 * 14
    # on the shared wall clock the adapt windows (starts 0 and 16) cover the first 48 samples of each activity:
    # the unseen devices' windows there are left out (the one that just touches them too when a device's clock
    # runs a millisecond early), the rest stays
    assert t.test_unseen.start.min() >= 48
    assert 3 * 3 * 13 <= len(t.test_unseen) <= 3 * 3 * 14
    assert set(splits.population.user.tolist()) == {0, 2}


def test_sensors_on_separate_clocks_are_aligned_through_arrival_time(tmp_path):
    root = fabricate.hhar(tmp_path, users=("a",), seconds_per_activity=3.0, activities=("sit",),
                          malformed_rows=0, separate_sensor_clocks=True)
    parsed = HHAR(path=str(root), users=["a"], **FAST).parsed()
    assert len(parsed.segments) == 4 and all(abs(s.seconds - 3.0) < 0.1 for s in parsed.segments)


def test_watches_and_accelerometer_only(hhar_root):
    info = HHAR(path=str(hhar_root), devices="watches", sensors=["acc"], adapt_context="gear").describe()
    assert [c.name for c in info.contexts] == ["gear", "lgwatch"] and info.channels == 3
    with pytest.warns(MalformedRecordsWarning):
        parsed = HHAR(path=str(hhar_root), devices="all", **FAST).parsed()
    assert {s.context for s in parsed.segments} == {"nexus4", "s3", "s3mini", "samsungold", "gear", "lgwatch"}


def test_layout_errors(tmp_path, hhar_root):
    with pytest.raises(LayoutError, match=r"no 'Activity recognition exp' dataset found"):
        HHAR(path=str(tmp_path)).describe()
    broken = tmp_path / "Activity recognition exp"
    broken.mkdir()
    (broken / "Phones_accelerometer.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LayoutError, match="missing 'Phones_gyroscope.csv'"):
        HHAR(path=str(broken)).describe()
    with pytest.raises(LayoutError, match="starts with 'a,b,c', not the HHAR header"):
        HHAR(path=str(broken), sensors=["acc"]).describe()
    with pytest.raises(ValueError, match="sensors must be a non-empty subset"):
        HHAR(path=str(hhar_root), sensors=["magnetometer"])


def test_a_target_without_data_is_named(hhar_root):
    with pytest.warns(MalformedRecordsWarning), pytest.raises(ValueError, match="target user 'h' has no windows"):
        HHAR(path=str(hhar_root), **FAST).load(0, ["h"])


def test_resampled_signal_follows_the_source(tmp_path):
    """A pure 1 Hz sine recorded at 100 Hz comes back as the same sine at 50 Hz."""
    root = tmp_path / "Activity recognition exp"
    root.mkdir()
    lines = [fabricate.HHAR_HEADER]
    for i in range(600):
        v = np.sin(2 * np.pi * i / 100)
        lines.append(f"{i},{1424696633908 + 10 * i},{5 * 10**14 + i * 10**7},{v},0,0,a,nexus4,nexus4_1,walk")
    (root / "Phones_accelerometer.csv").write_text("\n".join(lines))
    parsed = HHAR(path=str(root), sensors=["acc"], users=["a"]).parsed()
    (seg,) = parsed.segments
    expected = np.sin(2 * np.pi * np.arange(seg.signal.shape[1]) / 50)
    np.testing.assert_allclose(seg.signal[0], expected, atol=2e-3)
