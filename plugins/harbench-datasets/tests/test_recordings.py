import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from harbench_datasets import Recordings, SpSwHar, fabricate

from harbench.testing import check_dataset

REAL = os.environ.get("HARBENCH_SP_SW_HAR", "")
real = pytest.mark.skipif(not (REAL and Path(REAL, "subjects_info.csv").is_file()),
                          reason=f"real sp-sw-har data wanted in $HARBENCH_SP_SW_HAR={REAL or '(unset)'} "
                                 f"(e.g. ../shared/data/sp-sw-har beside the checkout)")

SP_SW_HAR_MANIFEST = {
    "name": "sp-sw-har through a manifest",
    "files": "{user}/{user}_{session}_{context}.csv",
    "columns": {"channels": ["x_acc", "y_acc", "z_acc", "x_gyro", "y_gyro", "z_gyro"], "timestamp": "timestamp",
                "label": "label"},
    "timestamp_unit": "ms",
    "rate_hz": 100,
    "units": ["m/s^2"] * 3 + ["rad/s"] * 3,
    "labels": {"SEATED": "seated", "STANDING_UP": "standing_up", "WALKING": "walking", "TURNING": "turning",
               "SITTING_DOWN": "sitting_down"},
    "contexts": {"sp": "phone", "sw": "watch"},
    "simultaneous": True,
    "subjects": "subjects_info.csv",
}


def _manifest(folder: Path, body: dict, name: str = "manifest.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def _rows(user: int, session: int, seconds: float = 8.0, rate: float = 40.0, start: float = 0.0):
    """A labelled recording at ``rate`` Hz: 'still' for the first half, 'moving' for the second."""
    n = int(seconds * rate)
    t = start + np.arange(n) / rate
    moving = t - start >= seconds / 2
    a = np.where(moving, np.sin(2 * np.pi * 2.0 * t), 0.0) + 0.1 * user
    return t, np.stack([a, 0.5 * a, np.cos(t) + session]), np.where(moving, "move", "rest")


def _write_csv(path: Path, t, x, labels, extra: dict | None = None):
    import pandas as pd

    frame = pd.DataFrame({"time_s": t, "ax": x[0], "ay": x[1], "az": x[2], "activity": labels, **(extra or {})})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


BASE = {"columns": {"channels": ["ax", "ay", "az"], "timestamp": "time_s", "label": "activity"}, "rate_hz": 40,
        "labels": {"rest": "resting", "move": "moving"}}


@pytest.fixture
def glob_layout(tmp_path):
    """Layout 1: one CSV per user, context and session, the fields in the path."""
    data = tmp_path / "study"
    for u in range(1, 5):
        for ctx in ("wrist", "ankle"):
            for s in range(1, 4):
                t, x, y = _rows(u, s, start=100.0 * s)
                _write_csv(data / f"p{u}" / f"{ctx}-{s}.csv", t, x if ctx == "wrist" else -x, y)
    return _manifest(data, {**BASE, "files": "{user}/{context}-{session}.csv", "contexts": ["wrist", "ankle"]})


@pytest.fixture
def table_layout(tmp_path):
    """Layout 2: one long Parquet table with user/context/session columns."""
    import pandas as pd

    parts = []
    for u in range(1, 5):
        for ctx in ("wrist", "ankle"):
            for s in range(1, 4):
                t, x, y = _rows(u, s, start=100.0 * s)
                x = x if ctx == "wrist" else -x
                parts.append(pd.DataFrame({"time_s": t, "ax": x[0], "ay": x[1], "az": x[2], "activity": y,
                                           "pid": f"p{u}", "where": ctx, "visit": s}))
    data = tmp_path / "long"
    data.mkdir()
    pd.concat(parts).to_parquet(data / "all.parquet")
    columns = {**BASE["columns"], "user": "pid", "context": "where", "session": "visit"}
    return _manifest(data, {**BASE, "columns": columns, "table": "all.parquet", "contexts": ["wrist", "ankle"]})


@pytest.mark.parametrize("layout", ["glob_layout", "table_layout"])
def test_two_layouts_give_the_same_windows(layout, request, glob_layout, table_layout):
    ds = Recordings(manifest=str(request.getfixturevalue(layout)), window=40, stride=20, rate_hz=20.0, k=3)
    info = ds.describe()
    assert info.users == ("p1", "p2", "p3", "p4") and [c.name for c in info.contexts] == ["wrist", "ankle"]
    assert info.classes == ("resting", "moving") and info.channels == 3 and info.rate_hz == 20.0
    splits = _quiet(ds.load, 0, ["p2"])
    t = splits.targets["p2"]
    assert t.unseen_contexts == ("ankle",) and len(t.adapt) == 6 and sorted(set(t.adapt.y.tolist())) == [0, 1]
    # 8 s at 20 Hz = 160 samples -> 7 windows of 40 every 20 per session; the middle one (20/20) is a tie
    assert len(t.test_seen) == 2 * 6 and len(t.test_unseen) == 2 * 6  # sessions 2 and 3, session 1 adapted on
    other = Recordings(manifest=str(glob_layout if layout == "table_layout" else table_layout), window=40,
                       stride=20, rate_hz=20.0, k=3)
    twin = _quiet(other.load, 0, ["p2"])
    assert torch.equal(twin.targets["p2"].test_seen.x, t.test_seen.x)
    assert torch.equal(twin.population.x, splits.population.x)


def test_conformance(glob_layout):
    params = {"manifest": str(glob_layout), "window": 40, "stride": 20, "rate_hz": 20.0, "k": 3}
    _quiet(Recordings(**params).load, 0, ["p1"])
    assert not _quiet(check_dataset, Recordings, params).failed


def test_one_line_per_problem(tmp_path, glob_layout):
    data = glob_layout.parent
    f = data / "p1" / "wrist-2.csv"
    good = f.read_text()

    def fails(match, body=None, **params):
        path = _manifest(data, body or {**BASE, "files": "{user}/{context}-{session}.csv"}, "m.yaml")
        with pytest.raises(ValueError) as err:
            _quiet(Recordings(manifest=str(path), window=40, stride=20, rate_hz=20.0, k=3, **params).load, 0, ["p1"])
        message = str(err.value)
        assert "\n" not in message and message.startswith("recordings: "), message
        assert match in message, message

    fails("columns.label: Field required", {**BASE, "columns": {"channels": ["ax"], "timestamp": "time_s"},
                                            "files": "{user}/{context}-{session}.csv"})
    fails("give exactly one of 'files'", {**BASE})
    fails("rate_hzz: Extra inputs are not permitted", {**BASE, "files": "{user}/x.csv", "rate_hzz": 3})
    fails("'p1/ankle-1.csv' has no column(s) ['gz'] (manifest columns.channels)",
          {**BASE, "columns": {**BASE["columns"], "channels": ["ax", "gz"]}, "files": "{user}/{context}-{session}.csv"})
    lines = good.splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    f.write_text("\n".join(lines) + "\n")
    fails("'p1/wrist-2.csv': timestamps go backwards at row 12")
    f.write_text(good.replace("move", "jump", 1))
    fails("'p1/wrist-2.csv': unknown label(s) ['jump'] in column 'activity'")
    f.write_text(good)
    no_match = {**BASE, "files": "{user}/nothing-{session}.csv"}
    fails("no file under", no_match)
    for params in ({}, {"manifest": str(tmp_path / "missing.yaml")}):
        with pytest.raises(ValueError, match=r"^recordings: (no manifest|manifest '.*missing.yaml' not found)"):
            Recordings(**params).describe()


def test_a_misspelt_column_fails_describe_so_validate_catches_it(glob_layout):
    """It passed ``harbench validate`` (which describes the dataset) and failed every job with the same line."""
    path = _manifest(glob_layout.parent, {**BASE, "columns": {**BASE["columns"], "label": "activty"},
                                          "files": "{user}/{context}-{session}.csv"}, "typo.yaml")
    with pytest.raises(ValueError, match=r"has no column\(s\) \['activty'\] \(manifest columns.label\)"):
        Recordings(manifest=str(path), window=40, stride=20, rate_hz=20.0, k=3).describe()


def test_nan_rows_are_counted_and_reported_never_silently_dropped(glob_layout):
    data = glob_layout.parent
    f = data / "p3" / "ankle-3.csv"
    lines = f.read_text().splitlines()
    for i in (5, 6, 7):
        fields = lines[i].split(",")
        fields[1] = ""
        lines[i] = ",".join(fields)
    f.write_text("\n".join(lines) + "\n")
    ds = Recordings(manifest=str(glob_layout), window=40, stride=20, rate_hz=20.0, k=3)
    with pytest.warns(UserWarning, match=r"recordings: dropped 3 row\(s\) with NaN .*first: 'p3/ankle-3.csv' row 6"):
        ds.parsed()
    assert ds.describe().extra["parse_report"]["nan_rows"] == 3
    strict = _manifest(data, {**yaml.safe_load(glob_layout.read_text()), "nan_rows": "error"}, "strict.yaml")
    with pytest.raises(ValueError, match=r"'p3/ankle-3.csv' row 6: 3 row\(s\) with NaN"):
        Recordings(manifest=str(strict)).parsed()


def test_sp_sw_har_through_a_manifest_matches_the_dedicated_loader(tmp_path):
    root = fabricate.sp_sw_har(tmp_path)
    manifest = _manifest(tmp_path, {**SP_SW_HAR_MANIFEST, "root": "sp-sw-har"})
    _same_windows(SpSwHar(path=str(root), k=2), Recordings(manifest=str(manifest), k=2), ["s02"])
    by_age = Recordings(manifest=str(manifest), targets=["age>=50"], population=["age<40"]).describe()
    assert by_age.extra["target_candidates"] == ["s03", "s04"]


@real
def test_real_sp_sw_har_through_a_manifest(tmp_path):
    manifest = _manifest(tmp_path, {**SP_SW_HAR_MANIFEST, "root": str(Path(REAL).resolve())})
    users = ["s03", "s10", "s16"]
    _same_windows(SpSwHar(path=REAL, users=users), Recordings(manifest=str(manifest), users=users, k=6), ["s10"])


def _same_windows(dedicated, manifest, targets):
    a, b = _quiet(dedicated.load, 0, targets), _quiet(manifest.load, 0, targets)
    assert a.info.classes == b.info.classes and a.info.users == b.info.users
    assert torch.equal(a.population.x, b.population.x) and torch.equal(a.population.y, b.population.y)
    for u in targets:
        for part in ("adapt", "test_seen", "test_unseen"):
            x, y = getattr(a.targets[u], part), getattr(b.targets[u], part)
            assert len(x) > 0 and torch.equal(x.x, y.x) and torch.equal(x.y, y.y), part
