"""DUET's paper-style summary for ``harbench report``: each claim with a 95 % interval over users and a verdict.

The unit is a user under a seed: every quantity is averaged over a user's jobs of one seed
(``harbench.per_unit_mean``), paired by unit where it is a difference (``harbench.paired``) or a ratio
(``harbench.ratio``, judged on the log scale), and every claim of the summary is judged in one declared family
(``harbench.Family``: intervals over users and seeds, Holm over the family; docs/statistics.md). A quantity equal
for every unit is stated as a fact; an exact null is "no effect". Rows, per dataset:

* the claims: DUET − ``generic`` > 0; DUET − its universal head (``delta_scale=0``) > 0, the personalisation
  itself; DUET − ``finetune-last`` > −2 points (non-inferiority, "fine-tuning-level accuracy"); the adapt-time
  and device-energy ratios of ``finetune-full`` and ``finetune-last`` at their claim settings (their defaults)
  over DUET's > 100 (two orders of magnitude; the paper: 0.34 ms vs 60 s);
* the decomposition: the universal head − ``generic`` (what a better head alone brings), and every other DUET
  variant in the run against ``generic`` and against default DUET, and against its own ``delta_scale=0`` twin
  when the run has one (the personalisation at that setting);
* the cost ratios for every other fine-tuning variant in the run (e.g. ``epochs=1``): the ratio as a function of
  the fine-tuning budget;
* DUET's first adapt in a process (one-off start-up costs) apart from its steady state. Cost ratios use the
  steady state when the run has one.

DUET's device energy is charged conservatively as the measured adapt energy (which, in this single-process
simulation, also contains the cloud's generator pass) plus the radio energy of the bytes it moved (``comm_j``).
Pure over export rows, so it is tested with fabricated rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable

import harbench

OURS = "duet"
BASELINE = "generic"
FINETUNES = ("finetune-full", "finetune-last")
NON_INFERIOR_PTS = 2.0  # DUET - finetune-last > -2 points counts as "fine-tuning-level accuracy"
RATIO_CLAIM = 100.0  # "orders of magnitude": at least 100x cheaper
UNIVERSAL = "delta_scale=0.0"

HEADERS = ["dataset", "quantity", "claim", "mean", "95 % CI", "users", "verdict", "Holm p (m)"]
FAMILY = "DUET summary (every judged claim, every dataset)"


def _fact(row: dict, key: str) -> Any:
    return (row.get("facts") or {}).get(key)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _device_j(row: dict) -> float | None:
    adapt_j = _num(row.get("adapt_j"))
    if adapt_j is None:
        return None
    return adapt_j + (_num(_fact(row, "comm_j")) or 0.0)


def _variant(row: dict) -> dict[str, str]:
    return dict(tok.split("=", 1) for tok in (row.get("variant") or "").split() if "=" in tok)


def _label(method: str, variant: dict[str, str]) -> str:
    v = " ".join(f"{k}={val}" for k, val in sorted(variant.items()))
    return f"{method}[{v}]" if v else method


def _per_user(rows: list[dict], value: Callable[[dict], Any]) -> dict:
    """One value per user × seed (``harbench.Unit``): seeds are a level of the claims' intervals."""
    return harbench.per_unit_mean(rows, lambda r: _num(value(r)))


def _acc(rows: list[dict], metric: str = "acc_seen") -> dict:
    return _per_user(rows, lambda r: r.get(metric))


def _ratio(num: dict, den: dict) -> dict:
    return harbench.ratio(num, den)


def _outcome(result: harbench.Verdict) -> str:
    if result.verdict == "fact":
        return f"fact ({'holds' if result.fact_holds else 'does not hold'})"
    return result.verdict


def _row(dataset: str, quantity: str, claim: str, result: harbench.Verdict, scale: float, unit: str,
         spec: str = "+.1f") -> list:
    ci = "—" if math.isnan(result.low) else f"[{result.low * scale:{spec}}, {result.high * scale:{spec}}]"
    mean = "—" if math.isnan(result.mean) else f"{result.mean * scale:{spec}}"
    holm = ("—" if not claim or math.isnan(result.p_adjusted) else
            f"{result.p_adjusted:.3g} ({result.family_size})")
    return [dataset, quantity, claim, f"{mean}{unit}", ci, result.n_users, _outcome(result) if claim else "—", holm]


def duet_summary(rows: list[dict]) -> dict | None:
    ok = [r for r in rows if r.get("status") == "ok"]
    if not any(r["method"] == OURS for r in ok):
        return None
    family = harbench.Family(FAMILY)
    pending: list[tuple[list, Any]] = []
    for dataset in sorted({r.get("dataset") or "" for r in ok}):
        pending += _dataset_rows(dataset, [r for r in ok if (r.get("dataset") or "") == dataset], family)
    verdicts = family.verdicts()
    table = [render(verdicts[item] if isinstance(item, int) else item) for render, item in pending]
    return {
        "title": "DUET (Lv et al., WWW 2023): claims with 95 % intervals over users",
        "headers": HEADERS,
        "rows": table,
        "verdicts": [v.to_dict() for v in verdicts],  # every judged claim (harbench validate --power)
        "note": ("Accuracy = acc_seen (later windows of the adapt context), in points; each user averaged over seeds, "
                 "intervals over users × seeds, verdicts in one family: " + family.summary() + "; ratios judged on "
                 "the log scale (geometric mean). duet[delta_scale=0.0] = the universal head alone "
                 "(no personalisation). Ratios = fine-tuning's adapt time (or device energy) / DUET's, per user, "
                 "over DUET's steady-state adapts when the run has any (process_adapt_index > 0), else over all; DUET's device energy = measured adapt energy (it also contains the simulated "
                 "cloud's generator pass) + modelled radio energy. A claim with '—' is descriptive, not judged (not in the "
                 "family)."),
    }


def _dataset_rows(dataset: str, rows: list[dict], family: harbench.Family) -> list[tuple[Callable, Any]]:
    """(render, item) per table row: ``item`` is the claim's index in ``family`` (judged once the family is
    complete), or the verdict of a descriptive quantity (judged alone, shown without a verdict)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[_label(r["method"], _variant(r))].append(r)
    out: list[tuple[Callable, Any]] = []
    if OURS not in groups:
        return out
    ours = groups[OURS]
    acc_ours = _acc(ours)
    base = _acc(groups.get(BASELINE, []))

    def add(quantity: str, claim: str, values: dict, threshold: float = 0.0, direction: str = ">",
            scale: float = 100.0, unit: str = " pts", spec: str = "+.1f") -> None:
        if not values:
            return
        log = unit == "x"  # a ratio: multiplicative, judged on the log scale

        def render(res: harbench.Verdict) -> list:
            return _row(dataset, quantity, claim, res, scale, unit, spec)

        if claim:
            out.append((render, family.add(quantity, values, threshold, direction, scale="log" if log else "linear")))
        else:
            out.append((render, harbench.judge(quantity, values, threshold=threshold, direction=direction,
                                               scale="log" if log else "linear")))

    # the claims
    add("duet − generic", "> 0", harbench.paired(acc_ours, base))
    add("duet − generic (acc_unseen)", "> 0",
        harbench.paired(_acc(ours, "acc_unseen"), _acc(groups.get(BASELINE, []), "acc_unseen")))
    universal = groups.get(_label(OURS, {"delta_scale": "0.0"}), [])
    add("duet − universal head (delta_scale=0)", "> 0", harbench.paired(acc_ours, _acc(universal)))
    add("universal head − generic", "", harbench.paired(_acc(universal), base))
    for ft in FINETUNES:
        add(f"duet − {ft}", f"> −{NON_INFERIOR_PTS:g} pts" if ft == "finetune-last" else "",
            harbench.paired(acc_ours, _acc(groups.get(ft, []))),
            threshold=-NON_INFERIOR_PTS / 100 if ft == "finetune-last" else 0.0)

    # DUET's adapt cost: the first adapt of a process apart from the steady state
    first = [r for r in ours if _fact(r, "process_adapt_index") == 0]
    steady = [r for r in ours if (_fact(r, "process_adapt_index") or 0) > 0]
    cost_rows = steady or ours
    if first:
        add(f"duet adapt_s, first adapt of a process ({len(first)} jobs)", "", _per_user(first, lambda r: r.get("adapt_s")),
            scale=1000.0, unit=" ms", spec=".2f")
    add("duet adapt_s, steady state" if steady else "duet adapt_s (no steady-state jobs in this run)", "",
        _per_user(cost_rows, lambda r: r.get("adapt_s")), scale=1000.0, unit=" ms", spec=".2f")
    duet_s = _per_user(cost_rows, lambda r: r.get("adapt_s"))
    duet_j = _per_user(cost_rows, _device_j)

    # fine-tuning cost / DUET cost: at the claim settings (judged) and for every other budget in the run
    ft_labels = sorted((lbl for lbl, rs in groups.items() if rs[0]["method"] in FINETUNES),
                       key=lambda lbl: (groups[lbl][0]["method"], lbl != groups[lbl][0]["method"],
                                        _num(_variant(groups[lbl][0]).get("epochs")) or 0, lbl))
    for lbl in ft_labels:
        rs = groups[lbl]
        claim_setting = lbl == rs[0]["method"]
        claim = f"> {RATIO_CLAIM:g}x" if claim_setting else ""
        epochs = _variant(rs[0]).get("epochs") or (rs[0].get("method_params") or {}).get("epochs")
        suffix = f" ({epochs} epochs)" if epochs is not None else ""
        add(f"{lbl} adapt time / duet{suffix}", claim, _ratio(_per_user(rs, lambda r: r.get("adapt_s")), duet_s),
            threshold=RATIO_CLAIM, scale=1.0, unit="x", spec=".0f")
        add(f"{lbl} device energy / duet{suffix}", claim, _ratio(_per_user(rs, _device_j), duet_j),
            threshold=RATIO_CLAIM, scale=1.0, unit="x", spec=".0f")

    # every other DUET variant: against generic, against default DUET, against its own universal head
    for lbl in sorted(groups):
        rs = groups[lbl]
        if rs[0]["method"] != OURS or lbl in (OURS, _label(OURS, {"delta_scale": "0.0"})):
            continue
        v = _variant(rs[0])
        acc_v = _acc(rs)
        add(f"{lbl} − generic", "", harbench.paired(acc_v, base))
        add(f"{lbl} − duet", "", harbench.paired(acc_v, acc_ours))
        if v.get("delta_scale") != "0.0":
            twin = groups.get(_label(OURS, {**v, "delta_scale": "0.0"}))
            if twin:
                add(f"{lbl} − its universal head", "> 0", harbench.paired(acc_v, _acc(twin)))
    return out
