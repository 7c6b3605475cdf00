"""Verdicts on a paper's claims: what was tested, at what level, in which family, and what it would take to decide.

A :class:`Claim` is a statement about the mean of a per-unit quantity (a paired difference, a ratio, a gain):
"mean > threshold" or "mean < threshold", optionally with the paper's own number (``claimed``) and an equivalence
margin (``margin``). :func:`judge_family` judges the claims of one declared family together:

* **direction** — a t test on the interval's standard error (:mod:`harbench.stats.intervals`: users and seeds as
  levels); the two-sided p-values of the family are Holm-adjusted (:mod:`harbench.stats.multiplicity`).
  ``reproduced``: adjusted p < alpha and the estimate on the claimed side; ``not reproduced``: adjusted p < alpha on
  the other side; otherwise ``inconclusive`` — unless an equivalence test decides ``no effect``.
* **no effect** — TOST with the claim's declared ``margin`` around the threshold, at alpha / m (Bonferroni over the
  family's m tests: conservative, stated); an exact null (every unit exactly at the threshold) is ``no effect``
  without a test.
* **size** — with the paper's number: is it inside the 95 % interval, and is the effect at least half the claimed
  size (the interval wholly beyond the half-way point: ``at least half``; wholly short of it: ``less than half``).
  Size statements are descriptive at the interval's level, outside the family.
* **fact** — a quantity identical for every unit (a parameter ratio) is deterministic: it is stated, with whether
  it satisfies the claim, and given no verdict and no place in the family.
* **power** — an inconclusive claim with a claimed size says how many users would decide it
  (:mod:`harbench.stats.power`).

Bad input never raises: a non-finite value, too few units or no values at all gives ``no verdict`` with one line
saying what was expected; an empty family is an empty list.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Hashable, Iterable, Literal, Mapping, Sequence

import numpy as np

from .intervals import Interval, Scale, direction_decidable, grid_judge_many, unit_grid
from .multiplicity import holm, holm_levels
from .power import power_sentence, users_for_power
from .robust import MIN_BOOT_USERS
from .significance import tost_p

ZERO_EFFECT_NOTE = ("no power computed: the paper's figure is the threshold itself, so no number of users decides "
                    "an effect of that size beyond it")

Outcome = Literal["reproduced", "not reproduced", "inconclusive", "no effect", "fact", "no verdict"]
Direction = Literal[">", "<"]
ALPHA = 0.05


@dataclass(frozen=True)
class Claim:
    """One claim to judge: ``mean(values) direction threshold``.

    ``values``: per unit (a mapping keyed by :class:`harbench.stats.Unit` makes seeds a level; keyed by user, or a
    plain iterable, is one seed). ``claimed``: the paper's number for the same quantity (size checks and power).
    ``margin``: the equivalence margin around ``threshold`` within which the effect counts as none.
    ``scale="log"``: a positive multiplicative quantity (a ratio), judged on the log scale (geometric mean).
    ``bounds``: the quantity's range (accuracy: (0, 1)), which the interval never leaves.
    ``null``: the value that means no effect at all (a saving of 0, a ratio of 1), from which the size verdict
    measures "half the claimed size"; None: the threshold (a sign claim's threshold is its null). A claim judged
    at the paper's own figure ("saves > 67.92 %") needs it: half-way between its threshold and its claimed size is
    the claimed size itself."""

    text: str
    values: Mapping[Any, float] | Iterable[float]
    threshold: float = 0.0
    direction: str = ">"
    claimed: float | None = None
    margin: float | None = None
    scale: Scale = "linear"
    bounds: tuple[float, float] | None = None
    null: float | None = None


@dataclass(frozen=True)
class PaperClaim:
    """A paper's claim as data, the one home of its numbers: what a summary judges (``direction`` ``threshold``),
    the size the paper reports (``claimed``, in ``unit``; None where it gives none in that unit), the margin
    within which harbench reads the effect as none (``no_effect``: a declaration, used by TOST) and the Holm family
    it belongs to (``family``: the plugin summary's :class:`Family`). A summary turns it into a :class:`Claim` on
    its per-unit values with :meth:`to_claim` (or :meth:`Family.add_paper`); the row's own wording and, where the
    judged quantity's reach is lower than the paper's (a FLOP bound), a lower threshold are the only overrides."""

    key: str  # the summary's name for the claim
    claim: str
    direction: Literal[">", "<"]
    threshold: float
    claimed: float | None
    no_effect: float
    unit: str
    family: str
    source: str
    note: str = ""
    scale: Scale = "linear"  # "log": a positive multiplicative quantity (a ratio), judged as a geometric mean
    bounds: tuple[float, float] | None = None
    null: float | None = None  # no effect at all, where it is not the threshold (Claim.null)

    def to_claim(self, values: Mapping[Any, float] | Iterable[float], text: str | None = None,
                 threshold: float | None = None) -> Claim:
        return Claim(self.claim if text is None else text, values,
                     self.threshold if threshold is None else threshold, self.direction, self.claimed,
                     self.no_effect, self.scale, self.bounds, self.null)


@dataclass(frozen=True)
class Verdict:
    """What was tested and what came out, as plain fields (``to_dict`` for JSON/Markdown/LaTeX renderers)."""

    claim: str
    outcome: Outcome
    mean: float
    low: float
    high: float
    users: int
    seeds: int
    threshold: float
    direction: str
    level: float
    method: str
    family: str = ""
    family_size: int = 1
    alpha: float = ALPHA
    p: float = math.nan  # two-sided p of the direction test
    p_adjusted: float = math.nan  # Holm-adjusted within the family
    level_adjusted: float = math.nan  # the level Holm compared this test with
    claimed: float | None = None
    claimed_inside: bool | None = None  # the paper's number inside the interval
    half_size: str | None = None  # "at least half" | "less than half" | "undecided"
    margin: float | None = None
    p_equivalence: float = math.nan
    users_needed: float = math.nan  # users for 80 % power at the observed spread (inconclusive claims)
    power_note: str = ""
    fact_holds: bool | None = None  # for a fact: whether the deterministic value satisfies the claim
    notes: tuple[str, ...] = field(default_factory=tuple)
    scale: Scale = "linear"

    # --- the names older summaries read (ClaimResult)
    @property
    def verdict(self) -> str:
        return self.outcome

    @property
    def n_users(self) -> int:
        return self.users

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields; non-finite numbers as None."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}

    to_json = to_dict

    def interval_text(self, scale: float = 1.0, spec: str = "+.2f") -> str:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return "[—]"
        return f"[{self.low * scale:{spec}}, {self.high * scale:{spec}}]"

    def family_text(self) -> str:
        """``Holm over 12 claims of 'duet summary', tested at 0.0042`` (empty for facts and no verdicts)."""
        if math.isnan(self.level_adjusted):
            return ""
        return (f"Holm over {self.family_size} claim{'s' * (self.family_size != 1)}"
                f"{f' of {self.family!r}' if self.family else ''} at α = {self.alpha:g}: p = {self.p:.3g}, "
                f"adjusted p = {self.p_adjusted:.3g} (tested at {self.level_adjusted:.3g})")

    def size_text(self, scale: float = 1.0, spec: str = "+.2f") -> str:
        if self.claimed is None or self.claimed_inside is None:
            return ""
        where = ("inside" if self.claimed_inside else
                 "above" if self.claimed > self.high else "below")
        return f"paper's {self.claimed * scale:{spec}} is {where} the interval; effect {self.half_size} of the claimed size"

    def text(self, scale: float = 1.0, unit: str = "", spec: str = "+.2f") -> str:
        """One line: ``+3.10 [+0.40, +5.90] pts, 9 users × 3 seeds: reproduced (Holm over 4 claims ...)``."""
        design = f"{self.users} users" + (f" × {self.seeds} seeds" if self.seeds > 1 else "")
        if self.outcome == "fact":
            holds = "satisfies" if self.fact_holds else "does not satisfy"
            return (f"{self.mean * scale:{spec}}{unit} for every unit ({design}): a deterministic fact, it {holds} "
                    f"'{self.direction} {self.threshold * scale:{spec}}'")
        if self.outcome == "no verdict":
            return f"no verdict: {'; '.join(self.notes)}"
        parts = [f"{self.mean * scale:{spec}} {self.interval_text(scale, spec)}{unit}, {design}: {self.outcome}"]
        parts += [t for t in (self.family_text(), self.size_text(scale, spec)) if t]
        if self.margin is not None and not math.isnan(self.p_equivalence):
            parts.append(f"TOST ±{self.margin * scale:g}{unit}: p = {self.p_equivalence:.3g}")
        if self.power_note:
            parts.append(self.power_note)
        return "; ".join(parts)


ClaimResult = Verdict  # the name summaries imported before verdicts said what they tested


def _bad_values(values: Mapping[Any, float] | Iterable[float]) -> tuple[list[Any] | Mapping[Any, float], int, int]:
    items = values if isinstance(values, Mapping) else list(values)
    vals = items.values() if isinstance(items, Mapping) else items
    bad = total = 0
    for v in vals:
        total += 1
        try:
            f = float(v)
        except (TypeError, ValueError):
            bad += 1
            continue
        if not math.isfinite(f):
            bad += 1
    return items, bad, total


def judge_family(family: str, claims: Sequence[Claim], alpha: float = ALPHA, level: float = 0.95,
                 power: float = 0.8) -> list[Verdict]:
    """Judge the claims of one declared family together (see the module docstring); one verdict per claim, in
    order. An empty family gives an empty list."""
    prepared: list[tuple[Claim, Interval | None, list[str]]] = []
    grids: list[tuple[int, np.ndarray, int, list[str]]] = []
    for c in claims:
        if c.direction not in (">", "<"):
            prepared.append((c, None, [f"direction must be '>' or '<', got {c.direction!r}"]))
            continue
        items, bad, total = _bad_values(c.values)
        if bad:
            prepared.append((c, None, [f"{bad} of {total} values are NaN, infinite or not numbers "
                                       f"(expected finite numbers)"]))
            continue
        grid, dropped, notes = unit_grid(items)
        grids.append((len(prepared), grid, dropped, notes))
        prepared.append((c, None, notes))
    done = grid_judge_many([g for _, g, _, _ in grids], level, [prepared[i][0].scale for i, _, _, _ in grids],
                           [prepared[i][0].bounds for i, _, _, _ in grids], [d for _, _, d, _ in grids],
                           [n for _, _, _, n in grids], [prepared[i][0].threshold for i, _, _, _ in grids])
    one_sided: dict[int, tuple[float, float]] = {}
    for (i, _, _, _), (iv, notes, above_p, below_p) in zip(grids, done):
        prepared[i] = (prepared[i][0], iv, notes)
        one_sided[i] = (above_p, below_p)

    def tested(iv: Interval | None) -> bool:
        return iv is not None and iv.defined and iv.spread > 0 and math.isfinite(iv.se) and iv.se > 0

    test_index = [i for i, (_, iv, _) in enumerate(prepared) if tested(iv)]
    m = len(test_index)
    p_two = np.full(len(prepared), math.nan)
    p_gt = np.full(len(prepared), math.nan)
    center = np.full(len(prepared), math.nan)
    if m:
        ivs = [prepared[i][1] for i in test_index]
        log = np.array([iv.scale == "log" for iv in ivs])  # type: ignore[union-attr]
        mean = np.array([math.log(iv.mean) if lg else iv.mean for iv, lg in zip(ivs, log)])  # type: ignore
        gt = np.array([one_sided[i][0] for i in test_index])
        lt = np.array([one_sided[i][1] for i in test_index])
        p_two[test_index] = np.minimum(1.0, 2 * np.minimum(gt, lt))
        p_gt[test_index] = gt
        center[test_index] = mean
    adjusted = holm(p_two.tolist())
    levels = holm_levels(p_two.tolist(), alpha)

    verdicts: list[Verdict] = []
    pending_power: list[tuple[int, float, Interval, float]] = []
    for i, (c, maybe, notes) in enumerate(prepared):
        iv = maybe  # type: ignore[assignment]
        base = dict(claim=c.text, threshold=c.threshold, direction=c.direction, level=level, family=family,
                    family_size=m, alpha=alpha, claimed=c.claimed, margin=c.margin, notes=tuple(notes))
        if iv is None or iv.users == 0 or (not iv.defined and iv.spread != 0):
            verdicts.append(Verdict(outcome="no verdict", mean=math.nan if iv is None else iv.mean, low=math.nan,
                                    high=math.nan, users=0 if iv is None else iv.users,
                                    seeds=0 if iv is None else iv.seeds, method="" if iv is None else iv.method,
                                    **base))  # type: ignore[arg-type]
            continue
        common = dict(mean=iv.mean, low=iv.low, high=iv.high, users=iv.users, seeds=iv.seeds, method=iv.method,
                      scale=iv.scale)
        if not tested(iv):  # every unit the same value
            if abs(iv.mean - c.threshold) <= 1e-12 * max(1.0, abs(c.threshold)):
                verdicts.append(Verdict(outcome="no effect", **common, **base,  # type: ignore[arg-type]
                                        p_equivalence=0.0))
            else:
                holds = iv.mean > c.threshold if c.direction == ">" else iv.mean < c.threshold
                verdicts.append(Verdict(outcome="fact", fact_holds=bool(holds), **common, **base))  # type: ignore
            continue
        p, p_adj, lvl = float(p_two[i]), adjusted[i], levels[i]
        above = center[i] > (c.threshold if iv.scale != "log" else
                             math.log(c.threshold) if c.threshold > 0 else -math.inf)
        on_side = above if c.direction == ">" else not above
        outcome: Outcome
        if not direction_decidable(iv.users, iv.seeds, iv.scale):
            outcome = "inconclusive"
            notes = notes + [f"{iv.users} users × 1 seed: a direction verdict needs {MIN_BOOT_USERS} users with one "
                             f"seed (minimum-units rule, docs/statistics.md)"]
            base["notes"] = tuple(notes)
        elif p_adj < alpha:
            outcome = "reproduced" if on_side else "not reproduced"
        else:
            outcome = "inconclusive"
        p_eq = math.nan
        if c.margin is not None and c.margin > 0:
            thr = math.log(c.threshold) if iv.scale == "log" else c.threshold
            mar = math.log1p(c.margin / c.threshold) if iv.scale == "log" else c.margin
            p_eq = float(tost_p(np.array(center[i]), np.array(iv.se), np.array(iv.df), np.array(thr),
                                np.array(mar)))
            if outcome == "inconclusive" and p_eq < alpha / m:
                outcome = "no effect"
        inside = half = None
        if c.claimed is not None and math.isfinite(c.claimed):
            inside = bool(iv.low <= c.claimed <= iv.high)
            ref = c.threshold if c.null is None else c.null  # "no effect at all": half of the claim is from here
            if iv.scale == "log" and c.claimed > 0 and ref > 0:
                mid = math.sqrt(c.claimed * ref)
            else:
                mid = ref + (c.claimed - ref) / 2
            sign = 1.0 if c.claimed >= ref else -1.0  # the claimed side of the half-way point
            lo_side, hi_side = sign * (iv.low - mid), sign * (iv.high - mid)
            half = ("at least half" if min(lo_side, hi_side) > 0 else
                    "less than half" if max(lo_side, hi_side) < 0 else "undecided")
        verdicts.append(Verdict(outcome=outcome, **common, **base, p=p, p_adjusted=p_adj,  # type: ignore[arg-type]
                                level_adjusted=lvl, claimed_inside=inside, half_size=half, p_equivalence=p_eq))
        if outcome == "inconclusive" and c.claimed is not None and math.isfinite(c.claimed):
            if iv.scale == "log" and c.claimed > 0 and c.threshold > 0:
                effect = math.log(c.claimed / c.threshold)
            else:
                effect = c.claimed - c.threshold
            if effect == 0:  # the paper's figure is the threshold itself: no sample size decides it at that size
                verdicts[-1] = replace(verdicts[-1], power_note=ZERO_EFFECT_NOTE)
            else:
                pending_power.append((len(verdicts) - 1, effect, iv, alpha / m))
    if pending_power:
        needed = users_for_power(np.array([e for _, e, _, _ in pending_power]),
                                 np.array([iv.var_seed for _, _, iv, _ in pending_power]),
                                 np.array([iv.var_user for _, _, iv, _ in pending_power]),
                                 np.array([iv.users for _, _, iv, _ in pending_power]),
                                 np.array([iv.seeds for _, _, iv, _ in pending_power]),
                                 np.array([a for _, _, _, a in pending_power]), power)
        for (j, _, iv, a), n in zip(pending_power, needed.tolist()):
            verdicts[j] = replace(verdicts[j], users_needed=n,
                                  power_note=power_sentence(n, iv.users, iv.seeds, a, power))
    return verdicts


def judge(claim: str, per_user: Mapping[Hashable, float] | Iterable[float], threshold: float = 0.0,
          direction: str = ">", level: float = 0.95, *, claimed: float | None = None, margin: float | None = None,
          scale: Scale = "linear", bounds: tuple[float, float] | None = None, family: str = "") -> Verdict:
    """One claim judged on its own: a family of one (no multiplicity adjustment). Summaries that judge several
    claims use :class:`Family` (or :func:`judge_family`) so that Holm adjusts them together."""
    return judge_family(family, [Claim(claim, per_user, threshold, direction, claimed, margin, scale, bounds)],
                        alpha=1 - level, level=level)[0]


class Family:
    """A declared family of claims: add them, then :meth:`verdicts` judges them together (Holm).

    ``family.add(...)`` returns the claim's index in :meth:`verdicts`'s list, so a summary can collect its rows
    first and render them once the family is closed."""

    def __init__(self, name: str, alpha: float = ALPHA, level: float = 0.95) -> None:
        self.name, self.alpha, self.level = name, alpha, level
        self.claims: list[Claim] = []
        self._verdicts: list[Verdict] | None = None

    def add(self, claim: str, values: Mapping[Any, float] | Iterable[float], threshold: float = 0.0,
            direction: str = ">", *, claimed: float | None = None, margin: float | None = None,
            scale: Scale = "linear", bounds: tuple[float, float] | None = None) -> int:
        return self.add_claim(Claim(claim, values, threshold, direction, claimed, margin, scale, bounds))

    def add_claim(self, claim: Claim) -> int:
        self.claims.append(claim)
        self._verdicts = None
        return len(self.claims) - 1

    def add_paper(self, paper: PaperClaim, values: Mapping[Any, float] | Iterable[float], text: str | None = None,
                  threshold: float | None = None) -> int:
        """Add a paper's claim judged on ``values``; the claim must be declared in this family."""
        if paper.family != self.name:
            raise ValueError(f"claim {paper.key!r} is declared in family {paper.family!r}, not {self.name!r}")
        return self.add_claim(paper.to_claim(values, text, threshold))

    def verdicts(self) -> list[Verdict]:
        if self._verdicts is None:
            self._verdicts = judge_family(self.name, self.claims, self.alpha, self.level)
        return self._verdicts

    def summary(self) -> str:
        """The line a report prints beside the verdicts: family size, correction and level."""
        m = sum(1 for v in self.verdicts() if not math.isnan(v.level_adjusted))
        if not self.claims:
            return f"family {self.name!r}: no claims (size 0), nothing adjusted"
        return (f"family {self.name!r}: {m} tested claim{'s' * (m != 1)} (of {len(self.claims)}; facts and "
                f"no-verdicts are not tests), Holm step-down at family-wise α = {self.alpha:g} (levels "
                f"{self.alpha / max(m, 1):.3g} … {self.alpha:g}); 'no effect' by TOST at α/m = "
                f"{self.alpha / max(m, 1):.3g}")
