"""DUET's adapt time: the first adapt of a process apart from the steady state.

The harness runs every adapt in a fresh process forked for the job (its device boundary), so every measured DUET
adapt in a suite run is the first of its process and pays one-off costs (the first GRU call, lazy kernel and
allocator set-up, rebuilding the generator from the cached tensors). A device that personalises repeatedly pays
them once. This script measures both on the suite's setting (synthetic-drift recovery, N = 16, d = 64):

* ``first``: ``--fresh`` new processes (``fork`` of a parent that has imported torch and built the generator but
  never run it), each timing its one and only adapt;
* ``steady``: ``--repeat`` adapts in one process after one warm-up adapt;

and the same for ``finetune-full`` (1, 5, 15 epochs) and ``finetune-last`` (1, 30 epochs) on the same user's k = 8
labelled windows per class, so the steady-state cost ratios come from one process on one machine state.
It prints a Markdown table: median and interquartile range in ms, and the ratios of medians to DUET's. Adapt cost
does not depend on how well the generator was trained, so the generic model and the generator are trained briefly.
``--json PATH`` stores the raw samples with the machine, its load and the commit; ``--from PATH`` prints the table
of a stored record without measuring (the DUET docs page is generated from the committed record that way).

    OMP_NUM_THREADS=1 .venv/bin/python plugins/harbench-duet/benchmarks/first_vs_steady.py --json RECORD.json
    .venv/bin/python plugins/harbench-duet/benchmarks/first_vs_steady.py --from plugins/harbench-duet/benchmarks/first_vs_steady.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import Any

SUITE_DATA = {"users": 24, "adapt_context": "recovery", "contexts": ["recovery", "home"],
              "population_contexts": ["home", "recovery"]}


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def render(record: dict[str, Any]) -> str:
    """The Markdown table of a record: per adapt, the first of a process and the steady state, and their ratios."""
    rows = ["| adapt | first adapt of a process: median ms [IQR] (n) | steady state: median ms [IQR] (n) "
            "| ratio to DUET, steady | ratio to DUET, first |", "|---|---|---|---|---|"]
    duet = record["samples"]["duet"]
    d_first, d_steady = statistics.median(duet["first"]), statistics.median(duet["steady"])
    for name, xs in record["samples"].items():
        cells = []
        for kind in ("first", "steady"):
            q1, med, q3 = quartiles(xs[kind])
            cells.append(f"{1000 * med:,.1f} [{1000 * q1:,.1f}, {1000 * q3:,.1f}] ({len(xs[kind])})")
        ratios = ["—", "—"] if name == "duet" else [f"{statistics.median(xs['steady']) / d_steady:,.0f}×",
                                                    f"{statistics.median(xs['first']) / d_first:,.0f}×"]
        rows.append(f"| {name} | {cells[0]} | {cells[1]} | {ratios[0]} | {ratios[1]} |")
    m = record["machine"]
    rows += ["", f"Recorded {record['created']} at commit {record['commit'][:12]} on {m['processor']} "
                 f"({m['cores']} cores), load average {m['load_average']:.1f} (the higher of start and end), one torch thread; DUET parameters: "
                 f"{record['duet_params'] or 'defaults'}."]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", type=int, default=8, help="fresh processes timing their first adapt")
    ap.add_argument("--repeat", type=int, default=30, help="steady-state adapts in one process")
    ap.add_argument("--params", default="", help="duet parameters, e.g. generate=sample,hidden=0")
    ap.add_argument("--ft-repeat", type=int, default=5, help="steady-state adapts of each fine-tuning budget")
    ap.add_argument("--ft-fresh", type=int, default=5, help="fresh processes per fine-tuning budget")
    ap.add_argument("--json", help="also store the record (raw samples, machine, load, commit) here")
    ap.add_argument("--from", dest="source", help="print the table of a stored record; measure nothing")
    args = ap.parse_args()
    if args.source:
        print(render(json.loads(Path(args.source).read_text())))
        return
    record = measure(args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    print(render(record))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from harbench_duet import Duet

    from harbench import MethodContext, UserData, build_backbone, fit, make_optimizer
    from harbench.testing import measured_on, registry, synthetic_drift  # the suite's dataset and baselines

    FineTune = registry().get("method", "finetune-full").cls
    FineTuneLast = registry().get("method", "finetune-last").cls
    started = measured_on()
    torch.set_num_threads(1)
    params = dict(kv.split("=", 1) for kv in args.params.split(",") if kv)
    params = {k: (int(v) if v.isdigit() else v) for k, v in params.items()}

    ds = synthetic_drift(**SUITE_DATA)
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

    labelled = UserData(targets[0], info.context(t.adapt_context), t.adapt)

    def one_adapt(method) -> float:
        data = user if method.label_free else labelled
        torch.manual_seed(1)
        t0 = time.perf_counter()
        method.adapt(generic, state if isinstance(method, Duet) else None, data, ctx)
        return time.perf_counter() - t0

    fork = mp.get_context("fork")

    def first_adapts(make, n: int) -> list[float]:
        def child(queue) -> None:
            torch.set_num_threads(1)
            queue.put(one_adapt(make()))  # a new instance, as the sandbox rebuilds it (DUET: its generator too)
        out = []
        for _ in range(n):
            queue = fork.Queue()
            proc = fork.Process(target=child, args=(queue,))
            proc.start()
            out.append(queue.get())
            proc.join()
        return out

    def steady_adapts(make, n: int) -> list[float]:
        method = make()
        one_adapt(method)  # warm-up
        return [one_adapt(method) for _ in range(n)]

    configs = [("duet", lambda: Duet(**params), args.fresh, args.repeat)]
    configs += [(f"finetune-full epochs={e}", (lambda e=e: FineTune(epochs=e)), args.ft_fresh, args.ft_repeat)
                for e in (1, 5, 15)]
    configs += [(f"finetune-last epochs={e}", (lambda e=e: FineTuneLast(epochs=e)), args.ft_fresh, args.ft_repeat)
                for e in (1, 30)]
    samples = {name: {"first": first_adapts(make, fresh), "steady": steady_adapts(make, repeat)}
               for name, make, fresh, repeat in configs}
    machine = {"processor": started["processor"], "cores": started["cores"],
               "load_average": max(started["load_average"], os.getloadavg()[0])}  # the busier of start and end
    return {"created": started["created"], "commit": started["commit"], "machine": machine,
            "duet_params": args.params, "samples": samples}


if __name__ == "__main__":
    main()
