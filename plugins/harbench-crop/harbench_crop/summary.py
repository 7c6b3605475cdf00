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

Row = Mapping[str, Any]
FINETUNE = "finetune-full"
HEADERS = ["scenario", "crop", "user", "seeds", "ΔP", "ΔG", "CRoP−FT seen", "CRoP−FT unseen", "FT−generic seen",
           "FT−generic unseen", "sparsity", "mixed kept"]


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


def crop_summary(rows: Iterable[Row]) -> dict[str, Any] | None:
    """ΔP / ΔG table of every ``crop`` variant in ``rows``; ``None`` without both crop and generic results."""
    ok = [r for r in rows if _usable(r)]
    crop = [r for r in ok if r.get("method") == "crop"]
    generic = _index(r for r in ok if r.get("method") == "generic")
    finetune = _index(r for r in ok if r.get("method") == FINETUNE)
    if not crop or not generic:
        return None
    # (scenario, crop variant) -> user -> list of Gains over seeds
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
    ft_used = sorted({f"{variant or '(default)'} → {v or 'none'}" for (_, variant), v in chosen_ft.items()})
    return {
        "title": "CRoP (Kaur et al., IMWUT 2025): ΔP and ΔG, percentage points",
        "headers": HEADERS,
        "rows": out_rows,
        "note": ("ΔP = Σ over the seen and unseen context of (CRoP − generic) accuracy; ΔG the same against "
                 "finetune-full; per user averaged over seeds, then over users. Paper signature: ΔP > 0, ΔG > 0 mostly "
                 "through the unseen context, FT−generic unseen < 0. sparsity = share of prunable weights ToleratedPrune "
                 "removed; mixed kept = share of jobs whose step-4 selection kept the mixed model (epoch 0). "
                 f"finetune-full variant used for each crop variant: {'; '.join(ft_used)}."),
    }


def _user_mean(gains: list[Gains]) -> Gains:
    """Average a user's seeds into one Gains, so every user weighs the same in the mean row."""
    def avg(attr: str) -> Any:
        return _avg(getattr(g, attr) for g in gains)
    return Gains(avg("p_seen"), avg("p_unseen"), avg("g_seen"), avg("g_unseen"), avg("ft_seen"), avg("ft_unseen"),
                 avg("sparsity"), avg("mixed"))
