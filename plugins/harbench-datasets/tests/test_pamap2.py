import numpy as np
import pytest
import torch
from harbench_datasets import PAMAP2, LayoutError, fabricate
from harbench_datasets.base import PARSE_CACHE

from harbench.testing import check_splits


def test_positions_are_contexts_and_transients_are_dropped(tmp_path):
    root = fabricate.pamap2(tmp_path, activities=(1, 4, 12), seconds_per_activity=4.0)
    ds = PAMAP2(path=str(root), window=32, stride=16, k=2)
    info = ds.describe()
    assert info.users == ("s101", "s102", "s103")
    assert [c.name for c in info.contexts] == ["hand", "chest", "ankle"]
    assert all(c.drift == "input" for c in info.contexts)
    assert info.channels == 6 and len(info.classes) == 12 and info.classes[7] == "ascending_stairs"
    assert not PARSE_CACHE.entries, "describe() must not parse the signal files"
    splits = ds.load(0, ["s102"])
    check_splits(splits, "pamap2")
    parsed = ds.parsed()
    assert parsed.report["transient_rows"] == 3 * 4 * 100
    assert {s.label for s in parsed.segments} == {0, 3, 7}  # lying, walking, ascending stairs; never activity 0
    assert set(splits.population.y.unique().tolist()) == {0, 3, 7}
    # 4 s at 50 Hz = 200 samples -> 11 windows of 32 every 16, per position, activity and population user
    assert splits.population.x.shape == (2 * 3 * 3 * 11, 6, 32)
    assert torch.isfinite(splits.population.x).all()
    assert ds.describe().extra["class_balance_s"]["walking"] == pytest.approx(3 * 3 * 4.0)


def test_unseen_positions_exclude_the_moments_the_user_adapted_on(tmp_path):
    root = fabricate.pamap2(tmp_path, activities=(1, 4), seconds_per_activity=4.0)
    splits = PAMAP2(path=str(root), window=32, stride=16, k=2, adapt_context="chest").load(0, ["s101"])
    t = splits.targets["s101"]
    assert t.adapt_context == "chest" and t.unseen_contexts == ("hand", "ankle")
    assert (t.adapt.context == 1).all() and len(t.adapt) == 4
    # per activity and position: 11 windows; 2 adapt + 1 overlapping them are excluded from the other positions
    assert len(t.test_seen) == 2 * (11 - 3) and len(t.test_unseen) == 2 * 2 * (11 - 3)
    assert set(t.adapt.start.tolist()) == {0, 16} and t.test_unseen.start.min() >= 48


def test_nan_dropouts_are_interpolated_and_mostly_missing_channels_drop_the_segment(tmp_path):
    root = fabricate.pamap2(tmp_path, subjects=(101, 102), activities=(4,))
    f = root / "Protocol" / "subject101.dat"
    rows = [line.split() for line in f.read_text().splitlines()]
    for row in rows:
        if row[1] == "4":
            row[4] = "NaN"  # the hand's acc16 x is missing throughout walking
    f.write_text("\n".join(" ".join(r) for r in rows) + "\n")
    parsed = PAMAP2(path=str(root)).parsed()
    assert parsed.report["dropped_segments_nan"] == 1
    assert sorted((s.user, s.context) for s in parsed.segments) == [
        ("s101", "ankle"), ("s101", "chest"), ("s102", "ankle"), ("s102", "chest"), ("s102", "hand")]
    assert all(np.isfinite(s.signal).all() for s in parsed.segments)


def test_parameters_select_positions_signals_and_classes(tmp_path):
    root = fabricate.pamap2(tmp_path, subjects=(101, 102), activities=(5,))
    info = PAMAP2(path=str(root), positions=["ankle"], signals=["acc16", "acc6", "gyro", "mag"],
                  adapt_context="ankle", optional=True).describe()
    assert [c.name for c in info.contexts] == ["ankle"] and info.channels == 12
    assert len(info.classes) == 18 and info.extra["class_mapping"]["20"] == "playing_soccer"
    with pytest.raises(LayoutError, match="adapt_context 'hand' is not a context"):
        PAMAP2(path=str(root), positions=["ankle"]).describe()
    with pytest.raises(ValueError, match="positions must be a non-empty subset"):
        PAMAP2(path=str(root), positions=["wrist"])


def test_wrong_column_count_and_missing_protocol_folder(tmp_path):
    root = fabricate.pamap2(tmp_path, subjects=(101,), activities=(1,), seconds_per_activity=1.0)
    f = root / "Protocol" / "subject101.dat"
    f.write_text("\n".join(" ".join(line.split()[:53]) for line in f.read_text().splitlines()))
    with pytest.raises(LayoutError, match="'subject101.dat' has 53 columns, expected 54"):
        PAMAP2(path=str(root)).load(0, ["s101"])
    with pytest.raises(LayoutError, match=r"no 'PAMAP2_Dataset' dataset found.*Protocol/subject1NN.dat"):
        PAMAP2(path=str(tmp_path / "elsewhere")).describe()
