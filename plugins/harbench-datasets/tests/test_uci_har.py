import numpy as np
import pytest
from harbench_datasets import UCIHAR, LayoutError, fabricate
from harbench_datasets.windowing import cut_windows

from harbench.testing import check_splits


def published_rows(root, split):
    """The 9 inertial files of a split as (rows, 9, 128), read independently of the loader."""
    names = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
    return np.stack([np.loadtxt(root / split / "Inertial Signals" / f"{n}_{split}.txt", ndmin=2) for n in names], 1)


def test_four_published_windows_come_back_as_four_windows(tmp_path):
    root = fabricate.uci_har(tmp_path, subjects={"train": [7]}, rows_per_run=4, sessions=1)
    ds = UCIHAR(path=str(root))
    parsed = ds.parsed()
    walking = [s for s in parsed.segments if s.label == 0]
    assert len(walking) == 1 and walking[0].signal.shape == (9, 128 + 3 * 64)
    info = ds.describe()
    table = cut_windows(walking, info.users, ("waist",), 9, 50.0, 128, 64)
    assert table.x.shape == (4, 9, 128)
    rows = published_rows(root, "train")
    y = np.loadtxt(root / "train" / "y_train.txt", dtype=int)
    np.testing.assert_allclose(table.x, rows[y == 1], rtol=1e-6, atol=1e-6)


def test_users_classes_and_balance_come_from_the_small_files(tmp_path):
    root = fabricate.uci_har(tmp_path, subjects={"train": [1, 3], "test": [2]}, rows_per_run=5)
    info = UCIHAR(path=str(root)).describe()
    assert info.users == ("s01", "s02", "s03")
    assert info.classes == ("walking", "upstairs", "downstairs", "sitting", "standing", "lying")
    assert [c.name for c in info.contexts] == ["waist"]
    assert info.channels == 9 and info.window == 128 and info.rate_hz == 50.0
    # 3 subjects x 2 sessions x 5 rows per class, 1.28 s of new signal per published window
    assert info.extra["class_balance_s"] == {c: pytest.approx(3 * 2 * 5 * 1.28) for c in info.classes}
    assert info.extra["class_mapping"]["6 LAYING"] == "lying"


def test_load_splits_by_time_with_an_empty_unseen_split(tmp_path):
    root = fabricate.uci_har(tmp_path, rows_per_run=5)
    splits = UCIHAR(path=str(root), k=2).load(seed=0, targets=["s02"])
    check_splits(splits, "uci-har")
    t = splits.targets["s02"]
    assert len(t.adapt) == 2 * 6 and len(t.test_unseen) == 0 and t.test_unseen.x.shape[1:] == (9, 128)
    assert sorted(t.adapt.y.tolist()) == sorted(list(range(6)) * 2)
    assert set(splits.population.user.tolist()) == {0, 2}
    # adapt windows are the subject's earliest of each class: the first session's first two windows
    assert set(t.adapt.start.tolist()) == {0, 64}


def test_session_contexts_make_the_second_run_unseen(tmp_path):
    root = fabricate.uci_har(tmp_path, rows_per_run=5, sessions=2)
    ds = UCIHAR(path=str(root), context_by="session", k=2)
    info = ds.describe()
    assert [c.name for c in info.contexts] == ["session1", "session2"]
    splits = ds.load(0, ["s01"])
    check_splits(splits, "uci-har")
    t = splits.targets["s01"]
    assert t.adapt_context == "session1" and t.unseen_contexts == ("session2",)
    assert len(t.test_unseen) == 6 * 5 and (t.test_unseen.context == 1).all()


def test_a_row_that_does_not_continue_its_predecessor_starts_a_new_recording(tmp_path):
    root = fabricate.uci_har(tmp_path, subjects={"train": [1]}, rows_per_run=5, sessions=1, broken=("train", 2))
    parsed = UCIHAR(path=str(root)).parsed()
    # row 2 continues neither row 1 nor row 3: it becomes a recording of its own, between two others
    assert parsed.report["discontinuities_within_runs"] == 2
    first_class = [s.signal.shape[1] for s in parsed.segments if s.label == 4]  # standing is the first run
    assert first_class == [128 + 64, 128, 128 + 64]


def test_missing_inertial_file_names_the_layout(tmp_path):
    root = fabricate.uci_har(tmp_path)
    (root / "test" / "Inertial Signals" / "body_gyro_y_test.txt").unlink()
    with pytest.raises(LayoutError) as err:
        UCIHAR(path=str(root)).describe()
    message = str(err.value)
    assert "\n" not in message and "body_gyro_y_test.txt" in message and "Inertial Signals" in message


def test_rows_of_the_wrong_length_are_reported(tmp_path):
    root = fabricate.uci_har(tmp_path, subjects={"train": [1]}, sessions=1)
    f = root / "train" / "Inertial Signals" / "total_acc_z_train.txt"
    f.write_text("\n".join(line.rsplit("  ", 1)[0] for line in f.read_text().splitlines()) + "\n")
    with pytest.raises(LayoutError, match=r"total_acc_z_train.txt' has shape \(30, 127\), expected \(30, 128\)"):
        UCIHAR(path=str(root)).load(0, ["s01"])


def test_signal_subset_and_parent_folder_path(tmp_path):
    fabricate.uci_har(tmp_path)
    info = UCIHAR(path=str(tmp_path), signals=["total_acc"]).describe()  # the parent of 'UCI HAR Dataset'
    assert info.channels == 3 and info.extra["channels"] == ["total_acc_x", "total_acc_y", "total_acc_z"]
    with pytest.raises(ValueError, match="signals must be a non-empty subset"):
        UCIHAR(path=str(tmp_path), signals=["magnetometer"])


def test_an_unstitched_row_that_overlaps_adapt_in_time_is_not_tested_on(tmp_path):
    # row 2 (standing) is its own recording, but it shares 64 samples with row 1, the second adapt window
    root = fabricate.uci_har(tmp_path, subjects={"train": [1, 2]}, rows_per_run=5, sessions=1, broken=("train", 2))
    splits = UCIHAR(path=str(root), k=2).load(0, ["s01"])
    check_splits(splits, "uci-har")
    t = splits.targets["s01"]
    standing = t.test_seen.y == 4
    assert int(standing.sum()) == 2  # rows 3 and 4; row 2 is the gap
    assert len(t.test_seen) == 5 * (5 - 3) + 2
