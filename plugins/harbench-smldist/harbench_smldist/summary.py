"""The paper-style summary for ``harbench report``: SMLDist's variants, their size and speed, and a verdict per claim.

Pure over export rows (dicts), so it is unit-tested on fabricated rows. Rows are grouped by hardware and by the
method parameters other than ``variant`` (a "setting"). A setting with ``adapt_scope='none'`` is the paper's
protocol (the distilled network scored as is on the target users' test windows); any other is labelled as
harbench's extension (personalization after distillation).

Every claim is a statement about a per-unit value (a user under a seed: ``harbench.per_unit_mean``), and all the
claims of the summary form one declared family (``harbench.Family``): 95 % intervals over users and seeds, t tests
Holm-adjusted over the family, a quantity equal for every unit stated as a fact (docs/statistics.md). Ratios are
judged on the log scale. The paired accuracy differences also show a two-sided Wilcoxon signed-rank p (scipy,
unadjusted) as a rank-based cross-check; it does not decide the verdict.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from typing import Callable

from harbench import (
    Claim,
    Family,
    PaperClaim,
    Verdict,
    holm,
    judge,
    paired,
    per_person,
    per_unit_mean,
    ratio,
    signed_rank_p,
)

from .paper import BY_KEY, FAMILY, SMALLER_HIGH, SMALLER_LOW

METHOD = "smldist"
ORDER = ("teacher", "student-scratch", "student-hinton", "student-hinton-t4", "smldist",
         "smldist-no-stage", "smldist-no-memory", "smldist-no-conditional")
_CLOSE, _HINTON = -BY_KEY["close-to-teacher"].threshold, -BY_KEY["beats-hinton"].threshold  # the paper.py margins

__all__ = ["holm", "summarize", "wilcoxon_p"]  # holm: harbench.holm, kept importable from here

# (claim, variant a, variant b, metric, paper.py key): mean over units of a - b against the key's threshold
PAIRED_CLAIMS = (
    (f"smldist acc within {100 * _CLOSE:.0f} pts of the teacher", "smldist", "teacher", "acc_seen",
     "close-to-teacher"),
    (f"smldist macro-F1 within {100 * _CLOSE:.0f} pts of the teacher", "smldist", "teacher", "f1_seen",
     "close-to-teacher"),
    ("smldist beats student-scratch (acc)", "smldist", "student-scratch", "acc_seen", "beats-scratch"),
    (f"smldist at least as good as student-hinton [code: T=1, no T^2] (acc, margin {100 * _HINTON:.0f} pt)",
     "smldist", "student-hinton", "acc_seen", "beats-hinton"),
    (f"smldist at least as good as student-hinton-t4 [T=4, T^2] (acc, margin {100 * _HINTON:.0f} pt)",
     "smldist", "student-hinton-t4", "acc_seen", "beats-hinton"),
    ("stage distillation helps: smldist - smldist-no-stage (acc; matched epochs when student_budget=matched)",
     "smldist", "smldist-no-stage", "acc_seen", "stage-helps"),
    ("memory distillation helps: smldist - smldist-no-memory (acc)", "smldist", "smldist-no-memory", "acc_seen",
     "memory-helps"),
    ("the conditional rule helps: smldist - smldist-no-conditional (acc)", "smldist", "smldist-no-conditional",
     "acc_seen", "conditional-helps"),
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


def _ci(per_unit: dict) -> str:
    """``91.2 [88.0, 94.1]`` in percent: mean over users and seeds and its 95 % interval (harbench's one rule)."""
    m = _mean(per_unit.values())
    if m is None:
        return "-"
    res = judge("cell", per_unit, bounds=(0.0, 1.0))
    return f"{100 * m:.1f}" if math.isnan(res.low) else f"{100 * m:.1f} [{100 * res.low:.1f}, {100 * res.high:.1f}]"


def wilcoxon_p(diffs: list[float]) -> float:
    """Two-sided Wilcoxon signed-rank p over per-user differences (the core's ``signed_rank_p``: scipy's test);
    1 when every difference is zero."""
    return signed_rank_p(diffs)


def _per_user(rows: list[dict], key: str) -> dict:
    """Per user × seed means (``harbench.Unit``), in a fixed order."""
    return dict(sorted(per_unit_mean(rows, _value(key)).items(), key=lambda kv: str(kv[0])))


Pending = list[tuple[Callable[[Verdict], str], int]]
SMALLER = ("paper", "ratio")
PAPER_RANGE = f"paper: {100 * SMALLER_LOW:.0f}–{100 * SMALLER_HIGH:.0f} % lower cost"


def _ratio_claim(paper: PaperClaim, values: dict, text: str) -> Claim:
    """harbench's earlier reading of "smaller" (``smaller="ratio"``): teacher/student > 1 on the log scale, the
    paper's size and margin carried over from its saving (a saving ``s`` is a ratio ``1 / (1 − s)``)."""
    claimed = None if paper.claimed is None else 1 / (1 - paper.claimed)
    return Claim(text, values, 1.0, ">", claimed, 1 / (1 - paper.no_effect) - 1, "log")


def _ratio_claims(label: str, variants: dict[str, list[dict]], family: Family, smaller: str = "paper") -> Pending:
    """"Smaller": by default the paper's size, the student saving ≥ 40 % of the teacher's cost (1 − student /
    teacher per unit; the abstract claims 40–50 %: :mod:`harbench_smldist.paper`); ``smaller="ratio"`` is
    harbench's earlier teacher/student > 1, which any student a little smaller than its teacher passes."""
    t, s = variants.get("teacher"), variants.get("smldist")
    if not t or not s:
        return []
    out: Pending = []
    for key, what in (("params", "parameters"), ("flops", "FLOPs"), ("latency_ms_p50", "p50 latency")):
        a, b = _per_user(t, key), _per_user(s, key)
        r = per_person(ratio(a, b), t + s)
        if not r:
            continue
        geo = math.exp(sum(math.log(v) for v in r.values()) / len(r))
        paper = BY_KEY[f"smaller:{what}"]
        if smaller == "ratio":
            def render_ratio(res: Verdict, what: str = what) -> str:
                if res.verdict == "fact":
                    return (f"{label}student smaller/faster than the teacher, {what}: teacher/student = "
                            f"{res.mean:.2f}x for every unit ({res.n_users} users): a fact, it "
                            f"{'holds' if res.fact_holds else 'does not hold'} ({PAPER_RANGE}, "
                            f"{res.claimed:.2f}x)")
                interval = "" if math.isnan(res.low) else f" [{res.low:.2f}, {res.high:.2f}]"
                return (f"{label}student smaller/faster than the teacher, {what}: teacher/student = {res.mean:.2f}x"
                        f"{interval} (geometric mean), {res.n_users} users: {res.verdict}; {res.family_text()}; "
                        f"{res.size_text(spec='.2f')}")

            out.append((render_ratio, family.add_claim(_ratio_claim(paper, r, f"teacher/student {what} ratio > 1"))))
            continue
        save = per_person({u: 1.0 - b[u] / a[u] for u in a.keys() & b.keys() if a[u]}, t + s)

        def render(res: Verdict, geo: float = geo) -> str:
            head = f"{label}{res.claim} ({PAPER_RANGE}): saving {100 * res.mean:.1f} %"
            if res.verdict == "fact":
                return (f"{head} for every unit (teacher/student {geo:.2f}x), {res.n_users} users: a fact, it "
                        f"{'holds' if res.fact_holds else 'does not hold'}")
            interval = "" if math.isnan(res.low) else f" [{100 * res.low:.1f}, {100 * res.high:.1f}]"
            return (f"{head}{interval} (teacher/student {geo:.2f}x), {res.n_users} users: {res.verdict}; "
                    + "; ".join(x for x in (res.family_text(), res.size_text(100, ".1f")) if x))

        out.append((render, family.add_paper(paper, save)))
    return out


def _paired_claims(label: str, variants: dict[str, list[dict]], family: Family) -> Pending:
    out: Pending = []
    for claim, a, b, metric, key in PAIRED_CLAIMS:
        if not variants.get(a) or not variants.get(b):
            continue
        diff = per_person(paired(_per_user(variants[a], metric), _per_user(variants[b], metric)),
                          variants[a] + variants[b])
        diff = dict(sorted(diff.items(), key=lambda kv: str(kv[0])))
        if not diff:
            continue
        users: dict = {}
        for unit, v in diff.items():  # the Wilcoxon cross-check: one paired difference per user
            users.setdefault(unit.user, []).append(v)
        p = wilcoxon_p([sum(v) / len(v) for v in users.values()])

        def render(res: Verdict, claim: str = claim, p: float = p) -> str:
            test = "" if math.isnan(p) else f"; Wilcoxon p = {p:.3f} (rank-based cross-check, unadjusted)"
            return f"{label}{claim} (threshold {100 * res.threshold:+.0f} pts): {res.text(scale=100, unit=' pts')}{test}"

        out.append((render, family.add_paper(BY_KEY[key], diff, text=claim)))
    return out


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
    family = Family(FAMILY)
    pending: list[tuple[int, Pending]] = []
    for (hardware, setting), variants in sorted(groups.items(), key=lambda kv: (kv[0][0], settings.index(kv[0][1]))):
        tag = f"#{settings.index(setting) + 1}"
        for v in sorted(variants, key=lambda v: (ORDER.index(v) if v in ORDER else len(ORDER), v)):
            rs = variants[v]
            acc, f1 = per_person(_per_user(rs, "acc_seen"), rs), per_person(_per_user(rs, "f1_seen"), rs)
            params, flops = _mean(_value("params")(r) for r in rs), _mean(_value("flops")(r) for r in rs)
            latency = _mean(_value("latency_ms_p50")(r) for r in rs)
            heads = Counter((r.get("facts") or {}).get("head") for r in rs if (r.get("facts") or {}).get("head"))
            table.append([
                hardware, tag, v, len({unit.user for unit in acc}), "-" if params is None else f"{params / 1e3:.0f}k",
                "-" if flops is None else f"{flops / 1e6:.2f}M", "-" if latency is None else f"{latency:.2f}",
                _ci(acc), _ci(f1), _ci(per_person(_per_user(rs, "acc_unseen"), rs)),
                ", ".join(f"{h} {n}" for h, n in heads.most_common()) or "-",
            ])
        label = f"[{hardware} {tag}] "
        notes.append("")  # this setting's claim lines go here once the family is judged
        pending.append((len(notes) - 1, _ratio_claims(label, variants, family, smaller)
                        + _paired_claims(label, variants, family)))
        notes += _budget(label, variants)
    verdicts = family.verdicts()
    for at, items in reversed(pending):
        notes[at:at + 1] = [render(verdicts[i]) for render, i in items]
    notes += [f"#{i + 1}: {_setting_label(s)}" for i, s in enumerate(settings)]
    notes.append("acc/F1: mean over users [95 % interval over users and seeds] on the target users' seen-context "
                 "test windows; verdicts: " + family.summary() + ".")
    return {
        "title": "SMLDist: teacher vs distilled student, KD baselines and ablations",
        "headers": ["hardware", "setting", "variant", "users", "params", "FLOPs", "p50 ms", "acc %", "macro-F1 %",
                    "acc unseen %", "head"],
        "rows": table,
        "verdicts": [v.to_dict() for v in verdicts],  # every judged claim (harbench validate --power)
        "note": "\n".join(notes),
    }
