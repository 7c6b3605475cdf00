"""Time each method's adapt phase and batch-1 inference on small synthetic data (pytest-benchmark).

    pytest tests/benchmarks --benchmark-autosave
    pytest tests/benchmarks --benchmark-compare --benchmark-compare-fail=median:10%
"""

from __future__ import annotations

import pytest
import torch

from harbench import AdaptResult
from harbench.plugins import get_registry

BUILTIN = ("generic", "finetune-last", "finetune-full")
# Parameters that keep each method's prepare and adapt small enough for a benchmark on tiny data.
CHEAP = {
    "finetune-last": {"epochs": 2},
    "finetune-full": {"epochs": 2},
    "crop": {"epochs": 2, "final_epochs": 2},
    "tbft": {"epochs": 2},
    "duet": {"umn_steps": 5, "episodes": 4, "eval_every": 4, "meta_batch": 2, "query_size": 8,
             "virtual_devices": 0, "buffer_size": 8},
    "smldist": {"teacher_epochs": 1, "stage_epochs": 1, "logits_epochs": 1, "adapt_epochs": 2,
                "teacher_width": 0.5, "student_width": 0.5, "neck": 32, "memory_slots": 8, "memory_dim": 16},
}
METHODS = get_registry().names("method")


def _bench(harbench_method, full_benchmark: bool, name: str):
    if name not in BUILTIN and not full_benchmark:
        pytest.skip("plugin methods are benchmarked with `pytest tests/benchmarks`")
    return harbench_method(name, **CHEAP.get(name, {}))


@pytest.mark.parametrize("name", METHODS)
def test_adapt(benchmark, harbench_method, full_benchmark, name):
    bench = _bench(harbench_method, full_benchmark, name)
    result = benchmark.pedantic(bench.adapt, rounds=5 if full_benchmark else 1, iterations=1)
    assert isinstance(result, AdaptResult)
    benchmark.extra_info.update({"optimizer_steps": result.facts.optimizer_steps,
                                 "params_trained": result.facts.params_trained})


@pytest.mark.parametrize("name", METHODS)
def test_inference(benchmark, harbench_method, harbench_splits, full_benchmark, name):
    bench = _bench(harbench_method, full_benchmark, name)
    bench.personalized  # adapt once, untimed
    if full_benchmark:
        out = benchmark(bench.inference)
    else:
        out = benchmark.pedantic(bench.inference, rounds=3, iterations=1)
    assert out.shape == (1, harbench_splits.info.num_classes) and bool(torch.isfinite(out).all())
