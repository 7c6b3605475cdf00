import pytest
import torch

from harbench import Windows
from harbench.builtin.datasets import SyntheticDrift
from harbench.run.leakage import LeakageError, check_splits

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


# ------------------------------------------------------------------------------------------------ the gait context
def test_gait_context_is_a_feature_drift_not_in_the_defaults():
    from harbench.data.synthetic import CONTEXTS, SyntheticConfig

    assert CONTEXTS["gait"].drift == "feature"
    assert "gait" not in SyntheticConfig().contexts
    assert "gait" not in {c.name for c in SyntheticDrift().describe().contexts}
    s = SyntheticDrift(**PARAMS, contexts=["gait", "home"], adapt_context="gait").load(0, ["u00"])
    assert s.targets["u00"].adapt_context == "gait"
    check_splits(s, "synthetic-drift")


def test_existing_contexts_are_unchanged():
    """Published results depend on these exact numbers (computed before the gait context existed)."""
    s = SyntheticDrift(**PARAMS).load(0, ["u00", "u01"])
    t = s.targets["u00"]
    expected = {
        "population": (s.population.x, (144, 6, 128), 10983.551434788482, 43335.16570190583,
                       [-0.25992047786712646, 0.7313817143440247, 0.10642465949058533, 0.3459162712097168,
                        0.11017857491970062, -0.3315848112106323]),
        "adapt": (t.adapt.x, (18, 6, 128), 1949.1549500747349, 5257.540391645196,
                  [0.3174714744091034, 0.7604462504386902, 0.09849415719509125, -0.07345330715179443,
                   -0.2760956585407257, 0.07322701811790466]),
        "seen": (t.test_seen.x, (24, 6, 128), 2522.54341294987, 7199.619375287211,
                 [-0.012362384237349033, 0.5189230442047119, 0.02046709880232811, 0.330268919467926,
                  -0.15920566022396088, -0.9093707799911499]),
        "unseen": (s.targets["u01"].test_unseen.x, (70, 6, 128), 7643.66160595765, 20448.016290890904,
                   [-0.04991072416305542, 0.7939848899841309, 0.44792425632476807, 0.018726583570241928,
                    -0.2285119742155075, 0.008295233361423016]),
    }
    for name, (x, shape, total, abs_total, first) in expected.items():
        assert tuple(x.shape) == shape, name
        assert x.double().sum().item() == pytest.approx(total, rel=1e-9, abs=1e-6), name
        assert x.double().abs().sum().item() == pytest.approx(abs_total, rel=1e-9), name
        assert x[0, :, 5].tolist() == pytest.approx(first, abs=1e-6), name


def _spectrum(x: torch.Tensor):
    import numpy as np

    a = x[:, :3].double().numpy()
    a = (a - a.mean(-1, keepdims=True)) * np.hanning(a.shape[-1])
    power = (np.abs(np.fft.rfft(a, n=2048, axis=-1)) ** 2).sum(1).mean(0)
    return np.fft.rfftfreq(2048, 1 / 50.0), power


def _gait_stats(w: Windows, cls: int, cadence: float | None = None):
    """(cadence, stride/step power ratio, share of still 0.3 s segments) of one activity's windows."""
    import numpy as np

    x = w.x[w.y == cls]
    f, p = _spectrum(x)
    lo, hi = (1.2, 3.5) if cadence is None else (0.8 * cadence, 1.25 * cadence)
    band = (f > lo) & (f < hi)
    step = float(f[band][np.argmax(p[band])])
    ref = cadence or step
    stride = p[(f > 0.42 * ref) & (f < 0.58 * ref)].sum() / p[(f > 0.85 * ref) & (f < 1.15 * ref)].sum()
    seg = x[:, :3, :120].reshape(len(x), 3, 8, 15).std(-1).sum(1)
    still = float((seg < 0.5 * seg.median()).double().mean())
    return step, float(stride), still


def test_gait_keeps_the_cadence_but_changes_the_composition_of_steps():
    import numpy as np

    ds = SyntheticDrift(users=5, windows=24, sessions=3, k=3, unseen_windows=24, contexts=["home", "gait", "recovery"])
    s = ds.load(0, ["u00", "u01", "u02", "u03"])
    cad, stride, still = {"gait": [], "recovery": []}, {"home": [], "gait": []}, {"home": [], "gait": []}
    for t in s.targets.values():
        home = Windows.concat([t.adapt, t.test_seen])
        by_ctx = {name: t.test_unseen.subset(torch.nonzero(t.test_unseen.context == i).flatten())
                  for i, name in ((1, "gait"), (2, "recovery"))}
        for cls in (0, 1):  # walking, jogging
            step, h_stride, h_still = _gait_stats(home, cls)
            for c in ("gait", "recovery"):
                cad[c].append(_gait_stats(by_ctx[c], cls, cadence=step)[0] / step)
            _, g_stride, g_still = _gait_stats(by_ctx["gait"], cls, cadence=step)
            stride["home"].append(h_stride), stride["gait"].append(g_stride)
            still["home"].append(h_still), still["gait"].append(g_still)
    # the step frequency stays where it was at home (recovery, for contrast, slows it by about a third)
    assert abs(np.mean(cad["gait"]) - 1) < 0.05
    assert np.mean(cad["recovery"]) < 0.88
    # alternate steps differ (a limp): strong stride-frequency power, which home hardly has
    assert min(stride["gait"]) > 3 * max(stride["home"])
    # stop-and-go: still segments inside walking/jogging windows
    assert np.mean(still["gait"]) > np.mean(still["home"]) + 0.05
