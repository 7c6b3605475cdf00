"""The teacher's accuracy after every epoch: how long it must train to be a teacher (issue #33).

Trains SMLDist's teacher (the method's own network, seed, split and Adam) one epoch at a time and prints, per
epoch, its accuracy on the population's validation split (what the method's epoch selection sees) and on the
target users' seen-context test windows. One torch thread.

    python plugins/harbench-smldist/scripts/teacher_curve.py sp-sw-har --epochs 20        # $HARBENCH_DATA set
    python plugins/harbench-smldist/scripts/teacher_curve.py synthetic --epochs 80        # suites/smldist.yaml's data
"""

from __future__ import annotations

import argparse
import time

import torch
from harbench_smldist import SMLDist

from harbench import MethodContext, accuracy, cross_entropy, fit, make_optimizer, predict, split_train_val
from harbench.testing import registry as get_registry

SETTINGS = {
    # suites/real-sp-sw-har-fidelity.yaml, phone -> watch, fold 1 (targets s01-s08)
    "sp-sw-har": ("sp-sw-har", dict(adapt_context="phone"), 8, {}),
    # suites/smldist.yaml
    "synthetic": ("synthetic-drift", dict(users=16, windows=18, k=6, unseen_windows=8, contexts=["home", "sensor"]),
                  12, dict(channel_divisor=16, batch_size=64)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", choices=sorted(SETTINGS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    name, data_params, n_targets, method_params = SETTINGS[args.setting]
    dataset = get_registry().get("dataset", name).cls(**data_params)
    splits = dataset.load(args.seed, list(dataset.describe().users)[:n_targets])
    method = SMLDist(**method_params)
    ctx = MethodContext(seed=args.seed, info=splits.info)
    train, val = split_train_val(splits.population, method.params.val_fraction)
    teacher = method._seeded_network(method._config(splits.info, "teacher"), args.seed * 7919 + 1)
    optimizer = make_optimizer(teacher.parameters(), "adam", method.params.lr)
    seen = [t.test_seen for t in splits.targets.values()]
    seen_x, seen_y = torch.cat([w.x for w in seen]), torch.cat([w.y for w in seen])
    generator, start = ctx.generator(1), time.perf_counter()
    print(f"{args.setting}: {len(train)} training windows, {len(val)} validation, batch {method.params.batch_size}")
    for epoch in range(1, args.epochs + 1):
        fit(teacher, train, epochs=1, optimizer=optimizer, batch_size=method.params.batch_size, generator=generator,
            loss_fn=cross_entropy)
        teacher.eval()
        print(f"epoch {epoch} val {accuracy(val.y, predict(teacher, val.x)):.3f} "
              f"targets_seen {accuracy(seen_y, predict(teacher, seen_x)):.3f} t={time.perf_counter() - start:.0f}s",
              flush=True)


if __name__ == "__main__":
    main()
