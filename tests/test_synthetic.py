import torch

from harbench import Windows
from harbench.builtin.datasets import SyntheticDrift
from harbench.leakage import LeakageError, check_splits

import pytest

PARAMS = dict(users=5, windows=8, sessions=2, k=3, unseen_windows=3)


def test_shapes_users_and_contexts():
    ds = SyntheticDrift(**PARAMS)
    info = ds.describe()
    s = ds.load(0, ["u00", "u01"])
    assert (info.channels, info.window, info.rate_hz, len(info.classes)) == (6, 128, 50.0, 6)
    assert {c.drift for c in info.contexts} == {None, "input", "feature", "output"}
    assert s.population.x.dtype == torch.float32 and s.population.y.dtype == torch.int64
    t = s.targets["u00"]
    assert t.adapt.x.shape[1:] == (6, 128) and len(t.adapt) == 3 * 6
    assert set(t.unseen_contexts) == {"sensor", "recovery", "labels"}
    check_splits(s, "synthetic-drift")


def test_deterministic_per_seed():
    a = SyntheticDrift(**PARAMS).load(3, ["u00"])
    b = SyntheticDrift(**PARAMS).load(3, ["u00"])
    c = SyntheticDrift(**PARAMS).load(4, ["u00"])
    assert torch.equal(a.population.x, b.population.x)
    assert torch.equal(a.targets["u00"].test_unseen.x, b.targets["u00"].test_unseen.x)
    assert not torch.equal(a.population.x, c.population.x)


def test_drifts_change_the_signal_and_strength_zero_removes_them():
    def stats(strength):
        s = SyntheticDrift(**PARAMS, strength=strength).load(0, ["u00"])
        t = s.targets["u00"]
        return t.test_seen.x.mean((0, 2)), t.test_unseen.x.mean((0, 2))

    seen, unseen = stats(1.0)
    assert (seen[:3] - unseen[:3]).abs().max() > 0.05  # sensor rotation/bias moves the gravity projection


def test_leakage_check_catches_overlapping_windows():
    s = SyntheticDrift(**PARAMS).load(0, ["u00"])
    t = s.targets["u00"]
    t.test_seen = Windows.concat([t.test_seen, t.adapt.subset([0])])
    with pytest.raises(LeakageError, match="overlap"):
        check_splits(s, "synthetic-drift")


def test_leakage_check_catches_a_target_user_in_the_population():
    s = SyntheticDrift(**PARAMS).load(0, ["u00"])
    s.population = Windows.concat([s.population, s.targets["u00"].test_unseen])
    with pytest.raises(LeakageError, match="population"):
        check_splits(s, "synthetic-drift")
