"""The paper's headline numbers, computed from a run's export rows (pure: rows in, table out).

ΔP = Σ_{C ∈ {seen, unseen}} [A(CRoP, C) − A(generic, C)] and ΔG the same against conventional fine-tuning
(``finetune-full``), per user (averaged over seeds) and averaged over users, in percentage points. Both are
*sums* over the two contexts, as in the paper (Kaur et al., §5). Rows are matched on dataset, dataset parameters,
seed and user (and hardware when the baseline ran on the same target). ΔG uses the ``finetune-full`` variant with
the same ``epochs`` as CRoP's step 1 when there is one, else the only variant in the run.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import mean
from typing import Any, Iterable, Mapping

from harbench import ClaimResult, Family, Unit

Row = Mapping[str, Any]
FINETUNE = "finetune-full"
HEADERS = ["scenario", "crop", "users", "seeds", "ΔP [95 % CI]", "ΔG [95 % CI]", "ΔG seen", "ΔG unseen",
           "FT−generic unseen [95 % CI]", "verdict", "ΔG Holm p", "sparsity", "mixed kept", "α end of step 1"]
DETAIL_HEADERS = ["scenario", "crop", "user", "seeds", "ΔP", "ΔG", "CRoP−FT seen", "CRoP−FT unseen",
                  "FT−generic seen", "FT−generic unseen", "sparsity", "mixed kept"]


@dataclass(frozen=True)
class Gains:
    """One (user, seed) comparison, in percentage points; ``ft_*`` are None when no fine-tuning baseline matched."""

    p_seen: float
    p_unseen: float
    g_seen: float | None
    g_unseen: float | None
    ft_seen: float | None
    ft_unseen: float | None
    sparsity: float | None
    mixed: float | bool | None  # share of seeds whose step 4 kept the mixed model
    alpha_step1_end: float | None = None
    seed: Any = None  # the seed of the crop job (seeds are a level of the claims' intervals)


def _usable(row: Row) -> bool:
    def finite(v: Any) -> bool:
        return isinstance(v, (int, float)) and math.isfinite(v)
    return row.get("status") == "ok" and finite(row.get("acc_seen")) and finite(row.get("acc_unseen"))


def _scenario_key(row: Row) -> tuple[str, str]:
    return row.get("dataset", "?"), json.dumps(row.get("dataset_params") or {}, sort_keys=True)


def _job_key(row: Row) -> tuple:
    return (*_scenario_key(row), row.get("seed"), row.get("user"))


def _index(rows: Iterable[Row]) -> dict[tuple, list[Row]]:
    out: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        out[_job_key(r)].append(r)
    return out


def _same_target(candidates: list[Row], hardware: Any) -> Row | None:
    for r in candidates:
        if r.get("hardware") == hardware:
            return r
    return candidates[0] if candidates else None


def _finetune_variant(crop_params: Mapping[str, Any], finetune_rows: list[Row]) -> str | None:
    """The fine-tuning variant ΔG compares against: same step-1 epochs as CRoP, else the only one present."""
    variants: dict[str, Any] = {}
    for r in finetune_rows:
        variants.setdefault(r.get("variant", ""), (r.get("method_params") or {}).get("epochs"))
    same_epochs = [v for v, e in variants.items() if e is not None and e == crop_params.get("epochs")]
    if same_epochs:
        return sorted(same_epochs)[0]
    return next(iter(variants)) if len(variants) == 1 else None


def _pp(a: float, b: float) -> float:
    return 100.0 * (a - b)


def _gains(crop: Row, generic: Row, finetune: Row | None) -> Gains:
    facts = crop.get("facts") or {}
    selected = facts.get("selected_state")
    return Gains(
        p_seen=_pp(crop["acc_seen"], generic["acc_seen"]),
        p_unseen=_pp(crop["acc_unseen"], generic["acc_unseen"]),
        g_seen=None if finetune is None else _pp(crop["acc_seen"], finetune["acc_seen"]),
        g_unseen=None if finetune is None else _pp(crop["acc_unseen"], finetune["acc_unseen"]),
        ft_seen=None if finetune is None else _pp(finetune["acc_seen"], generic["acc_seen"]),
        ft_unseen=None if finetune is None else _pp(finetune["acc_unseen"], generic["acc_unseen"]),
        sparsity=facts.get("sparsity"),
        mixed=None if selected is None else selected == "mixed",
        alpha_step1_end=facts.get("alpha_step1_end", facts.get("alpha_after_finetune")),
        seed=crop.get("seed"),
    )


def _avg(values: Iterable[float | bool | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return mean(vals) if vals else None


def _line(scenario: str, variant: str, user: str, seeds: int, gains: list[Gains]) -> list[Any]:
    """One table row; every number is the mean over ``gains`` (seeds, or users for the mean row)."""
    p = _avg(g.p_seen + g.p_unseen for g in gains)
    complete = [g for g in gains if g.g_seen is not None]
    g_total = _avg(g.g_seen + g.g_unseen for g in complete) if len(complete) == len(gains) else None  # type: ignore[operator]
    cells = [p, g_total, _avg(g.g_seen for g in gains), _avg(g.g_unseen for g in gains),
             _avg(g.ft_seen for g in gains), _avg(g.ft_unseen for g in gains)]
    sparsity = _avg(g.sparsity for g in gains)
    mixed = _avg(g.mixed for g in gains)
    return [scenario, variant, user, seeds, *[None if c is None else round(c, 2) for c in cells],
            None if sparsity is None else round(sparsity, 3), None if mixed is None else round(mixed, 2)]


def _scenario_labels(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    labels: dict[tuple[str, str], str] = {}
    used: dict[str, int] = defaultdict(int)
    for dataset, params_json in sorted(set(keys)):
        adapt = json.loads(params_json).get("adapt_context")
        base = dataset if adapt is None else f"{dataset} (adapt={adapt})"
        used[base] += 1
        labels[(dataset, params_json)] = base if used[base] == 1 else f"{base} #{used[base]}"
    return labels


def _table(rows: Iterable[Row]) -> tuple[dict[tuple, dict[str, list[Gains]]], dict[tuple, str | None]] | None:
    """(scenario, crop variant) → user → Gains per seed, and the finetune-full variant chosen for each group."""
    ok = [r for r in rows if _usable(r)]
    crop = [r for r in ok if r.get("method") == "crop"]
    generic = _index(r for r in ok if r.get("method") == "generic")
    finetune = _index(r for r in ok if r.get("method") == FINETUNE)
    if not crop or not generic:
        return None
    table: dict[tuple, dict[str, list[Gains]]] = defaultdict(lambda: defaultdict(list))
    chosen_ft: dict[tuple, str | None] = {}
    for r in crop:
        base = _same_target(generic.get(_job_key(r), []), r.get("hardware"))
        if base is None:
            continue
        group = (_scenario_key(r), r.get("variant", ""))
        ft_rows = finetune.get(_job_key(r), [])
        if group not in chosen_ft or chosen_ft[group] is None:
            chosen_ft[group] = _finetune_variant(r.get("method_params") or {}, ft_rows)
        ft = _same_target([f for f in ft_rows if f.get("variant", "") == chosen_ft[group]], r.get("hardware"))
        table[group][str(r.get("user"))].append(_gains(r, base, ft))
    if not table:
        return None
    return table, chosen_ft


PAPER_DELTA_G = 7.78  # points: the paper's ΔG, the claimed size (size check and power; issue #32)
FAMILY = "CRoP summary (ΔP, ΔG and the premise, every scenario and crop variant)"


def _per_unit(users: Mapping[str, list[Gains]], value) -> dict[Unit, float]:
    """One value per user × seed (:class:`harbench.Unit`; seeds are a level of the interval); units lacking the
    value are left out."""
    out: dict[Unit, float] = {}
    for user, gains in users.items():
        for i, g in enumerate(gains):
            v = value(g)
            if v is not None and math.isfinite(v):
                out[Unit(user, g.seed if g.seed is not None else i)] = float(v)
    return out


def _g_total(g: Gains) -> float | None:
    return None if g.g_seen is None or g.g_unseen is None else g.g_seen + g.g_unseen


def crop_family(rows: Iterable[Row]) -> tuple[Family, dict[tuple[str, str], dict[str, ClaimResult]]]:
    """The summary's declared family (Holm over every claim it judges) and, per (scenario label, crop variant),
    the verdicts on the paper's claims ΔP > 0 and ΔG > 0 (claimed +7.78 points), and the premise FT − generic < 0
    on the unseen context; intervals over users × seeds (:func:`harbench.judge_family`)."""
    family = Family(FAMILY)
    built = _table(rows)
    if built is None:
        return family, {}
    table = built[0]
    labels = _scenario_labels(g[0] for g in table)
    index: dict[tuple[str, str], dict[str, int]] = {}
    for (scenario, variant), users in table.items():
        index[(labels[scenario], variant)] = {
            "delta_p": family.add("ΔP > 0", _per_unit(users, lambda g: g.p_seen + g.p_unseen)),
            "delta_g": family.add("ΔG > 0", _per_unit(users, _g_total), claimed=PAPER_DELTA_G),
            "premise": family.add("FT − generic < 0 on the unseen context", _per_unit(users, lambda g: g.ft_unseen),
                                  direction="<"),
        }
    verdicts = family.verdicts()
    return family, {key: {name: verdicts[i] for name, i in claims.items()} for key, claims in index.items()}


def crop_claims(rows: Iterable[Row]) -> dict[tuple[str, str], dict[str, ClaimResult]]:
    """Per (scenario label, crop variant): the verdicts of :func:`crop_family`."""
    return crop_family(rows)[1]


def scenario_verdict(claims: Mapping[str, ClaimResult]) -> str:
    """ΔG's verdict, unless fine-tuning does not demonstrably lose on the unseen context: then CRoP has nothing
    shown to restore and the scenario cannot test the claim."""
    premise, dg = claims["premise"], claims["delta_g"]
    if dg.n_users == 0:
        return "inconclusive (no finetune-full baseline)"
    if premise.verdict == "fact":
        if not premise.fact_holds:
            return "inconclusive (premise does not hold: a fact)"
    elif premise.verdict != "reproduced":
        return f"inconclusive (premise {premise.verdict})"
    return dg.verdict


def _ci(c: ClaimResult) -> str | None:
    if c.n_users == 0:
        return None
    interval = "[—]" if math.isnan(c.low) else f"[{c.low:+.2f}, {c.high:+.2f}]"
    return f"{c.mean:+.2f} {interval}"  # "+3.10 [+0.40, +5.90]", percentage points


def _holm_p(c: ClaimResult) -> str | None:
    """The Holm-adjusted p of a tested claim, with the family size: ``0.004 (m=6)``; a fact says so."""
    if c.verdict == "fact":
        return "fact"
    if math.isnan(c.p_adjusted):
        return None
    return f"{c.p_adjusted:.3g} (m={c.family_size})"


def crop_summary(rows: Iterable[Row]) -> dict[str, Any] | None:
    """ΔP / ΔG with 95 % intervals and a verdict per scenario and crop variant; ``None`` without crop and generic."""
    rows = list(rows)
    built = _table(rows)
    if built is None:
        return None
    table, chosen = built
    family, claims = crop_family(rows)
    labels = _scenario_labels(g[0] for g in table)
    out_rows: list[list[Any]] = []
    for (scenario, variant), users in sorted(table.items(), key=lambda kv: (labels[kv[0][0]], kv[0][1])):
        c = claims[(labels[scenario], variant)]
        means = [_user_mean(g) for g in users.values()]
        def avg(attr: str, digits: int = 2, means=means):
            v = _avg(getattr(m, attr) for m in means)
            return None if v is None else round(v, digits)
        out_rows.append([labels[scenario], variant or "(default)", len(users), min(len(v) for v in users.values()),
                         _ci(c["delta_p"]), _ci(c["delta_g"]), avg("g_seen"), avg("g_unseen"), _ci(c["premise"]),
                         scenario_verdict(c), _holm_p(c["delta_g"]), avg("sparsity", 3), avg("mixed"), avg("alpha_step1_end", 4)])
    ft_used = sorted({f"{variant or '(default)'} → {v or 'none'}" for (_, variant), v in chosen.items()})
    return {
        "title": "CRoP (Kaur et al., IMWUT 2025): ΔP and ΔG, percentage points, 95 % intervals over users and seeds",
        "headers": HEADERS,
        "rows": out_rows,
        "verdicts": [v.to_dict() for v in family.verdicts()],  # every judged claim (harbench validate --power)
        "note": ("ΔP = Σ over the seen and unseen context of (CRoP − generic) accuracy; ΔG the same against "
                 "finetune-full; intervals over users × seeds (seeds a level: docs/statistics.md) and verdicts by "
                 f"harbench.judge_family; {family.summary()}. "
                 "Verdict = ΔG > 0's (reproduced / not reproduced / inconclusive / no effect), inconclusive when the "
                 "premise FT − generic < 0 on the unseen context is not itself reproduced (or a fact that holds). "
                 f"ΔG's size against the paper's +{PAPER_DELTA_G} pts and, when inconclusive, the users 80 % power "
                 "would need: harbench_crop.crop_claims (Verdict.text()). ΔG seen/unseen: its split, mean "
                 "over users. sparsity = share of prunable weights ToleratedPrune removed; mixed kept = share of "
                 "jobs whose step 4 kept the mixed model (epoch 0). Per-user rows: harbench_crop.crop_detail. "
                 f"finetune-full variant used for each crop variant: {'; '.join(ft_used)}."),
    }


def crop_detail(rows: Iterable[Row]) -> dict[str, Any] | None:
    """The per-user table (seeds averaged) behind :func:`crop_summary`, with a mean-of-users row per group."""
    built = _table(rows)
    if built is None:
        return None
    table = built[0]
    labels = _scenario_labels(g[0] for g in table)
    out_rows: list[list[Any]] = []
    for (scenario, variant), users in sorted(table.items(), key=lambda kv: (labels[kv[0][0]], kv[0][1])):
        per_user = []
        for user in sorted(users):
            gains = users[user]
            out_rows.append(_line(labels[scenario], variant, user, len(gains), gains))
            per_user.append(_user_mean(gains))
        out_rows.append(_line(labels[scenario], variant, f"mean of {len(users)}", min(len(v) for v in users.values()),
                              per_user))
    return {"title": "CRoP per user (seeds averaged), percentage points", "headers": DETAIL_HEADERS, "rows": out_rows}


def _user_mean(gains: list[Gains]) -> Gains:
    """Average a user's seeds into one Gains, so every user weighs the same in the mean row."""
    def avg(attr: str) -> Any:
        return _avg(getattr(g, attr) for g in gains)
    return Gains(avg("p_seen"), avg("p_unseen"), avg("g_seen"), avg("g_unseen"), avg("ft_seen"), avg("ft_unseen"),
                 avg("sparsity"), avg("mixed"), avg("alpha_step1_end"))
