"""The paper's headline numbers, computed from a run's export rows (pure: rows in, table out).

ΔP = Σ_{C ∈ {seen, unseen}} [A(CRoP, C) − A(generic, C)] and ΔG the same against conventional fine-tuning M^C,
per user (averaged over seeds) and averaged over users, in percentage points. Both are *sums* over the two
contexts, as in the paper (Kaur et al., §5).

* **Score A** — balanced accuracy (``bacc_seen``/``bacc_unseen``, registered by this plugin), as the authors'
  ``test()`` scores every model; ``score="accuracy"`` is the named alternative. Rows from a run that did not
  compute balanced accuracy fall back to accuracy, and the table says so in its ``score`` column.
* **M^C** — ``crop-ft``: CRoP's own step-1 ``train()`` with the penalty off, on the same split with the same
  selection (the authors' WIDAR script), the variant with CRoP's ``epochs`` and ``lr`` preferred;
  ``baseline="finetune-full"`` (the harness's baseline: another split, another selection) is the named
  alternative, and also the fallback for runs without ``crop-ft`` rows (the table names the baseline used).

Rows are matched on dataset, dataset parameters, seed and user (and hardware when the baseline ran on the same
target). Each claim's paper size and no-effect margin come from :mod:`harbench_crop.paper`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import mean
from typing import Any, Callable, Iterable, Mapping

from harbench import ClaimResult, Family, Unit

from .paper import BY_KEY, FAMILY

Row = Mapping[str, Any]
FINETUNE = "finetune-full"
CONVENTIONAL = "crop-ft"
BASELINES = (CONVENTIONAL, FINETUNE)
SCORES = {"balanced_accuracy": ("bacc_seen", "bacc_unseen"), "accuracy": ("acc_seen", "acc_unseen")}
HEADERS = ["scenario", "crop", "score", "M^C", "users", "seeds", "ΔP [95 % CI]", "ΔG [95 % CI]", "ΔG seen",
           "ΔG unseen", "FT−generic unseen [95 % CI]", "verdict", "ΔG Holm p", "paper ΔG (no effect ±)", "sparsity",
           "mixed kept", "α end of step 1"]
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


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _usable(row: Row, columns: tuple[str, str] = SCORES["accuracy"]) -> bool:
    return row.get("status") == "ok" and all(_finite(row.get(c)) for c in columns)


def _score_columns(rows: list[Row], score: str) -> tuple[str, tuple[str, str]]:
    """The score actually used and its two columns: balanced accuracy when every usable crop row carries it
    (rows of runs that did not compute it fall back to accuracy, which the table names)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; expected one of {', '.join(SCORES)}")
    crop = [r for r in rows if r.get("method") == "crop" and _usable(r)]
    if score == "balanced_accuracy" and crop and not all(_usable(r, SCORES[score]) for r in crop):
        return "accuracy", SCORES["accuracy"]
    return score, SCORES[score]


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


_MATCHED = ("epochs", "lr", "batch_size", "val_split", "val_fraction", "select_by")


def _finetune_variant(crop_params: Mapping[str, Any], finetune_rows: list[Row]) -> str | None:
    """The fine-tuning variant ΔG compares against: the one sharing CRoP's step-1 settings (for ``crop-ft``:
    epochs, lr, batch size, split and selection; for ``finetune-full``: its ``epochs``), else the only one."""
    variants: dict[str, Mapping[str, Any]] = {}
    for r in finetune_rows:
        variants.setdefault(r.get("variant", ""), r.get("method_params") or {})

    def matches(params: Mapping[str, Any]) -> bool:
        shared = [k for k in _MATCHED if k in params and k in crop_params]
        return bool(shared) and "epochs" in shared and all(params[k] == crop_params[k] for k in shared)

    same = [v for v, params in variants.items() if matches(params)]
    if same:
        return sorted(same)[0]
    return next(iter(variants)) if len(variants) == 1 else None


def _pp(a: float, b: float) -> float:
    return 100.0 * (a - b)


def _gains(crop: Row, generic: Row, finetune: Row | None, columns: tuple[str, str] = SCORES["accuracy"]) -> Gains:
    facts = crop.get("facts") or {}
    selected = facts.get("selected_state")
    seen, unseen = columns
    return Gains(
        p_seen=_pp(crop[seen], generic[seen]),
        p_unseen=_pp(crop[unseen], generic[unseen]),
        g_seen=None if finetune is None else _pp(crop[seen], finetune[seen]),
        g_unseen=None if finetune is None else _pp(crop[unseen], finetune[unseen]),
        ft_seen=None if finetune is None else _pp(finetune[seen], generic[seen]),
        ft_unseen=None if finetune is None else _pp(finetune[unseen], generic[unseen]),
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
        params = json.loads(params_json)
        adapt = params.get("adapt_context")
        who = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k in ("groups", "targets", "population")
               if (v := params.get(k))]  # a subpopulation split says which
        base = dataset if adapt is None and not who else f"{dataset} ({', '.join([f'adapt={adapt}'] * bool(adapt) + who)})"
        used[base] += 1
        labels[(dataset, params_json)] = base if used[base] == 1 else f"{base} #{used[base]}"
    return labels


@dataclass(frozen=True)
class Table:
    """(scenario, crop variant) → user → Gains per seed; the M^C variant chosen per group; what was used."""

    groups: dict[tuple, dict[str, list[Gains]]]
    chosen: dict[tuple, str | None]
    score: str
    baseline: str


def _table(rows: Iterable[Row], score: str = "balanced_accuracy", baseline: str = CONVENTIONAL) -> Table | None:
    """Per (scenario, crop variant) and user the Gains of each seed, scored by ``score`` against ``baseline``
    (``crop-ft``, falling back to ``finetune-full`` when the run has no ``crop-ft`` rows)."""
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    rows = list(rows)
    score, columns = _score_columns(rows, score)
    ok = [r for r in rows if _usable(r, columns)]
    crop = [r for r in ok if r.get("method") == "crop"]
    generic = _index(r for r in ok if r.get("method") == "generic")
    if baseline == CONVENTIONAL and not any(r.get("method") == CONVENTIONAL for r in ok):
        baseline = FINETUNE
    finetune = _index(r for r in ok if r.get("method") == baseline)
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
        table[group][str(r.get("user"))].append(_gains(r, base, ft, columns))
    if not table:
        return None
    return Table(table, chosen_ft, score, baseline)


# each claim's per-unit quantity; its threshold, paper size, no-effect margin and family are in paper.py
QUANTITIES: dict[str, Callable[[Gains], float | None]] = {
    "delta_p": lambda g: g.p_seen + g.p_unseen,
    "delta_g": lambda g: None if g.g_seen is None or g.g_unseen is None else g.g_seen + g.g_unseen,
    "premise": lambda g: g.ft_unseen,
}


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


def crop_family(rows: Iterable[Row], score: str = "balanced_accuracy", baseline: str = CONVENTIONAL
                ) -> tuple[Family, dict[tuple[str, str], dict[str, ClaimResult]]]:
    """The summary's declared family (Holm over every claim it judges) and, per (scenario label, crop variant),
    the verdicts on the paper's claims of :mod:`harbench_crop.paper` (ΔP > 0, ΔG > 0 and the premise FT − generic
    < 0 on the unseen context: direction, the paper's size and no effect within the declared margin); intervals
    over users × seeds (:func:`harbench.judge_family`)."""
    family = Family(FAMILY)
    built = _table(rows, score, baseline)
    if built is None:
        return family, {}
    table = built.groups
    labels = _scenario_labels(g[0] for g in table)
    index: dict[tuple[str, str], dict[str, int]] = {}
    for (scenario, variant), users in table.items():
        index[(labels[scenario], variant)] = {key: family.add_paper(BY_KEY[key], _per_unit(users, value))
                                              for key, value in QUANTITIES.items()}
    verdicts = family.verdicts()
    return family, {key: {name: verdicts[i] for name, i in claims.items()} for key, claims in index.items()}


def crop_claims(rows: Iterable[Row], score: str = "balanced_accuracy",
                baseline: str = CONVENTIONAL) -> dict[tuple[str, str], dict[str, ClaimResult]]:
    """Per (scenario label, crop variant): the verdicts of :func:`crop_family`."""
    return crop_family(rows, score, baseline)[1]


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


def _paper(key: str) -> str:
    c = BY_KEY[key]
    return f"{c.claimed:+.2f} (±{c.no_effect:g})"


def crop_summary(rows: Iterable[Row], score: str = "balanced_accuracy",
                 baseline: str = CONVENTIONAL) -> dict[str, Any] | None:
    """ΔP / ΔG with 95 % intervals and a verdict per scenario and crop variant; ``None`` without crop and generic."""
    rows = list(rows)
    built = _table(rows, score, baseline)
    if built is None:
        return None
    table, chosen = built.groups, built.chosen
    family, claims = crop_family(rows, score, baseline)
    labels = _scenario_labels(g[0] for g in table)
    out_rows: list[list[Any]] = []
    for (scenario, variant), users in sorted(table.items(), key=lambda kv: (labels[kv[0][0]], kv[0][1])):
        c = claims[(labels[scenario], variant)]
        means = [_user_mean(g) for g in users.values()]
        def avg(attr: str, digits: int = 2, means=means):
            v = _avg(getattr(m, attr) for m in means)
            return None if v is None else round(v, digits)
        out_rows.append([labels[scenario], variant or "(default)", built.score, built.baseline, len(users),
                         min(len(v) for v in users.values()), _ci(c["delta_p"]), _ci(c["delta_g"]), avg("g_seen"),
                         avg("g_unseen"), _ci(c["premise"]), scenario_verdict(c), _holm_p(c["delta_g"]),
                         _paper("delta_g"), avg("sparsity", 3), avg("mixed"), avg("alpha_step1_end", 4)])
    ft_used = sorted({f"{variant or '(default)'} → {v or 'none'}" for (_, variant), v in chosen.items()})
    sizes = "; ".join(f"{c.claim}: paper {c.claimed:+.2f} {c.unit} ({c.source}), no effect within ±{c.no_effect:g}"
                      for c in BY_KEY.values())
    return {
        "title": "CRoP (Kaur et al., IMWUT 2025): ΔP and ΔG, percentage points, 95 % intervals over users and seeds",
        "headers": HEADERS,
        "rows": out_rows,
        "verdicts": [v.to_dict() for v in family.verdicts()],  # every judged claim (harbench validate --power)
        "note": ("ΔP = Σ over the seen and unseen context of (CRoP − generic) score; ΔG the same against "
                 "M^C; intervals over users × seeds (seeds a level: docs/statistics.md) and verdicts by "
                 f"harbench.judge_family; {family.summary()}. "
                 "Verdict = ΔG > 0's (reproduced / not reproduced / inconclusive / no effect), inconclusive when the "
                 "premise FT − generic < 0 on the unseen context is not itself reproduced (or a fact that holds). "
                 "Each claim's size against the paper's and, when inconclusive, the users 80 % power would need: "
                 "harbench_crop.crop_claims (Verdict.text()). ΔG seen/unseen: its split, mean "
                 "over users. sparsity = share of prunable weights ToleratedPrune removed; mixed kept = share of "
                 "jobs whose step 4 kept the mixed model (epoch 0). Per-user rows: harbench_crop.crop_detail. "
                 f"score: balanced accuracy (the authors'), or accuracy where the rows carry none; M^C: crop-ft "
                 f"(CRoP's own train(), penalty off: the authors' WIDAR script), else finetune-full. "
                 f"{built.baseline} variant used for each crop variant: {'; '.join(ft_used)}. Paper sizes: {sizes}."),
    }


def crop_detail(rows: Iterable[Row], score: str = "balanced_accuracy",
                baseline: str = CONVENTIONAL) -> dict[str, Any] | None:
    """The per-user table (seeds averaged) behind :func:`crop_summary`, with a mean-of-users row per group."""
    built = _table(rows, score, baseline)
    if built is None:
        return None
    table = built.groups
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
