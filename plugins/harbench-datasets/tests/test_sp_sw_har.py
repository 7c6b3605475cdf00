import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from harbench_datasets import LayoutError, SpSwHar, fabricate
from harbench_datasets.windowing import majority_labels

from harbench.testing import check_dataset

REAL = os.environ.get("HARBENCH_SP_SW_HAR", "")
real = pytest.mark.skipif(not (REAL and Path(REAL, "subjects_info.csv").is_file()),
                          reason=f"real sp-sw-har data wanted in $HARBENCH_SP_SW_HAR={REAL or '(unset)'} "
                                 f"(e.g. ../shared/data/sp-sw-har beside the checkout)")


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory):
    return fabricate.sp_sw_har(tmp_path_factory.mktemp("spsw"))


def _load(root, users, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return SpSwHar(path=str(root), **params).load(0, users)


def test_describe_devices_attributes_and_orientation(fabricated):
    info = SpSwHar(path=str(fabricated)).describe()
    assert info.users == ("s01", "s02", "s03", "s04")
    assert [c.name for c in info.contexts] == ["phone", "watch"] and info.channels == 6
    assert info.classes == ("seated", "standing_up", "walking", "turning", "sitting_down")
    assert info.extra["subjects"]["s03"]["age"] == 52 and info.extra["subjects"]["s02"]["gender"] == "F"
    assert set(info.extra["subjects"]["s01"]) >= {"age", "gender", "height", "weight", "dominant_hand"}
    assert info.extra["orientation"]["s01_02"] == "back" and info.extra["orientation"]["s01_01"] == "front"
    assert info.rate_hz == 50.0 and len(info.extra["fingerprint"]) == 16


def test_resampled_on_the_timestamps_not_the_row_count(tmp_path):
    root = fabricate.sp_sw_har(tmp_path, subjects={"s01": 30, "s02": 40}, executions=1, sine_hz=1.0)
    ds = SpSwHar(path=str(root))
    parsed = ds.parsed()
    report = parsed.report
    assert report["measured_rate_hz"]["phone"] == pytest.approx(102.5, abs=0.3)
    assert report["measured_rate_hz"]["watch"] == pytest.approx(104.4, abs=0.3)
    assert report["rows_merged"] > 0  # repeated milliseconds were averaged, not taken as samples
    for seg in parsed.segments:
        start = 1_657_533_977.0 + 3600.0 * int(seg.user[1:]) - 3600.0 + 60.0
        t = seg.t0 + np.arange(seg.signal.shape[1]) / 50.0
        assert seg.signal.shape[1] == pytest.approx(12.4 * 50, abs=2)  # 12.4 s, whatever the device's rate
        # reading ~104 Hz rows as 100 Hz would be 0.5 s off (a half period of the 1 Hz sine) by the end
        np.testing.assert_allclose(seg.signal[0], np.sin(2 * np.pi * (t - start)), atol=0.05)


def test_majority_rule_and_its_purity_threshold():
    labels = np.array([0] * 30 + [1] * 20 + [1] * 25 + [2] * 25)
    starts = np.array([0, 50])
    y, majority = majority_labels(labels, starts, 50, 0.5, 3)
    assert y.tolist() == [0, -1] and majority.tolist() == [0, 1]  # 30/20 kept; a 25/25 tie dropped
    assert majority_labels(labels, starts, 50, 0.7, 3)[0].tolist() == [-1, -1]  # 60 % < 70 %
    unlabelled = np.array([-1] * 30 + [0] * 20)
    assert majority_labels(unlabelled, np.array([0]), 50, 0.5, 3)[0].tolist() == [-1]  # unlabelled counts against


def test_windows_dropped_are_counted_and_sessions_split_in_time_order(fabricated):
    with pytest.warns(UserWarning, match=r"sp-sw-har: the majority rule \(min_purity 0.9\) dropped \d+ of \d+"):
        splits = SpSwHar(path=str(fabricated), min_purity=0.9, k=2).load(0, ["s01"])
    dropped = SpSwHar(path=str(fabricated), min_purity=0.9, k=2).describe().extra["windows_dropped"]
    assert dropped["windows"] > 0 and sum(dropped["by_majority_class"].values()) == dropped["windows"]
    t = splits.targets["s01"]
    assert t.unseen_contexts == ("watch",)
    # each execution is a recording per device; adapt executions give nothing to either test split
    rec_of = lambda w: set(w.recording.tolist())  # noqa: E731
    assert not rec_of(t.adapt) & rec_of(t.test_seen)
    seg = SpSwHar(path=str(fabricated)).parsed().segments
    session = lambda w: {seg[r].session for r in rec_of(w)}  # noqa: E731
    assert not session(t.adapt) & (session(t.test_seen) | session(t.test_unseen))
    assert max(int(s[-2:]) for s in session(t.adapt)) < min(int(s[-2:]) for s in session(t.test_seen))


def test_population_and_targets_by_attribute(fabricated):
    ds = SpSwHar(path=str(fabricated), targets=["age>=50"], population=["age<40"])
    info = ds.describe()
    assert info.users[:2] == ("s03", "s04") and info.extra["target_candidates"] == ["s03", "s04"]
    splits = _load(fabricated, ["s03"], targets=["age>=50"], population=["age<40"])
    pop_users = {info.users[i] for i in set(splits.population.user.tolist())}
    assert pop_users == {"s01", "s02"}  # s04 (61) is neither a target here nor under 40
    with pytest.raises(ValueError, match=r"sp-sw-har: target users \['s01'\] do not meet params.targets"):
        _load(fabricated, ["s01"], targets=["age>=50"])
    with pytest.raises(ValueError, match="unknown attribute 'shoe_size'"):
        SpSwHar(path=str(fabricated), targets=["shoe_size>40"]).describe()
    with pytest.raises(ValueError, match="is not a condition"):
        SpSwHar(path=str(fabricated), population=["age"]).describe()
    with pytest.raises(ValueError, match="is not a condition"):
        SpSwHar(path=str(fabricated), targets=["age>>3"]).describe()
    with pytest.raises(ValueError, match=r"^sp-sw-har: no subject meets params.targets \[.age>99.\]$"):
        SpSwHar(path=str(fabricated), targets=["age>99"]).describe()


def test_crossed_groups_train_each_direction_on_the_other_group(fabricated):
    # s01, s02 under 40; s03 (55) and s04 (61) 50 or more: one dataset configuration serves both directions
    groups = ["age<40", "age>=50"]
    info = SpSwHar(path=str(fabricated), groups=groups).describe()
    assert info.extra["groups"] == {"age<40": ["s01", "s02"], "age>=50": ["s03", "s04"]}
    for targets, population in ((["s03"], {"s01", "s02"}), (["s01", "s02"], {"s03", "s04"})):
        splits = _load(fabricated, targets, groups=groups)
        assert {info.users[i] for i in set(splits.population.user.tolist())} == population
    with pytest.raises(ValueError, match=r"^sp-sw-har: target users \['s01', 's03'\] must all be in one of "
                                         r"params.groups \(they are in age<40, age>=50\)$"):
        _load(fabricated, ["s01", "s03"], groups=groups)
    ds = SpSwHar(path=str(fabricated), groups=groups)
    assert ds.check_targets(["s03", "s04"]) is None and "must all be in one of" in ds.check_targets(["s01", "s03"])
    with pytest.raises(ValueError, match="params.groups replaces params.targets"):
        SpSwHar(path=str(fabricated), groups=groups, targets=["age>=50"]).describe()
    with pytest.raises(ValueError, match=r"needs two or more disjoint groups \(s03, s04 in several\)"):
        SpSwHar(path=str(fabricated), groups=["age>30", "age>=50"]).describe()
    with pytest.raises(ValueError, match="no subject is in params.groups entry 'age>99'"):
        SpSwHar(path=str(fabricated), groups=["age<40", "age>99"]).describe()


def test_too_large_k_is_refused_naming_user_and_setting(fabricated):
    # 4 executions of 12.4 s: about 2 'seated' windows per execution
    with pytest.raises(ValueError) as err:
        _load(fabricated, ["s02"], k=40)
    message = str(err.value)
    assert "\n" not in message and message.startswith("sp-sw-har: target user 's02'") and "lower params.k" in message


def test_a_target_the_split_refuses_is_refused_when_the_suite_is_validated(fabricated):
    """check_targets applies the split's rules, so a suite naming such a target fails validation in one line
    (every refused user named) rather than every one of its jobs at run time."""
    ds = SpSwHar(path=str(fabricated), k=40)
    why = ds.check_targets(["s01", "s02"])
    assert why is not None and "\n" not in why
    assert "target user 's01'" in why and "target user 's02'" in why and why.endswith(
        "lower params.k or choose other target users")
    assert SpSwHar(path=str(fabricated), k=2).check_targets(["s01", "s02"]) is None


def test_layout_errors_are_one_line(tmp_path):
    root = fabricate.sp_sw_har(tmp_path, subjects={"s01": 30, "s02": 40}, executions=2)
    f = root / "s02" / "s02_02_sw.csv"
    good = f.read_text()
    lines = good.splitlines()
    fields = lines[6].split(",")
    fields[6] = "1000"  # row 7 of the file: a timestamp in 1970, before its predecessor
    lines[6] = ",".join(fields)
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(LayoutError, match=r"'s02/s02_02_sw.csv': timestamps go backwards at row 7"):
        SpSwHar(path=str(root)).parsed()
    f.write_text(good.replace("WALKING", "JOGGING", 1))
    with pytest.raises(LayoutError, match=r"'s02/s02_02_sw.csv': unknown label\(s\) \['JOGGING'\]"):
        SpSwHar(path=str(root)).parsed()
    f.write_text("a,b\n1,2\n")
    with pytest.raises(LayoutError, match="'s02/s02_02_sw.csv' has columns 'a,b'"):
        SpSwHar(path=str(root)).parsed()
    with pytest.raises(LayoutError, match="no 'sp-sw-har' dataset found"):
        SpSwHar(path=str(tmp_path / "nowhere")).describe()


def test_conformance_on_fabricated_files(fabricated):
    params = {"path": str(fabricated), "k": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        SpSwHar(**params).load(0, ["s01"])  # parse first: describe() then reports the parse, as load() does
        assert not check_dataset(SpSwHar, params).failed


# ------------------------------------------------------------------------------------------------ real data
@real
def test_real_files_few_subjects():
    users = ["s02", "s10", "s15", "s16"]
    ds = SpSwHar(path=REAL, users=users)
    with pytest.warns(UserWarning, match="majority rule"):
        splits = ds.load(0, ["s10"])
    info = ds.describe()
    report = info.extra["parse_report"]
    assert report["files"] == sum(len(list(Path(REAL, u).glob("*.csv"))) for u in users) > 8 * len(users)
    assert 102.0 < report["measured_rate_hz"]["phone"] < 103.0 and 104.0 < report["measured_rate_hz"]["watch"] < 105.0
    t = splits.targets["s10"]
    assert len(t.adapt) == 6 * 5 and len(t.test_seen) > 50 and len(t.test_unseen) > 50
    assert info.extra["subjects"]["s10"]["age"] == 66 and info.extra["orientation"]["s10_01"] in (
        "back", "back_inv", "front", "front_inv")
    assert 0 < info.extra["windows_dropped"]["windows"] < 0.1 * info.extra["windows_dropped"]["kept"]
    young = SpSwHar(path=REAL, users=users, targets=["age>55"], population=["age<40"]).describe()
    assert young.extra["target_candidates"] == ["s10"] and young.users[0] == "s10"
