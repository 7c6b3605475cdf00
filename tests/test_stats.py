import numpy as np
import torch

from harbench import macro_f1
from harbench.measure import latency_loop
from harbench.stats import Stats, mean_std


def test_percentiles_match_numpy_linear():
    rng = np.random.default_rng(0)
    data = rng.exponential(size=257).tolist()
    for q in (0, 1, 50, 90, 99, 99.5, 100):
        assert abs(Stats(data).percentile(q) - np.percentile(data, q)) < 1e-9


def test_mean_std_ignores_missing():
    assert mean_std([1.0, None, 3.0, float("nan")]) == (2.0, np.std([1.0, 3.0], ddof=1))


def test_macro_f1():
    y = torch.tensor([0, 0, 1, 1])
    assert macro_f1(y, y, 3) == 1.0
    assert abs(macro_f1(y, torch.tensor([0, 1, 1, 1]), 2) - (2 / 3 + 0.8) / 2) < 1e-9


def test_latency_loop_reaches_min_count_and_keeps_raw_samples():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    run = latency_loop(model, torch.randn(1, 3, 4), warmup=2, min_duration_s=0.0, min_count=37)
    assert len(run.samples_s) == 37 and all(s > 0 for s in run.samples_s)
