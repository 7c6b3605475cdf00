import numpy as np
import pytest
from harbench_datasets import WISDM, LayoutError, MalformedRecordsWarning, fabricate
from harbench_datasets.wisdm import parse_raw

from harbench.testing import check_splits


def test_known_defects_are_parsed_repaired_or_skipped_and_counted():
    text = (
        "33,Jogging,49105962326000,-0.6946377,12.680544,0.50395286;\n"
        "33,Jogging,49106062271000,5.012288,11.264028,0.95342433;33,Jogging,49106112167000,4.903325,10.882658,-0.08172209;\n"
        "33,Jogging,49106222305000,-0.61291564,18.4964,3.0237172;\n"
        "33,Jogging,49106332290000,-1.1849703,12.108489,7.205164\n"  # no ';' before the next line
        "33,Jogging,49106442306000,1.3756552,-2.4925237,-6.510526;\n"
        "33,Jogging,49106542312000,-0.6129,10.56,5.\n"  # broken across lines: z is 5.2
        "2;\n"
        "33,Jogging,49106652389000,-0.7627,12.7,;\n"  # empty z
        "33,Jogging,;\n"  # truncated
        "33,Swimming,49106762389000,1.0,2.0,3.0;\n"  # unknown activity
    )
    r = parse_raw(text)
    assert len(r.user) == 7 and r.malformed == 3 and r.repaired == 1
    assert r.xyz[-1, 2] == pytest.approx(5.2) and r.timestamp[-1] == 49106542312000
    assert (r.user == 33).all() and (r.activity == 1).all()
    assert r.example == "33,Jogging,49106652389000,-0.7627,12.7,"


def test_load_warns_with_the_number_of_skipped_records(tmp_path):
    root, malformed = fabricate.wisdm(tmp_path)
    with pytest.warns(MalformedRecordsWarning, match=rf"skipped {malformed} malformed record\(s\)"):
        info = WISDM(path=str(root)).describe()
    assert info.users == ("u01", "u02", "u03")
    assert [c.name for c in info.contexts] == ["pocket"]
    assert info.channels == 3 and info.rate_hz == 20.0 and info.window == 80
    assert info.classes == ("walking", "jogging", "upstairs", "downstairs", "sitting", "standing")
    assert info.extra["parse_report"]["malformed"] == malformed and info.extra["parse_report"]["repaired"] == 1
    assert info.extra["class_balance_s"]["jogging"] == pytest.approx(3 * 200 / 20)


def test_splits_are_time_ordered_per_user_and_activity(tmp_path):
    root, _ = fabricate.wisdm(tmp_path, records_per_activity=200)
    with pytest.warns(MalformedRecordsWarning):
        splits = WISDM(path=str(root), window=40, stride=20, k=3).load(0, ["u02"])
    check_splits(splits, "wisdm")
    t = splits.targets["u02"]
    assert t.adapt.x.shape == (18, 3, 40) and len(t.test_unseen) == 0
    # 200 records -> 9 windows per activity: 3 adapt, 1 gap, 5 test
    assert len(t.test_seen) == 6 * 5
    assert np.bincount(t.test_seen.y.numpy(), minlength=6).tolist() == [5] * 6
    assert set(splits.population.user.tolist()) == {0, 2}


def test_a_timestamp_jump_starts_a_new_segment(tmp_path):
    root = tmp_path / "WISDM_ar_v1.1"
    root.mkdir()
    rows = [f"7,Sitting,{(1 + i) * 50_000_000 + (10**10 if i >= 50 else 0)},0.1,9.8,0.2;" for i in range(100)]
    rows += ["7,Sitting,0,0.1,9.8,0.2;" for _ in range(10)]  # unknown timestamps never cut
    (root / "WISDM_ar_v1.1_raw.txt").write_text("\n".join(rows))
    parsed = WISDM(path=str(root)).parsed()
    assert [s.signal.shape[1] for s in parsed.segments] == [50, 60]
    assert [s.signal.shape[1] for s in WISDM(path=str(root), max_gap_s=0).parsed().segments] == [110]


def test_path_may_name_the_raw_file_or_come_from_harbench_data(tmp_path, monkeypatch):
    root, _ = fabricate.wisdm(tmp_path, defects=False)
    assert WISDM(path=str(root / "WISDM_ar_v1.1_raw.txt")).describe().users == ("u01", "u02", "u03")
    monkeypatch.setenv("HARBENCH_DATA", str(tmp_path))
    assert WISDM().describe().extra["root"] == str(root)


def test_a_file_without_records_and_a_missing_file_are_one_line_errors(tmp_path):
    with pytest.raises(LayoutError, match=r"no 'WISDM_ar_v1.1' dataset found .*expected layout: 'WISDM_ar_v1.1/"
                                          r"WISDM_ar_v1.1_raw.txt'"):
        WISDM(path=str(tmp_path)).describe()
    (tmp_path / "WISDM_ar_v1.1").mkdir()
    (tmp_path / "WISDM_ar_v1.1" / "WISDM_ar_v1.1_raw.txt").write_text("user,activity,timestamp,x,y,z\n")
    with pytest.raises(LayoutError, match="holds no well-formed record"):
        WISDM(path=str(tmp_path)).describe()


def test_a_symlink_out_of_the_data_folder_is_followed_with_a_warning(tmp_path):
    from harbench_datasets.errors import OutsideFolderWarning

    real_root, _ = fabricate.wisdm(tmp_path / "elsewhere")
    data = tmp_path / "data"
    data.mkdir()
    for f in real_root.iterdir():
        (data / f.name).symlink_to(f)
    with pytest.warns(OutsideFolderWarning, match="outside the data folder"):
        WISDM(path=str(data)).describe()
