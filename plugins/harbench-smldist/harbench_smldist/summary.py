"""The paper-style summary for ``harbench report``: SMLDist's variants, their size and speed, and a verdict per claim.

Pure over export rows (dicts), so it is unit-tested on fabricated rows. Rows are grouped by hardware and by the
method parameters other than ``variant`` (a "setting"). A setting with ``adapt_scope='none'`` is the paper's
protocol (the distilled network scored as is on the target users' test windows); any other is labelled as
harbench's extension (personalization after distillation).

Every claim is a statement about a per-user value (seeds averaged within a user first) judged by
``harbench.judge`` (95 % bootstrap interval over users, verdict reproduced / not reproduced / inconclusive); the
paired accuracy differences also get a two-sided Wilcoxon signed-rank test (scipy), Holm-corrected over the
comparisons of the setting.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

from harbench import bootstrap_interval, judge, paired, per_user_mean

from .paper import SMALLER_HIGH, SMALLER_LOW

METHOD = "smldist"
ORDER = ("teacher", "student-scratch", "student-hinton", "student-hinton-t4", "smldist",
         "smldist-no-stage", "smldist-no-memory", "smldist-no-conditional")
ACC_MARGIN = 0.02  # "student accuracy close to the teacher's": within 2 points
NONINFERIORITY = 0.01  # "at least as good as Hinton KD": not worse by more than 1 point

# (claim, variant a, variant b, metric, threshold): mean over users of a - b must exceed the threshold
PAIRED_CLAIMS = (
    (f"smldist acc within {100 * ACC_MARGIN:.0f} pts of the teacher", "smldist", "teacher", "acc_seen", -ACC_MARGIN),
    (f"smldist macro-F1 within {100 * ACC_MARGIN:.0f} pts of the teacher", "smldist", "teacher", "f1_seen",
     -ACC_MARGIN),
    ("smldist beats student-scratch (acc)", "smldist", "student-scratch", "acc_seen", 0.0),
    (f"smldist at least as good as student-hinton [code: T=1, no T^2] (acc, margin {100 * NONINFERIORITY:.0f} pt)",
     "smldist", "student-hinton", "acc_seen", -NONINFERIORITY),
    (f"smldist at least as good as student-hinton-t4 [T=4, T^2] (acc, margin {100 * NONINFERIORITY:.0f} pt)",
     "smldist", "student-hinton-t4", "acc_seen", -NONINFERIORITY),
    ("stage distillation helps: smldist - smldist-no-stage (acc; matched epochs when student_budget=matched)",
     "smldist", "smldist-no-stage", "acc_seen", 0.0),
    ("memory distillation helps: smldist - smldist-no-memory (acc)", "smldist", "smldist-no-memory", "acc_seen", 0.0),
    ("the conditional rule helps: smldist - smldist-no-conditional (acc)", "smldist", "smldist-no-conditional",
     "acc_seen", 0.0),
)


def _variant(row: dict) -> str:
    return (row.get("method_params") or {}).get("variant", "smldist")


def _setting(row: dict) -> str:
    others = {k: v for k, v in (row.get("method_params") or {}).items() if k != "variant"}
    return json.dumps(others, sort_keys=True, default=str)


def _value(key: str):
    def get(row: dict) -> float | None:
        v = row.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    return get


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def _ci(per_user: dict) -> str:
    """``91.2 [88.0, 94.1]`` in percent: mean over users and its 95 % bootstrap interval."""
    m = _mean(per_user.values())
    if m is None:
        return "-"
    low, high = bootstrap_interval(per_user.values())
    return f"{100 * m:.1f}" if math.isnan(low) else f"{100 * m:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def wilcoxon_p(diffs: list[float]) -> float:
    """Two-sided Wilcoxon signed-rank p over per-user differences (scipy); 1 when every difference is zero."""
    diffs = [d for d in diffs if math.isfinite(d)]
    if len(diffs) < 2:
        return math.nan
    if all(abs(d) < 1e-12 for d in diffs):
        return 1.0
    from scipy import stats

    return float(stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (scipy has no Holm; its ``false_discovery_control`` is BH/BY only)."""
    index = sorted((i for i, p in enumerate(pvalues) if not math.isnan(p)), key=lambda i: pvalues[i])
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for rank, i in enumerate(index):
        running = max(running, min(1.0, (len(index) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def _per_user(rows: list[dict], key: str) -> dict:
    """Per-user means in a fixed (sorted) order, so the bootstrap interval does not depend on row order."""
    return dict(sorted(per_user_mean(rows, _value(key)).items(), key=lambda kv: str(kv[0])))


SMALLER = ("paper", "ratio")


def _ratio_claims(label: str, variants: dict[str, list[dict]], smaller: str = "paper") -> list[str]:
    """"Smaller": by default the paper's size, the student saving ≥ 40 % of the teacher's cost (1 − student /
    teacher per user; the abstract claims 40–50 %); ``smaller="ratio"`` is harbench's earlier teacher/student > 1,
    which any student a little smaller than its teacher passes."""
    t, s = variants.get("teacher"), variants.get("smldist")
    if not t or not s:
        return []
    lines = []
    for key, what in (("params", "parameters"), ("flops", "FLOPs"), ("latency_ms_p50", "p50 latency")):
        a, b = _per_user(t, key), _per_user(s, key)
        users = sorted(a.keys() & b.keys(), key=str)
        ratio = {u: a[u] / b[u] for u in users if b[u]}
        if not ratio:
            continue
        r = _mean(ratio.values())
        if smaller == "ratio":
            res = judge(f"teacher/student {what} ratio > 1", ratio, threshold=1.0)
            interval = "" if math.isnan(res.low) else f" [{res.low:.2f}, {res.high:.2f}]"
            lines.append(f"{label}student smaller/faster than the teacher, {what}: teacher/student = {res.mean:.2f}x"
                         f"{interval}, {res.n_users} users: {res.verdict}")
            continue
        save = {u: 1.0 - b[u] / a[u] for u in users if a[u]}
        res = judge(f"student saves >= {100 * SMALLER_LOW:.0f} % of the teacher's {what}", save, threshold=SMALLER_LOW)
        interval = "" if math.isnan(res.low) else f" [{100 * res.low:.1f}, {100 * res.high:.1f}]"
        lines.append(f"{label}{res.claim} (paper: {100 * SMALLER_LOW:.0f}-{100 * SMALLER_HIGH:.0f} % lower cost): "
                     f"saving {100 * res.mean:.1f} %{interval} (teacher/student {r:.2f}x), {res.n_users} users: "
                     f"{res.verdict}")
    return lines


def _paired_claims(label: str, variants: dict[str, list[dict]]) -> list[str]:
    results = []
    for claim, a, b, metric, threshold in PAIRED_CLAIMS:
        if not variants.get(a) or not variants.get(b):
            continue
        diff = dict(sorted(paired(_per_user(variants[a], metric), _per_user(variants[b], metric)).items(),
                           key=lambda kv: str(kv[0])))
        if not diff:
            continue
        results.append((judge(claim, diff, threshold=threshold), wilcoxon_p(list(diff.values()))))
    adjusted = holm([p for _, p in results])
    lines = []
    for (res, p), ph in zip(results, adjusted):
        test = "" if math.isnan(p) else f"; Wilcoxon p = {p:.3f}, Holm p = {ph:.3f}"
        lines.append(f"{label}{res.claim} (threshold {100 * res.threshold:+.0f} pts): "
                     f"{res.text(scale=100, unit=' pts')}{test}")
    return lines


def _budget(label: str, variants: dict[str, list[dict]]) -> list[str]:
    """Epochs each student trained (stage + logits/CE) and how well the teacher did on the population's
    validation split: a teacher that learned little has little to distil."""
    parts = []
    for v in sorted(variants, key=lambda v: (ORDER.index(v) if v in ORDER else len(ORDER), v)):
        epochs = {(r.get("facts") or {}).get("student_epochs") for r in variants[v]} - {None}
        if epochs and v != "teacher":
            parts.append(f"{v} {'/'.join(str(e) for e in sorted(epochs))}")
    lines = [f"{label}student epochs (stage + logits/CE): {', '.join(parts)}"] if parts else []
    teacher = [(r.get("facts") or {}).get("teacher_val_acc") for rs in variants.values() for r in rs]
    teacher = [t for t in teacher if isinstance(t, (int, float))]
    if teacher:
        lines.append(f"{label}teacher accuracy on the population's validation split: mean {100 * _mean(teacher):.1f} %")
    return lines


def _setting_label(setting: str) -> str:
    params = json.loads(setting)
    scope = params.get("adapt_scope", "none")
    what = ("paper protocol: the distilled network scored as is (adapt_scope=none)" if scope == "none" else
            f"harbench extension: personalization after distillation (adapt_scope={scope}), not a paper claim")
    recon = [name for name, on in (("frequency attention", params.get("lambda_f", 0.0)),
                                   ("head auto-search", params.get("head_search", False))) if on]
    recon_text = (f"reconstructions ON: {', '.join(recon)}" if recon
                  else "frequency attention and head auto-search (reconstructions) off")
    return f"{what}; {recon_text}"


def summarize(rows: list[dict], smaller: str = "paper") -> dict | None:
    if smaller not in SMALLER:
        raise ValueError(f"unknown smaller {smaller!r}; expected one of {', '.join(SMALLER)}")
    ours = [r for r in rows if r.get("method") == METHOD and r.get("status") == "ok"]
    if not ours:
        return None
    groups: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in ours:
        groups[(r.get("hardware") or "?", _setting(r))][_variant(r)].append(r)
    settings = sorted({setting for _, setting in groups}, key=lambda s: (json.loads(s).get("adapt_scope") != "none", s))
    table, notes = [], []
    for (hardware, setting), variants in sorted(groups.items(), key=lambda kv: (kv[0][0], settings.index(kv[0][1]))):
        tag = f"#{settings.index(setting) + 1}"
        for v in sorted(variants, key=lambda v: (ORDER.index(v) if v in ORDER else len(ORDER), v)):
            rs = variants[v]
            acc, f1 = _per_user(rs, "acc_seen"), _per_user(rs, "f1_seen")
            params, flops = _mean(_value("params")(r) for r in rs), _mean(_value("flops")(r) for r in rs)
            latency = _mean(_value("latency_ms_p50")(r) for r in rs)
            heads = Counter((r.get("facts") or {}).get("head") for r in rs if (r.get("facts") or {}).get("head"))
            table.append([
                hardware, tag, v, len(acc), "-" if params is None else f"{params / 1e3:.0f}k",
                "-" if flops is None else f"{flops / 1e6:.2f}M", "-" if latency is None else f"{latency:.2f}",
                _ci(acc), _ci(f1), _ci(_per_user(rs, "acc_unseen")),
                ", ".join(f"{h} {n}" for h, n in heads.most_common()) or "-",
            ])
        label = f"[{hardware} {tag}] "
        notes += _ratio_claims(label, variants, smaller) + _paired_claims(label, variants) + _budget(label, variants)
    notes += [f"#{i + 1}: {_setting_label(s)}" for i, s in enumerate(settings)]
    notes.append("acc/F1: mean over users [95 % bootstrap interval] on the target users' seen-context test windows "
                 "(seeds averaged within a user); verdicts by harbench.judge; Wilcoxon two-sided, Holm over the "
                 "comparisons of a setting.")
    return {
        "title": "SMLDist: teacher vs distilled student, KD baselines and ablations",
        "headers": ["hardware", "setting", "variant", "users", "params", "FLOPs", "p50 ms", "acc %", "macro-F1 %",
                    "acc unseen %", "head"],
        "rows": table,
        "note": "\n".join(notes),
    }
