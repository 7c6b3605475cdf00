"""Fabricated rows at the default suite's size and larger, for the figure and HTML layout tests: 8 method
configurations (some with long variant names), 4 targets (one measured with costs over three decades, three
estimated), 2 seeds x 6 users, accuracies near 100 % so intervals would cross it."""

from __future__ import annotations

import random

METHODS = [("generic", ""), ("finetune-full", "epochs=10"), ("finetune-last", "epochs=20"),
           ("tbft", "block=auto,epochs=5,recipe=auto,auto_by=rgn"), ("crop", "epochs=10,final_epochs=10,k=0.1,k_step=0.1"),
           ("duet", "episodes=150,eval_every=50,virtual_devices=1,umn_steps=100"),
           ("smldist", "teacher_epochs=4,stage_epochs=1,logits_epochs=4,adapt_epochs=10"), ("finetune-full", "epochs=3")]
TARGETS = [("cpu", "measured", "codecarbon-estimate"), ("rpi4", "estimated", "estimate:roofline-v1"),
           ("rpi5", "estimated", "estimate:roofline-v1"), ("jetson-xavier-agx", "estimated", "estimate:roofline-v1")]


def default_suite_rows(users: int = 6, seeds: int = 2) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for m, (method, variant) in enumerate(METHODS):
        base = 0.80 + 0.025 * m if m < 7 else 0.985
        for t, (hw, mode, energy) in enumerate(TARGETS):
            scale = 10.0 ** (m % 4) if hw == "cpu" else 1.0 + 0.3 * m  # three decades on cpu
            for s in range(seeds):
                for u in range(users):
                    acc = min(1.0, max(0.0, base + rng.gauss(0, 0.03)))
                    rows.append({"dataset": "synthetic-drift", "method": method, "variant": variant, "hardware": hw,
                                 "user": f"u{u:02d}", "seed": s, "status": "ok", "mode": mode,
                                 "acc_seen": acc, "acc_unseen": acc - 0.1, "gain_seen": acc - 0.8,
                                 "adapt_j": 0.0 if method == "generic" else scale * (1 + 0.01 * u),
                                 "adapt_s": 0.0 if method == "generic" else scale / 10,
                                 "latency_ms_p50": 0.40 + (0.001 * m if m in (1, 2) else 0.05 * m) + 0.1 * t,
                                 "adapt_peak_mb": 10.0 + 5 * m, "energy_method": energy})
    return rows


def default_suite_store(folder) -> int:
    """The rows above as a stored run (for views that read a results folder: the HTML page)."""
    from .test_report import job, make_run

    metrics = ("acc_seen", "acc_unseen", "gain_seen", "adapt_j", "adapt_s", "latency_ms_p50", "adapt_peak_mb",
               "energy_method")
    jobs = [job(r["method"], r["user"], seed=r["seed"], hardware=r["hardware"], variant=r["variant"], mode=r["mode"],
                **{m: r[m] for m in metrics}) for r in default_suite_rows()]
    return make_run(folder, jobs, suite="drift")
