"""DUET's adapt time: the first adapt of a process apart from the steady state.

The harness runs every adapt in a fresh process forked for the job (its device boundary), so every measured DUET
adapt in a suite run is the first of its process and pays one-off costs (the first GRU call, lazy kernel and
allocator set-up, rebuilding the generator from the cached tensors). A device that personalises repeatedly pays
them once. This script measures both on the suite's setting (synthetic-drift recovery, N = 16, d = 64):

* ``first``: ``--fresh`` new processes (``fork`` of a parent that has imported torch and built the generator but
  never run it), each timing its one and only adapt;
* ``steady``: ``--repeat`` adapts in one process after one warm-up adapt.

It prints median and interquartile range in ms. Adapt cost does not depend on how well the generator was trained,
so the generic model and the generator are trained briefly.

    OMP_NUM_THREADS=1 .venv/bin/python plugins/harbench-duet/benchmarks/first_vs_steady.py
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

import torch

from harbench import MethodContext, UserData, build_backbone, fit, make_optimizer
from harbench.builtin.datasets import SyntheticDrift  # the suite's dataset (a script, not plugin code)
from harbench_duet import Duet

SUITE_DATA = {"users": 24, "adapt_context": "recovery", "contexts": ["recovery", "home"],
              "population_contexts": ["home", "recovery"]}


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", type=int, default=8, help="fresh processes timing their first adapt")
    ap.add_argument("--repeat", type=int, default=50, help="steady-state adapts in one process")
    ap.add_argument("--params", default="", help="duet parameters, e.g. generate=sample,hidden=0")
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = dict(kv.split("=", 1) for kv in args.params.split(",") if kv)
    params = {k: (int(v) if v.isdigit() else v) for k, v in params.items()}

    ds = SyntheticDrift(**SUITE_DATA)
    info = ds.describe()
    targets = list(info.users[:8])
    splits = ds.load(0, targets)
    torch.manual_seed(0)
    generic = build_backbone("resnet1d", info.channels, info.num_classes)
    fit(generic, splits.population, epochs=1, optimizer=make_optimizer(generic.parameters(), "adam", 3e-3),
        batch_size=64, generator=torch.Generator().manual_seed(0))
    generic.eval()
    for p in generic.parameters():
        p.requires_grad_(False)
    ctx = MethodContext(seed=0, info=info)
    state = Duet(episodes=20, umn_steps=20, **params).prepare(generic, splits.population, ctx)
    t = splits.targets[targets[0]]
    user = UserData(targets[0], info.context(t.adapt_context), t.adapt.without_labels())

    def one_adapt(method: Duet) -> float:
        t0 = time.perf_counter()
        method.adapt(generic, state, user, ctx)
        return time.perf_counter() - t0

    def child(queue) -> None:
        torch.set_num_threads(1)
        queue.put(one_adapt(Duet(**params)))  # a new instance, as the sandbox rebuilds it: the generator too

    fork = mp.get_context("fork")
    first = []
    for _ in range(args.fresh):
        queue = fork.Queue()
        proc = fork.Process(target=child, args=(queue,))
        proc.start()
        first.append(queue.get())
        proc.join()
    method = Duet(**params)
    one_adapt(method)  # warm-up
    steady = [one_adapt(method) for _ in range(args.repeat)]
    rebuilt = []
    for _ in range(min(args.repeat, 20)):  # warm process, but the generator rebuilt from the state every time
        rebuilt.append(one_adapt(Duet(**params)))
    for name, xs in (("first adapt of a process", first), ("steady state (same instance)", steady),
                     ("warm process, new instance", rebuilt)):
        q1, med, q3 = quartiles(xs)
        print(f"{name:32s} n={len(xs):3d}  median {1000 * med:7.2f} ms  IQR [{1000 * q1:.2f}, {1000 * q3:.2f}] ms")


if __name__ == "__main__":
    main()
