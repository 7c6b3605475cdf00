"""Judging claims at scale (issue #32): 10^4 claims over 12 users × 3 seeds in one family, and the coverage
simulation the CI gate runs.

Targets: the family judged in < 5 s (median of ``--repeat`` runs); the gated simulation (2,000 data sets per case)
in < 60 s on 2 cores. Usage: python benchmarks/verdicts.py [--claims N] [--users N] [--seeds N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from tabulate import tabulate

from harbench import Claim, Unit, judge_family
from harbench.stats import simulate


def make_claims(n: int, users: int, seeds: int, rng: np.random.Generator) -> list[Claim]:
    """Half the claims carry an effect, a quarter a claimed size (power for the inconclusive ones), some a margin."""
    seed_fx = rng.normal(0, 0.3, (n, seeds, 1))
    user_fx = rng.normal(0, 1.0, (n, 1, users))
    effect = np.where(np.arange(n) % 2 == 0, 0.8, 0.0)[:, None, None]
    grid = effect + seed_fx + user_fx + rng.normal(0, 0.3, (n, seeds, users))
    keys = [Unit(f"u{u}", s) for s in range(seeds) for u in range(users)]
    return [Claim(f"claim {i}", dict(zip(keys, grid[i].ravel().tolist())), claimed=1.0 if i % 4 == 1 else None,
                  margin=0.5 if i % 8 == 3 else None) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reps", type=int, default=2000, help="simulated data sets per coverage case")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    claims = make_claims(args.claims, args.users, args.seeds, np.random.default_rng(0))
    judge_family("warm-up", claims[:20])  # imports scipy: a one-off cost of the process, not of judging
    judge_times, verdicts = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        verdicts = judge_family("benchmark", claims)
        judge_times.append(time.perf_counter() - t)
    t = time.perf_counter()
    cases = simulate.run(reps=args.reps, data=simulate.GATED)
    sim = time.perf_counter() - t
    outcomes = {o: sum(v.outcome == o for v in verdicts) for o in sorted({v.outcome for v in verdicts})}
    print(tabulate([
        [f"judge {args.claims:,} claims, {args.users} users × {args.seeds} seeds, one family",
         f"{statistics.median(judge_times):.2f} s", "< 5 s", ", ".join(f"{k} {n}" for k, n in outcomes.items())],
        [f"coverage simulation, {len(cases)} gated cases × {args.reps} data sets", f"{sim:.2f} s", "< 60 s",
         f"{sum(c.passes for c in cases)}/{len(cases)} pass the gate"],
    ], headers=["what", "median time", "target", "result"], tablefmt="github"))


if __name__ == "__main__":
    main()
