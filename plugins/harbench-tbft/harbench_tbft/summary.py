"""TBFT's claims for ``harbench report``, computed from a run's exported rows (a pure function).

The paper's claims (numbers recomputed in our notes) and how each is judged here, per backbone (``tbft`` on
``resnet1d``, ``tbft-preact`` on ``preact1d``) and per ``freeze_bn`` setting, every claim in one declared family
(``harbench.Family``, Holm): the mean of a per-unit value (a user under a seed, averaged over training sizes ``k``),
its 95 % interval over users and seeds, and a verdict (a value equal for every unit is stated as a fact; the
paper's gap sizes are the claimed sizes; docs/statistics.md):

* **best block per drift type** — input -> front, feature -> stage3, output -> fc: per user, accuracy of the
  paper's block minus that of the strongest other single block (the one with the highest mean), > 0;
* **TBFT - Block Avg** — the drift-matched block minus the mean of the four single blocks, > 0, per drift type
  and pooled (each user averaged over the drift types; paper +15.30 points over its nine cells);
* **fc / all saving** — 1 - cost(fc) / cost(all) per user, per adapt phase (``adapt_j``, or ``adapt_s`` when no
  energy was measured), per adapt phase in CPU time (``facts.adapt_cpu_s``: ``adapt``'s own process CPU time,
  which waiting for a core on a shared machine does not inflate), in FLOPs (``adapt_flops``) and per training step (``facts.step_cpu_s``:
  the median CPU time of one optimizer step inside the adapt phase, at the recipe's batch), judged
  against the paper's lowest figure for fc (67.92 %), and Block Avg's saving against the paper's 41.51 %;
* **the energy claim as the paper measures it** — one training step of **one** sample per block
  (``main_exp/power.py``): ``facts.step_b1_cpu_s``, timed in ``prepare`` outside every adapt phase; the unit is
  the measurement (one per prepared model: dataset configuration × seed), not the user, since every user of a
  prepared model shares it;
* **FLOP rows against a bound they can reach** — training fc still runs the whole forward pass, so its FLOP saving
  per step is at most ``1 − train_step_flops(fc) / train_step_flops(all)`` (≈ 66.5 % on these backbones, below the
  paper's 67.92 % energy figure): FLOP savings are judged against ``min(paper, bound − 2 points)``
  (:func:`flop_bound`); the paper's figure stays the threshold of the time and energy rows;
* **recipe and drift agree** — a row is judged under a drift type only when it was trained with that drift's
  recipe (:func:`harbench_tbft.recipes.recipe_fits`): e.g. sp-sw-har's age split is judged as feature-level, so
  rows trained there with ``recipe: auto`` (the CIFAR recipe, from the device context) are reported as not judged.

Each block's share of the forward FLOPs and of full fine-tuning's backward FLOPs (``facts.block_shares``) goes
in the note, as does how often Auto-RGN picked each block. :func:`cell_table` is the per-cell accuracy table
(one dataset configuration x hardware x method configuration, averaged over users and seeds).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from statistics import mean
from typing import Any, Callable, Hashable, Iterable

from harbench import ClaimResult, Family, PaperClaim, Unit, judge, paired, per_person, per_unit_mean

from .paper import BY_KEY, DRIFT_TO_BLOCK, FAMILY, SINGLE_BLOCKS
from .recipes import recipe_fits

METHODS = {"tbft": "resnet1d", "tbft-preact": "preact1d"}
FLOP_BOUND_SLACK = BY_KEY["saving:fc"].no_effect  # FLOP rows: judged at min(paper, bound − this)
SAVINGS = (("fc", BY_KEY["saving:fc"]), ("Block Avg", BY_KEY["saving:block-avg"]))
DRIFTS = ("input", "feature", "output")
# parameters that pick the variant inside a configuration rather than define it
_VARIANT_PARAMS = ("block", "auto_by")

Row = dict[str, Any]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def variant(row: Row) -> str:
    """A single block, ``all``, ``auto`` (declared drift) or ``auto-rgn``."""
    params = row.get("method_params") or {}
    block = params.get("block", (row.get("facts") or {}).get("block"))
    if block == "auto" and params.get("auto_by") == "rgn":
        return "auto-rgn"
    return str(block)


def drift_of(row: Row) -> str | None:
    """The drift type a row's cell is judged under: the context's declared drift type, except for a
    subpopulation split (sp-sw-har's ``targets``/``population`` attribute conditions with the adapt context among
    the population's contexts, or its crossed ``groups``): there the population and the targets differ by who they
    are, not by device, a feature-level shift, whatever the device context declares."""
    params = row.get("dataset_params") or {}
    if params.get("targets") or params.get("population") or params.get("groups"):
        contexts = params.get("population_contexts") or []
        if not contexts or params.get("adapt_context") in contexts:
            return "feature"
    return (row.get("facts") or {}).get("drift")


def _ok_tbft(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.get("method") in METHODS and r.get("status") == "ok"]


def config_key(row: Row) -> tuple[str, str]:
    """(method, JSON of the parameters that are not the block choice): one claims section each."""
    params = {k: v for k, v in (row.get("method_params") or {}).items() if k not in _VARIANT_PARAMS}
    return row["method"], json.dumps(params, sort_keys=True, default=str)


def config_label(key: tuple[str, str]) -> tuple[str, str]:
    """(backbone, the configuration's notable settings) for the table."""
    method, params = key
    p = json.loads(params)
    extra = [f"freeze_bn={str(bool(p.get('freeze_bn'))).lower()}"]
    if p.get("recipe", "auto") != "auto":
        extra.append(f"recipe={p['recipe']}")
    return METHODS.get(method, method), ", ".join(extra)


def _user(row: Row) -> Hashable:
    """A user within one drift type: the dataset configuration without the training size ``k``."""
    params = {k: v for k, v in (row.get("dataset_params") or {}).items() if k != "k"}
    return (row.get("dataset"), json.dumps(params, sort_keys=True, default=str), row.get("user"))


def _person(row: Row) -> Hashable:
    """The same person across drift types (the synthetic generator draws a user's traits from the seed alone)."""
    return (row.get("dataset"), row.get("user"))


def _column(name: str) -> Callable[[Row], float | None]:
    return lambda r: r.get(name) if _number(r.get(name)) else None


def _fact(name: str) -> Callable[[Row], float | None]:
    return lambda r: (r.get("facts") or {}).get(name) if _number((r.get("facts") or {}).get(name)) else None


def per_user(rows: list[Row], var: str, value: Callable[[Row], float | None],
             user: Callable[[Row], Hashable] = _user) -> dict[Unit, float]:
    """Per user × seed (``harbench.Unit``) means of ``value`` over the rows of variant ``var`` (k pooled)."""
    return per_unit_mean([r for r in rows if variant(r) == var], value, user=user)


def block_avg(by_block: dict[str, dict[Hashable, float]]) -> dict[Hashable, float]:
    users = set.intersection(*(set(by_block[b]) for b in SINGLE_BLOCKS)) if all(by_block.get(b) for b in SINGLE_BLOCKS) else set()
    return {u: mean(by_block[b][u] for b in SINGLE_BLOCKS) for u in users}


def saving(part: dict[Hashable, float], full: dict[Hashable, float]) -> dict[Hashable, float]:
    """Per user 1 - part / full (only users with both and a positive full cost)."""
    return {u: 1.0 - part[u] / full[u] for u in part.keys() & full.keys() if full[u] > 0}


def cost_column(rows: list[Row]) -> str:
    """``adapt_j`` when every TBFT row has a measured energy, else the adapt time ``adapt_s`` as the proxy."""
    return "adapt_j" if rows and all(_number(r.get("adapt_j")) for r in rows) else "adapt_s"


def _remap(values: dict[Hashable, float], rows: list[Row]) -> dict[Hashable, float]:
    """Re-key per-user values from :func:`_user` to :func:`_person`: a person's configurations (drift types, or one
    drift's several settings, e.g. a subject's phone -> watch and watch -> phone) averaged into one unit."""
    return per_person(values, rows, user=_user, person=_person)


def flop_bound(rows: list[Row], part: str) -> float | None:
    """The largest FLOP saving ``part`` (``fc`` or ``Block Avg``) can reach against ``all``: one minus the ratio of
    their training-step FLOPs per window (``facts.train_step_flops``: the whole forward pass plus the backward
    pass down to the first trainable layer), mean over users; None when the rows do not carry it."""
    step = {b: per_user(rows, b, _fact("train_step_flops")) for b in (*SINGLE_BLOCKS, "all")}
    if not step["all"]:
        return None
    ours = block_avg(step) if part == "Block Avg" else step.get(part) or {}
    bound = saving(ours, step["all"])
    return mean(bound.values()) if bound else None


def _measurement(row: Row) -> Hashable:
    """One prepared model: the dataset configuration (without ``k``) and the seed."""
    params = {k: v for k, v in (row.get("dataset_params") or {}).items() if k != "k"}
    return (row.get("dataset"), json.dumps(params, sort_keys=True, default=str), row.get("seed"))


def batch1_savings(rows: list[Row], part: str) -> dict[Hashable, float]:
    """Per prepared model, ``part``'s saving of a batch-1 training step against ``all`` (``facts.step_b1_cpu_s``,
    the paper's ``power.py`` protocol)."""
    out: dict[Hashable, float] = {}
    for r in rows:
        steps = (r.get("facts") or {}).get("step_b1_cpu_s") or {}
        if not steps.get("all") or any(not _number(steps.get(b)) for b in (*SINGLE_BLOCKS, "all")):
            continue
        cost = mean(steps[b] for b in SINGLE_BLOCKS) if part == "Block Avg" else steps[part]
        out[_measurement(r)] = 1.0 - cost / steps["all"]
    return out


def _unjudged(drift: str, rows: list[Row]) -> ClaimResult:
    """A drift's rows trained with another drift's recipe: no values, no verdict, no place in the family."""
    recipes = sorted({str((r.get("facts") or {}).get("recipe")) for r in rows})
    return judge(f"{drift}: not judged, trained with the {'/'.join(recipes)} recipe (judged as {drift} drift)", {})


def _paper_text(paper: PaperClaim) -> str:
    """The table's paper column: the paper's size (points or %) and where it comes from."""
    if paper.claimed is None:
        return "yes"
    if paper.key.startswith("gap:"):
        return f"{100 * paper.claimed:+.2f} pts"
    return f"{100 * paper.claimed:.2f} % ({paper.source})"


def claims(rows: list[Row]) -> list[tuple[tuple[str, str], str, ClaimResult, str]]:
    """Every claim of every configuration: (configuration key, drift or "pooled", result, the paper's figure), all
    judged in one family (:func:`claims_family`)."""
    return claims_family(rows)[1]


def claims_family(rows: list[Row]) -> tuple[Family, list[tuple[tuple[str, str], str, ClaimResult, str]]]:
    """The declared family (:data:`harbench_tbft.paper.FAMILY`) and its verdicts, in the order of :func:`claims`."""
    family = Family(FAMILY)
    pending = _claims(rows, family)
    verdicts = family.verdicts()
    return family, [(key, drift, verdicts[i] if isinstance(i, int) else i, paper) for key, drift, i, paper in pending]


def _claims(rows: list[Row], family: Family) -> list[tuple[tuple[str, str], str, int | ClaimResult, str]]:
    """Every claim as (configuration, drift or "pooled", its index in ``family`` — or the verdict of a row not
    judged — and the paper column); each claim's threshold, size and margin come from :mod:`harbench_tbft.paper`."""
    def add(key: str, text: str, values: dict, threshold: float | None = None) -> int:
        return family.add_paper(BY_KEY[key], values, text=text, threshold=threshold)

    rows = _ok_tbft(rows)
    by_config: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        by_config[config_key(r)].append(r)
    out: list[tuple[tuple[str, str], str, int | ClaimResult, str]] = []
    for key in sorted(by_config):
        crow = by_config[key]
        gaps: dict[Hashable, float] = {}
        for drift in DRIFTS:
            drow = [r for r in crow if drift_of(r) == drift]
            fitting = [r for r in drow if recipe_fits((r.get("facts") or {}).get("recipe"), drift)]
            if drow and not fitting:
                out.append((key, drift, _unjudged(drift, drow), "recipe ≠ drift"))
                continue
            drow = fitting
            acc = {b: per_user(drow, b, _column("acc_seen")) for b in SINGLE_BLOCKS}
            if not all(acc.values()):
                continue
            matched = DRIFT_TO_BLOCK[drift]
            means = {b: mean(_remap(v, drow).values()) for b, v in acc.items()}
            best = max(means, key=means.__getitem__)
            rival = max((b for b in SINGLE_BLOCKS if b != matched), key=means.__getitem__)
            out.append((key, drift, add(f"best-block:{drift}", f"{drift}: {matched} beats {rival} (best block by "
                                        f"mean: {best})", _remap(paired(acc[matched], acc[rival]), drow)),
                        _paper_text(BY_KEY[f"best-block:{drift}"])))
            gap = paired(acc[matched], block_avg(acc))
            out.append((key, drift, add(f"gap:{drift}", f"{drift}: TBFT ({matched}) - Block Avg", _remap(gap, drow)),
                        _paper_text(BY_KEY[f"gap:{drift}"])))
            gaps.update(gap)
        if gaps:
            out.append((key, "pooled", add("gap:pooled", "TBFT - Block Avg, pooled over drift types",
                                           _remap(gaps, crow)), _paper_text(BY_KEY["gap:pooled"])))
        if not any(variant(r) == "all" for r in crow):
            continue
        column = cost_column(crow)
        what = "energy" if column == "adapt_j" else "time"
        for label, value in ((f"adapt {what}", _column(column)), ("adapt CPU time", _fact("adapt_cpu_s")),
                             ("adapt FLOPs", _column("adapt_flops")), ("step CPU time", _fact("step_cpu_s"))):
            cost = {b: per_user(crow, b, value) for b in (*SINGLE_BLOCKS, "all")}
            if not cost["fc"] or not cost["all"]:
                continue
            for part, claim in SAVINGS:
                if part == "Block Avg" and not all(cost[b] for b in SINGLE_BLOCKS):
                    continue
                part_cost = block_avg(cost) if part == "Block Avg" else cost["fc"]
                threshold, paper = claim.threshold, _paper_text(claim)
                bound = flop_bound(crow, part) if label == "adapt FLOPs" else None
                if bound is not None:
                    threshold = min(threshold, bound - FLOP_BOUND_SLACK)
                    paper = f"{paper}; FLOP bound {100 * bound:.1f} %"
                values = _remap(saving(part_cost, cost["all"]), crow)
                out.append((key, "pooled", add(claim.key, f"{part} saves > {100 * threshold:.4g} % of all's {label}",
                                               values, threshold), paper))
        for part, claim in SAVINGS:
            values = batch1_savings(crow, part)
            if values:
                text = f"{part} saves > {100 * claim.threshold:.4g} % of all's batch-1 step CPU time"
                out.append((key, "pooled", add(claim.key, text, values), f"{_paper_text(claim)}, paper protocol"))
    return out


def _is_points(claim: str) -> bool:
    return "saves" not in claim


def block_share_text(rows: list[Row]) -> str:
    """Each backbone's per-block share of forward and backward FLOPs (from any of its rows)."""
    parts = []
    for method, backbone in METHODS.items():
        shares = next(((r.get("facts") or {}).get("block_shares") for r in rows
                       if r.get("method") == method and (r.get("facts") or {}).get("block_shares")), None)
        if not shares:
            continue
        fwd = ", ".join(f"{b} {100 * s['forward']:.0f}" for b, s in shares.items() if s["forward"] > 0.0005)
        bwd = ", ".join(f"{b} {100 * s['backward']:.0f}" for b, s in shares.items() if s["backward"] > 0.0005)
        parts.append(f"{backbone}: forward FLOPs % {fwd}; backward (full fine-tuning) % {bwd}")
    return "; ".join(parts)


def rgn_picks(rows: list[Row]) -> dict[tuple[str, str], Counter]:
    """How often Auto-RGN chose each block, per backbone and drift type."""
    picks: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in _ok_tbft(rows):
        if variant(r) == "auto-rgn":
            picks[(METHODS[r["method"]], str(drift_of(r)))][(r.get("facts") or {}).get("block")] += 1
    return picks


def _fmt_claim(result: ClaimResult) -> str:
    scale, unit = (100.0, " pts") if _is_points(result.claim) else (100.0, " %")
    if result.verdict == "fact":
        return f"{result.mean * scale:+.2f}{unit} for every unit (fact)"
    return result.text(scale, unit).split(": ", 1)[0].rsplit(",", 1)[0]


def _fmt_verdict(result: ClaimResult) -> str:
    if result.verdict == "fact":
        return f"fact ({'holds' if result.fact_holds else 'does not hold'})"
    extra = [f"size: {result.half_size} of the paper's" if result.half_size else "",
             f"~{result.users_needed:.0f} users for 80 % power" if result.users_needed == result.users_needed else ""]
    return "; ".join([result.verdict, *[e for e in extra if e]])


def summarize(rows: list[Row]) -> dict[str, Any] | None:
    """The claims table, or ``None`` when the rows hold the ingredients of no claim."""
    family, found = claims_family(rows)
    if not found:
        return None
    headers = ["backbone", "setting", "drift", "claim", "mean [95 % CI]", "users", "verdict", "Holm p (m)", "paper"]
    table = []
    for key, drift, result, paper in found:
        backbone, setting = config_label(key)
        holm = "—" if math.isnan(result.p_adjusted) else f"{result.p_adjusted:.3g} ({result.family_size})"
        table.append([backbone, setting, drift, result.claim, _fmt_claim(result), str(result.n_users),
                      _fmt_verdict(result), holm, paper])
    ok = _ok_tbft(rows)
    notes = [f"Per-unit values (a user under a seed, k averaged): acc_seen (points) or cost savings (%); 95 % "
             f"intervals over users and seeds (batch-1 step rows: one value per prepared model, the 'users' column "
             f"counts those); {family.summary()}; thresholds, paper sizes and no-effect margins from "
             f"harbench_tbft.paper. Costs: {cost_column(ok)} (the harness's measurement "
             f"of the adapt phase); adapt CPU time = the process CPU time of adapt(); step CPU time = median CPU "
             f"time of one optimizer step inside the adapt phase at the recipe's batch."]
    shares = block_share_text(ok)
    if shares:
        notes.append(f"Block FLOP shares per window: {shares}.")
    picks = rgn_picks(ok)
    if picks:
        notes.append("Auto-RGN picks: " + "; ".join(
            f"{bb} {drift}: " + ", ".join(f"{b} {n}" for b, n in c.most_common()) for (bb, drift), c in sorted(picks.items())))
    return {"title": "TBFT: the paper's claims, per backbone and BatchNorm setting", "headers": headers,
            "rows": table, "note": "\n".join(notes),
            "verdicts": [v.to_dict() for v in family.verdicts()]}  # every judged claim (harbench validate --power)


def cell_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Mean acc_seen % per cell (backbone x setting x dataset configuration) and variant, with TBFT - Block Avg."""
    ok = _ok_tbft(rows)
    cells: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in ok:
        if not _number(r.get("acc_seen")):
            continue
        ctx = (r.get("dataset_params") or {}).get("adapt_context", r.get("dataset"))
        k = (r.get("dataset_params") or {}).get("k", "")
        cells[(*config_label(config_key(r)), str(drift_of(r)), f"{ctx} k={k}")][variant(r)].append(100 * r["acc_seen"])
    variants = [*SINGLE_BLOCKS, "Block Avg", "all", "auto-rgn"]
    headers = ["backbone", "setting", "drift", "cell", *variants, "TBFT-BlockAvg"]
    table = []
    for key in sorted(cells):
        accs = {v: mean(x) for v, x in cells[key].items()}
        if all(b in accs for b in SINGLE_BLOCKS):
            accs["Block Avg"] = mean(accs[b] for b in SINGLE_BLOCKS)
        matched = DRIFT_TO_BLOCK.get(key[2])
        gap = accs[matched] - accs["Block Avg"] if matched in accs and "Block Avg" in accs else None
        table.append([*key, *(f"{accs[v]:.1f}" if v in accs else "-" for v in variants),
                      "-" if gap is None else f"{gap:+.1f}"])
    return headers, table
