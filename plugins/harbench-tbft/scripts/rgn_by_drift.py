"""How often Auto-RGN picks the planted block, per drift strength, on the tests' synthetic world.

    ATEN_CPU_CAPABILITY=default python plugins/harbench-tbft/scripts/rgn_by_drift.py --strength 1 --targets 8
    ATEN_CPU_CAPABILITY=avx2    python plugins/harbench-tbft/scripts/rgn_by_drift.py --strength 1 --targets 8

Prints, for ``sensor`` (input drift, expected ``front``) and ``labels`` (output drift, expected ``fc``): how many users'
argmax is the expected block, and the geometric mean and minimum over users of (expected block's score / best other
block's score). The TBFT README's "Auto-RGN" section quotes these lines.
"""

from __future__ import annotations

import argparse
import math
import os
from collections import Counter

import torch
from harbench_tbft import relative_gradient_norms

from harbench import build_backbone, fit, make_optimizer
from harbench.testing import synthetic_drift


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--targets", type=int, default=8)
    ap.add_argument("--users", type=int, default=14)
    ap.add_argument("--epochs", type=int, default=6, help="generic model's epochs (the tests use 6)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    targets = [f"u{i:02d}" for i in range(a.targets)]

    def load(ctx: str):
        return synthetic_drift(users=a.users, contexts=["home", "sensor", "recovery", "labels"], adapt_context=ctx,
                               windows=12, k=6, unseen_windows=2, sessions=2, strength=a.strength).load(0, targets)

    torch.manual_seed(0)
    home = load("home")
    generic = build_backbone("resnet1d", home.info.channels, home.info.num_classes)
    fit(generic, home.population, epochs=a.epochs, optimizer=make_optimizer(generic.parameters(), "adam", 3e-3),
        batch_size=32, generator=torch.Generator().manual_seed(0))
    generic.eval()
    kernel = os.environ.get("ATEN_CPU_CAPABILITY", "native")
    for ctx, expected in (("sensor", "front"), ("labels", "fc")):
        drifted, ratios, winners = load(ctx), [], Counter()
        for u in targets:
            s = relative_gradient_norms(generic, drifted.targets[u].adapt)
            winners[max(s, key=s.__getitem__)] += 1
            ratios.append(s[expected] / max(v for b, v in s.items() if b != expected))
        gm = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"kernel={kernel} strength={a.strength:g} {ctx}: {expected} wins {winners[expected]}/{len(targets)}, "
              f"ratio geo-mean {gm:.2f}, min {min(ratios):.2f}, winners {dict(winners)}")


if __name__ == "__main__":
    main()
