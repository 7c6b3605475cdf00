"""GIP between the available and the unseen context along CRoP's stages, outside the harness.

The harness never gives a method the unseen context, so this diagnostic builds the synthetic splits itself,
trains a generic model like the harness does, runs CRoP's four steps on each target user's available-context
data (the method's own code path) and only then measures, with the user's test windows of both contexts:

* accuracy on the seen and unseen context of the generic, fine-tuned, pruned, mixed and final models;
* GIP = ‖G_seen + G_unseen‖² − ‖G_seen‖² − ‖G_unseen‖² for each of them.

The paper reports GIP strongly negative after fine-tuning, higher after pruning and ≥ 0 after mixing.

CRoP runs through ``CRoP.run`` — the code path of ``adapt`` — with the harness's ``MethodContext(seed, info)``, so
the split and every mini-batch come from the method's own generator (``ctx.generator(salt=SALT)``): with the same
dataset parameters, seed, target users and generic recipe as a suite, it diagnoses the run the harness reports.
Method parameters can be given as JSON (``--params '{"final_lr": 1e-3}'``).

    python plugins/harbench-crop/scripts/gip_stages.py --adapt-context sensor --users 4 --seed 0
"""

from __future__ import annotations

import argparse
import json
from statistics import mean

import torch
from harbench_crop import CRoP, gip_by_stage

from harbench import MethodContext, accuracy, build_backbone, fit, make_optimizer, predict
from harbench.testing import synthetic_drift

STAGES = ("generic", "finetuned", "pruned", "mixed", "final")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapt-context", default="sensor", choices=("sensor", "recovery"))
    parser.add_argument("--users", type=int, default=5, help="target users (suites/crop.yaml: 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generic-epochs", type=int, default=6)
    parser.add_argument("--params", default="{}", help="CRoP parameters as JSON (default: the method's defaults)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    dataset = synthetic_drift(users=14, contexts=[args.adapt_context, "home"], adapt_context=args.adapt_context)
    splits = dataset.load(args.seed, [f"u{i:02d}" for i in range(args.users)])
    info = splits.info
    generic = build_backbone("resnet1d", info.channels, info.num_classes)
    fit(generic, splits.population, epochs=args.generic_epochs, optimizer=make_optimizer(generic.parameters(), "adam", 3e-3),
        batch_size=64, generator=torch.Generator().manual_seed(args.seed))
    generic.eval()

    method = CRoP(**json.loads(args.params))
    ctx = MethodContext(seed=args.seed, info=info)  # what the runner hands to adapt
    gips: dict[str, list[float]] = {s: [] for s in STAGES}
    print(f"{'user':5} {'stage':10} {'acc seen':>9} {'acc unseen':>11} {'GIP':>12}")
    for name, target in splits.targets.items():
        run, _ = method.run(generic, target.adapt, ctx)
        stage_gip = gip_by_stage(generic, run, target.adapt, target.test_unseen)
        models = dict(generic=generic, finetuned=run.finetuned, pruned=run.pruned, mixed=run.mixed, final=run.final)
        for stage in STAGES:
            model, value = models[stage], getattr(stage_gip, stage)
            gips[stage].append(value)
            seen = accuracy(target.test_seen.y, predict(model, target.test_seen.x))
            unseen = accuracy(target.test_unseen.y, predict(model, target.test_unseen.x))
            print(f"{name:5} {stage:10} {seen:9.3f} {unseen:11.3f} {value:12.4g}")
        print(f"{'':5} sparsity {run.prune.sparsity:.2f}, step 4 kept epoch {run.step4.kept_epoch}, "
              f"α step 1 {run.step1.alpha_start:.3g} → {run.step1.alpha_end:.3g}, "
              f"step 4 {run.step4.alpha_start:.3g} → {run.step4.alpha_end:.3g}")
    print("mean GIP: " + ", ".join(f"{s} {mean(v):.4g}" for s, v in gips.items()))


if __name__ == "__main__":
    main()
