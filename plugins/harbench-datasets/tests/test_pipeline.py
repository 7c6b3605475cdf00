import numpy as np
import pytest
from harbench_datasets import DATASETS, LayoutError
from harbench_datasets.segments import Segment, runs
from harbench_datasets.signal import covered, fill_nan, resample, true_runs
from harbench_datasets.splitting import build_splits
from harbench_datasets.windowing import cut_windows

from harbench import ContextInfo, DatasetInfo
from harbench.testing import registry as get_registry


def test_resample_keeps_a_slow_sine_and_the_duration():
    t = np.arange(1000) / 100.0
    x = np.sin(2 * np.pi * 1.0 * t)[None, :]
    y = resample(x, 100.0, 50.0)
    assert y.shape == (1, 500) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, 5:-5], np.sin(2 * np.pi * np.arange(500) / 50.0)[5:-5], atol=2e-3)
    assert resample(x, 20.0, 50.0).shape == (1, int((1000 - 1) * 2.5) + 1)
    # averaging over one output period removes a 50 Hz vibration that 50 Hz sampling would alias to a constant
    t200 = np.arange(2000) / 200.0
    vibration = np.sin(2 * np.pi * 50.0 * t200 + 0.3)[None, :]
    assert np.abs(resample(vibration, 200.0, 50.0)[0, 1:-1]).max() < 1e-6
    assert np.abs(vibration[0, ::4]).min() > 0.2  # plain decimation would have kept it


def test_fill_nan_interpolates_dropouts_but_refuses_absent_channels():
    x = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(fill_nan(x, max_fraction=0.6), [[1.0, 1.0, 2.0, 3.0, 3.0], [0, 0, 0, 0, 0]])
    assert fill_nan(x) is None  # 3 of 5 samples missing: more than the default half
    assert fill_nan(np.array([[np.nan, np.nan, 1.0]])) is None
    assert fill_nan(np.array([[np.nan, np.nan, 1.0]]), max_fraction=0.9) is not None


def test_coverage_stops_at_stream_gaps():
    t = np.array([0.0, 0.1, 0.2, 1.5, 1.6])
    grid = np.array([0.05, 0.2, 0.9, 1.55, 1.7])
    assert covered(t, grid, max_gap=0.5).tolist() == [True, True, False, True, False]
    assert true_runs(np.array([True, True, False, True])) == [(0, 2), (3, 4)]
    assert runs(np.array([1, 1, 2, 2, 2, 1])) == [(0, 2), (2, 5), (5, 6)]


def _info(users=("p1", "p2", "t1"), contexts=("home", "away")) -> DatasetInfo:
    return DatasetInfo(name="toy", channels=2, window=10, rate_hz=10.0, classes=("a", "b"), users=users,
                       contexts=tuple(ContextInfo(c) for c in contexts))


def _segment(user, context, label, n=60, offset=0.0, source=None, t0=0.0):
    signal = np.vstack([np.arange(n, dtype=np.float32) + offset, np.full(n, offset, np.float32)])
    return Segment(user, context, label, signal, 10.0, source or f"{user}:{context}:{label}", t0)


def test_adapt_is_the_earliest_k_windows_per_class_and_the_rest_never_overlaps_it():
    info = _info()
    segments = [_segment(u, "home", c) for u in info.users for c in (0, 1)]
    table = cut_windows(segments, info.users, ("home", "away"), 2, 10.0, 10, 5)
    t = build_splits(info, table, ["t1"], "home", [], k=3).targets["t1"]
    assert len(t.adapt) == 6 and set(t.adapt.start.tolist()) == {0, 5, 10}
    # 11 windows per class: 3 adapt, the one at 15 overlaps the adapt window at 10, 7 remain
    assert len(t.test_seen) == 14 and t.test_seen.start.min() == 20
    assert len(t.test_unseen) == 0 and t.test_unseen.x.shape == (0, 2, 10)


def test_normalisation_is_fitted_on_the_population_only():
    info = _info()
    segments = [_segment(u, "home", c, offset=100.0 if u == "t1" else 0.0) for u in info.users for c in (0, 1)]
    table = cut_windows(segments, info.users, ("home",), 2, 10.0, 10, 5)
    splits = build_splits(info, table, ["t1"], "home", [], k=2)
    pop = splits.population.x.numpy()
    np.testing.assert_allclose(pop.mean(axis=(0, 2)), [0.0, 0.0], atol=1e-5)
    assert pop[:, 0].std() == pytest.approx(1.0, rel=1e-4)
    assert (pop[:, 1] == 0).all()  # a constant channel is centred, not divided by zero
    assert splits.targets["t1"].adapt.x[:, 1].mean() == pytest.approx(100.0)  # the target's offset survives


def test_population_contexts_and_simultaneous_unseen_windows():
    info = _info()
    segments = []
    for u in info.users:
        for c in ("home", "away"):  # recorded at the same time on one clock
            segments.append(_segment(u, c, 0, source=f"{u}:clock", t0=100.0))
    table = cut_windows(segments, info.users, ("home", "away"), 2, 10.0, 10, 5)
    splits = build_splits(info, table, ["t1"], "home", ["away"], k=2)
    assert set(splits.population.context.tolist()) == {1}
    t = splits.targets["t1"]
    # adapt covers samples 0-14 of 'home'; 'away' windows starting before 15 saw the same moments
    assert t.test_unseen.start.min() == 15 and len(t.test_unseen) == 11 - 3


def test_split_errors_name_the_problem():
    info = _info()
    table = cut_windows([_segment("t1", "home", 0), _segment("p1", "away", 0)], info.users, ("home", "away"), 2,
                        10.0, 10, 5)
    with pytest.raises(ValueError, match="unknown target users"):
        build_splits(info, table, ["zz"], "home", [], k=2)
    with pytest.raises(ValueError, match="target user 'p1' has no windows in adapt_context 'home'"):
        build_splits(info, table, ["p1"], "home", [], k=2)
    with pytest.raises(ValueError, match="the population is empty"):
        build_splits(info, table, ["t1", "p1"], "home", [], k=2)


def test_too_few_windows_for_k_is_refused_in_one_line_naming_user_and_setting():
    info = _info()
    # t1 has 11 windows of class 0 but only 2 of class 1 (20 samples, window 10, stride 5 -> 3 windows)
    segments = [_segment(u, "home", 0) for u in info.users] + [_segment("t1", "home", 1, n=20),
                                                                _segment("p1", "home", 1)]
    table = cut_windows(segments, info.users, ("home",), 2, 10.0, 10, 5)
    assert len(build_splits(info, table, ["t1"], "home", [], k=3).targets["t1"].adapt) == 6  # 3 is enough
    with pytest.raises(ValueError) as err:
        build_splits(info, table, ["t1"], "home", [], k=4)
    assert str(err.value) == ("toy: target user 't1' in adapt_context 'home' has only 3 of 'b' windows, fewer "
                              "than k=4 per class: lower params.k (or choose other target users)")
    # enough windows of each class for k, but nothing left to test on
    with pytest.raises(ValueError, match=r"^toy: target user 't1' in adapt_context 'home': k=11 windows per class "
                                         r"leave no test_seen windows .*: lower params.k$"):
        build_splits(info, cut_windows([_segment(u, "home", 0) for u in info.users], info.users, ("home",), 2,
                                       10.0, 10, 5), ["t1"], "home", [], k=11)


def test_registered_through_the_entry_point_with_common_parameters():
    registry = get_registry(refresh=True)
    for cls in DATASETS:
        reg = registry.get("dataset", cls.name)
        assert reg.cls is cls and reg.distribution == "harbench-datasets"
        assert {"path", "window", "stride", "rate_hz", "adapt_context", "population_contexts", "users",
                "k"} <= set(cls.parameters)


@pytest.mark.parametrize("cls", [d for d in DATASETS if d.name != "recordings"], ids=lambda c: c.name)
def test_no_folder_gives_one_line_naming_the_layout(cls, tmp_path):
    with pytest.raises(LayoutError) as err:
        cls().describe()
    assert "HARBENCH_DATA" in str(err.value) and "expected layout" in str(err.value)
    with pytest.raises(LayoutError) as err:
        cls(path=str(tmp_path / "nowhere")).describe()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{cls.name}: ") and cls.folder in message


def test_fingerprint_follows_the_files_and_parse_parameters(tmp_path):
    from harbench_datasets import WISDM, fabricate

    root, _ = fabricate.wisdm(tmp_path, defects=False)
    first = WISDM(path=str(root)).describe().extra["fingerprint"]
    assert WISDM(path=str(root), k=3).describe().extra["fingerprint"] == first  # split-only knob
    assert WISDM(path=str(root), max_gap_s=5.0).describe().extra["fingerprint"] != first
    raw = root / "WISDM_ar_v1.1_raw.txt"
    raw.write_text(raw.read_text() + "1,Walking,0,0.1,9.8,0.2;\n")
    assert WISDM(path=str(root)).describe().extra["fingerprint"] != first
