"""How large CRoP's L1 term is against the cross-entropy on real data, and what step 1 does with it on and off.

The authors' loss (``Extrasensory/run_EXTRASENSORY_PERSONAL_aaai.py``, ``CostumLoss``) is ``CE + γ·Σ|W|`` with the
sum over every Conv/Linear weight and γ a raw Adam parameter starting at 0.5. This prints, on sp-sw-har with the
suite's generic recipe (``suites/real-sp-sw-har-fidelity.yaml``: resnet1d, 10 epochs at Adam 3e-3, batch 64):

* Σ|W| of the generic model and, per target user, the step-0 CE, 0.5·Σ|W| / CE and the per-weight |∂CE/∂w|
  against the penalty's per-weight gradient 0.5 (Adam normalises each coordinate, so the larger term sets the
  direction of every step);
* CRoP's step 1 (the plugin's ``train_phase``, its split and mini-batches from ``CRoP.run``'s generator) with the
  penalty on (α0 = 0.5) and off (α0 = 0): steps, α at the end, train balanced accuracy before/after, Σ|W| after,
  and the share of penalised weights whose magnitude fell.

It reads the unseen context of no one and changes nothing; it is a diagnostic for docs/plugins/crop.md
("Fidelity round 3 audit").

    HARBENCH_DATA=/path/to/data python plugins/harbench-crop/scripts/penalty_scale.py --adapt-context phone
"""

from __future__ import annotations

import argparse
from typing import cast

import torch
from harbench_crop import CRoP, L1Objective, regularised_weights
from harbench_crop.method import SALT
from harbench_crop.pipeline import train_phase
from harbench_crop.scores import score

from harbench import Dataset, MethodContext, build_backbone, cross_entropy, fit, frozen_copy, make_optimizer, predict
from harbench.testing import registry


def _trainable(model: torch.nn.Module) -> torch.nn.Module:
    m = frozen_copy(model)
    for p in m.parameters():
        p.requires_grad_(True)
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapt-context", default="phone", choices=("phone", "watch"))
    parser.add_argument("--users", default="s01,s02,s03", help="target users, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generic-epochs", type=int, default=10, help="the suite's generic: {epochs: 10}")
    parser.add_argument("--epochs", type=int, default=30, help="step-1 epochs (the suite's crop: 30)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    users = args.users.split(",")
    dataset = cast(Dataset, registry().get("dataset", "sp-sw-har").cls(adapt_context=args.adapt_context))
    splits = dataset.load(args.seed, users)
    info = splits.info
    torch.manual_seed(args.seed)
    generic = build_backbone("resnet1d", info.channels, info.num_classes)
    fit(generic, splits.population, epochs=args.generic_epochs, batch_size=64,
        optimizer=make_optimizer(generic.parameters(), "adam", 3e-3), generator=torch.Generator().manual_seed(args.seed))
    generic.eval()

    weights = {n: w.detach().abs() for n, w in regularised_weights(generic).items()}
    l1 = float(sum(w.sum() for w in weights.values()))
    n = sum(w.numel() for w in weights.values())
    print(f"penalised weights {n}; sum|W| {l1:.0f} (mean |w| {l1 / n:.4f}); 0.5*sum|W| = {0.5 * l1:.0f}")
    method = CRoP()
    cfg = method.config()
    for user in users:
        generator = MethodContext(seed=args.seed, info=info).generator(salt=SALT)
        train, val = method.split(splits.targets[user].adapt, generator)
        after_split = generator.get_state()  # run_crop draws step 1's mini-batches from here on
        probe = _trainable(generic)
        probe.train()
        ce = cross_entropy(probe, train.x, train.y)
        grads = torch.autograd.grad(ce, list(regularised_weights(probe).values()))
        g = torch.cat([x.abs().flatten() for x in grads])
        print(f"{user}: {len(train)} train windows; step-0 CE {float(ce.detach()):.3f}, 0.5*sum|W|/CE "
              f"{0.5 * l1 / float(ce.detach()):.0f}; |dCE/dw| median {float(g.median()):.1e}, 99th pct "
              f"{float(g.quantile(0.99)):.1e}, share above 0.5: {float((g > 0.5).float().mean()):.4f}")
        before = score("balanced_accuracy", train.y, predict(generic, train.x))
        for alpha0 in (cfg.alpha0, 0.0):
            model = _trainable(generic)
            generator.set_state(after_split)  # the same mini-batches with the penalty on and off
            phase = train_phase(model, L1Objective(alpha0, cfg.alpha_mode), train, val, epochs=args.epochs, lr=cfg.lr,
                                batch_size=cfg.batch_size, generator=generator,
                                select_by=cfg.select_by, keep="last", select_initial=False)
            after = {k: w.detach().abs() for k, w in regularised_weights(model).items()}
            shrunk = float(torch.cat([(after[k] < weights[k]).float().flatten() for k in weights]).mean())
            print(f"  alpha0 {alpha0}: {phase.fit.optimizer_steps} steps, alpha end {phase.alpha_end:.4f}; train bacc "
                  f"{before:.3f} -> {score('balanced_accuracy', train.y, predict(model, train.x)):.3f}; sum|W| "
                  f"{float(sum(w.sum() for w in after.values())):.0f}; share of weights shrunk {shrunk:.3f}")


if __name__ == "__main__":
    main()
