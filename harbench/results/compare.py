"""Regression checks between two runs: deltas per method × hardware, thresholds, and noise-aware significance.

Made for the CI of method plugins: ``harbench compare BASE NEW --fail-on "acc_seen:-1pt,adapt_j:+10%"`` exits
non-zero when a metric moved the wrong way beyond its threshold *and* what was actually sampled shows it:

* an accuracy-like metric (anything that is not a measured cost) is paired by user across the runs (each user the
  mean over its seeds): a one-sided Wilcoxon signed-rank test when the users can reach the significance level,
  otherwise (too few users) only a change that every paired user shows counts, with no significance claimed;
* a measured cost (time: s, ms; energy: J, mJ, as the metric declares its unit) counts only on repeated raw
  samples the store keeps (batch-1 latency; a metric's own samples when a target stores them), as in asv: a
  one-sided Mann–Whitney U test where the sample sizes can reach the level, otherwise non-overlapping 99 %
  confidence intervals. One figure per job is not a sample of the measurement's noise (a loaded machine shifts
  every job): such a change is reported as ``unverified`` and never fails;
* a cost modelled by an estimated target is deterministic, so it is paired by user like accuracy.

Energy figures obtained by different energy methods are never compared: the cell is reported as incomparable.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..units import FRACTION, parse_amount
from .analysis import estimate, finite, per_user

ENERGY_UNITS = {"J", "mJ"}
TIME_UNITS = {"s", "ms"}
# metrics whose raw samples the store keeps (batch-1 latency): their significance uses those samples
LATENCY_METRICS = {"latency_ms_p50", "latency_ms_p90", "latency_ms_p99"}
DEFAULT_METRICS = ["acc_seen", "acc_unseen", "adapt_s", "adapt_j", "latency_ms_p50"]
CELL = ("dataset", "method", "variant", "hardware")


@dataclass(frozen=True)
class Threshold:
    """``acc_seen:-1pt``: a drop of more than 0.01 (one point) fails; ``adapt_j:+10%``: a rise of more than 10 % fails.

    The sign is the direction that counts as worse; ``%`` makes the amount relative to the base value.
    """

    metric: str
    worse: int  # +1: an increase is worse, -1: a decrease is worse
    amount: float
    relative: bool

    def exceeded(self, base: float, new: float) -> bool:
        delta = (new - base) * self.worse
        if self.relative:
            if base == 0:
                return delta > 0
            return delta / abs(base) > self.amount
        return delta > self.amount

    def __str__(self) -> str:
        sign = "+" if self.worse > 0 else "-"
        return f"{sign}{100 * self.amount:g}%" if self.relative else f"{sign}{self.amount:g}"


def parse_fail_on(spec: str | None, units: dict[str, str] | None = None) -> list[Threshold]:
    """Parse ``"acc_seen:-1pt,adapt_j:+10%"``; each amount carries its sign (the direction of a regression) and
    follows :mod:`harbench.units` (an accuracy-like metric's drop in ``pt`` or ``frac``; ``%`` on a cost is relative).
    ``units`` maps metric names to their declared unit (default: the registered metrics)."""
    units = _units() if units is None else units
    out: list[Threshold] = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        metric, sep, raw = part.partition(":")
        metric, raw = metric.strip(), raw.strip()
        if not sep or not metric or not raw or raw[0] not in "+-":
            raise ValueError(f"--fail-on {part!r}: expected METRIC:+AMOUNT or METRIC:-AMOUNT (e.g. adapt_j:+10%)")
        amount = parse_amount(raw, metric, fraction=units.get(metric) == FRACTION, option="--fail-on", clause=part,
                              delta=True)
        out.append(Threshold(metric, 1 if amount.sign == "+" else -1, amount.value, amount.relative))
    return out


# ---------------------------------------------------------------------------------------- significance


def mann_whitney_p(base: Sequence[float], new: Sequence[float], worse: int) -> float:
    """One-sided p that ``new`` is stochastically worse (greater when ``worse`` = +1) than ``base``."""
    from scipy import stats

    alternative = "greater" if worse > 0 else "less"
    return float(stats.mannwhitneyu(new, base, alternative=alternative).pvalue)


def min_mann_whitney_p(n1: int, n2: int) -> float:
    """The smallest one-sided p any data can give with these sample sizes: 1 / C(n1 + n2, n1)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    try:
        return 1.0 / math.comb(n1 + n2, min(n1, n2))
    except OverflowError:  # thousands of latency samples: C(n1+n2, n) has more digits than a float holds
        return 0.0


def significant(base: Sequence[float], new: Sequence[float], worse: int, alpha: float = 0.01) -> tuple[bool, str]:
    """asv's rule: Mann–Whitney U when the sizes allow p < alpha, else non-overlapping 99 % CIs of the mean."""
    base, new = finite(base), finite(new)
    if min_mann_whitney_p(len(base), len(new)) < alpha:
        p = mann_whitney_p(base, new, worse)
        return p < alpha, f"Mann–Whitney p={p:.2g}"
    a, b = estimate(base, 0.99), estimate(new, 0.99)
    if any(math.isnan(v) for v in (a.lo, a.hi, b.lo, b.hi)):
        return False, f"too few samples (n={len(base)}/{len(new)})"
    overlap = a.hi >= b.lo and b.hi >= a.lo
    return not overlap, "99 % CIs " + ("overlap" if overlap else "disjoint")


def paired_by_user(base_rows: Sequence[dict[str, Any]], new_rows: Sequence[dict[str, Any]], metric: str, worse: int,
                   alpha: float = 0.01) -> tuple[bool, str]:
    """Whether ``new`` is worse than ``base`` for the users both runs have (each user the mean over its seeds).

    A one-sided Wilcoxon signed-rank test (exact) when the number of users can reach ``alpha`` at all (the
    smallest p of n users is 2^-n); with fewer users no significance can be claimed, and a change counts only when
    every paired user moved the worse way (the values are deterministic per seed, so that is no noise either)."""
    b, n = per_user(base_rows, metric), per_user(new_rows, metric)
    users = sorted(set(b) & set(n), key=str)
    if not users:
        return False, "no user in both runs: no significance claim"
    diffs = [worse * (n[u] - b[u]) for u in users]  # > 0: worse for that user
    if all(abs(d) < 1e-12 for d in diffs):
        return False, f"identical for all {len(users)} users"
    if 2.0 ** -len(users) < alpha:
        from scipy import stats

        p = float(stats.wilcoxon(diffs, alternative="greater").pvalue)
        return p < alpha, f"paired Wilcoxon p={p:.2g}, {len(users)} users"
    unanimous = all(d > 0 for d in diffs)
    return unanimous, (f"{len(users)} user(s): too few for p < {alpha:g}, no significance claimed; "
                       + ("every user worse" if unanimous else "not every user worse"))


# ---------------------------------------------------------------------------------------------- compare


@dataclass
class Delta:
    """One metric of one cell (dataset × method × variant × hardware) in both runs."""

    cell: dict[str, Any]
    metric: str
    base: float
    new: float
    threshold: Threshold | None = None
    verdict: str = "ok"  # ok | regression | noise | unverified | incomparable | failed | missing | new
    detail: str = ""

    @property
    def change(self) -> float:
        return self.new - self.base

    @property
    def relative(self) -> float:
        return self.change / abs(self.base) if self.base not in (0, None) and not math.isnan(self.base) else math.nan


@dataclass
class Comparison:
    deltas: list[Delta] = field(default_factory=list)

    @property
    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.verdict in ("regression", "failed")]

    def cells(self, verdict: str | None = None) -> int:
        """How many cells (dataset × method × variant × hardware) carry ``verdict`` (any, when None)."""
        return len({tuple(map(str, d.cell.values())) for d in self.deltas if verdict is None or d.verdict == verdict})

    @property
    def unmatched(self) -> list[Delta]:
        """Cells only one run has: a gate cannot say "no regression" about them."""
        return [d for d in self.deltas if d.verdict in ("missing", "new")]

    def summary(self) -> str:
        """The one line a CI log needs: what was compared, what could not be, what regressed."""
        compared = self.cells() - self.cells("missing") - self.cells("new")
        return (f"{compared} cell(s) compared, {self.cells('missing')} missing from the new run, "
                f"{self.cells('new')} new, {len({tuple(map(str, d.cell.values())) for d in self.regressions})} "
                f"regressed")


def _cells(rows: Iterable[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(tuple(r.get(c) or "" for c in CELL), []).append(r)
    return out


def _by_method(cells: dict[tuple, list[dict[str, Any]]], side: str) -> dict[tuple, list[dict[str, Any]]]:
    """Cells keyed without their variant (the variant shown becomes "BASE→NEW" when the two differ)."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    variants: dict[tuple, str] = {}
    for (dataset, method, variant, hardware), rows in cells.items():
        key = (dataset, method, "", hardware)
        if key in variants:
            raise ValueError(f"--match method: run {side} has two variants of {method} on {hardware} "
                             f"({variants[key] or '(default)'} and {variant or '(default)'}); compare them by variant")
        variants[key] = variant
        out[key] = rows
    return out


def _samples_by_cell(samples: Iterable[tuple[dict[str, Any], list[float]]] | None,
                     scale: float = 1000.0, variants: bool = True) -> dict[tuple, list[float]]:
    """Raw samples pooled per method × variant × hardware (latency: seconds, scaled to milliseconds); with
    ``variants=False`` per method × hardware (``--match method``)."""
    out: dict[tuple, list[float]] = {}
    for ident, data in samples or ():
        variant = (ident.get("variant") or "") if variants else ""
        out.setdefault((ident.get("method") or "", variant, ident.get("hardware") or ""), []).extend(
            [scale * x for x in data])
    return out


def _units(registry: Any = None) -> dict[str, str]:
    if registry is None:
        from ..registry_snapshot import reading_registry  # a valid snapshot: no plugin, no torch

        registry = reading_registry()
    return {r.name: r.cls.unit for r in registry.items["metric"].values()}


def compare_runs(base_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]], thresholds: Sequence[Threshold],
                 *, metrics: Sequence[str] | None = None, base_samples=None, new_samples=None,
                 base_repeats: dict[str, Any] | None = None, new_repeats: dict[str, Any] | None = None,
                 alpha: float = 0.01, registry: Any = None, match: str = "variant") -> Comparison:
    """Compare two runs cell by cell. ``*_samples`` are ``Store.samples(run, "latency_s")`` iterables;
    ``*_repeats`` map another cost metric to ``Store.samples(run, metric)``: its repeated raw samples, in the
    metric's unit, where a target stores them (without them a measured cost change is ``unverified``).

    Whether a metric is a noisy cost (time: s, ms; energy: J, mJ) follows the unit its metric plugin declares,
    so a plugin's own time or energy metric gets the same significance rule and energy-method check.

    A cell that ran in the base but whose jobs failed in the new run is a regression; a cell only one run has is
    ``missing``/``new`` (the command fails on those under ``--fail-on`` unless ``--allow-missing``).

    ``match="method"`` pairs a method's cells across runs whatever their variant (a changed configuration is
    compared, not listed as missing and new), when each run has one variant of it per dataset × hardware.
    """
    if match not in ("variant", "method"):
        raise ValueError(f"--match {match!r}: expected 'variant' (the default) or 'method'")
    by_metric = {t.metric: t for t in thresholds}
    known = set().union(*(r.keys() for r in [*base_rows, *new_rows])) if (base_rows or new_rows) else set()
    asked = list(dict.fromkeys([*(metrics or []), *by_metric]))
    default = [m for m in DEFAULT_METRICS if m in known] if metrics is None else []  # e.g. no adapt_j: no energy
    names = list(dict.fromkeys([*(metrics or default), *by_metric]))
    unknown = [m for m in asked if known and m not in known]
    if unknown:  # a typo in --fail-on must not pass silently as "no regression"
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    base_cells, new_cells = _cells(base_rows), _cells(new_rows)
    if match == "method":
        base_cells, new_cells = _by_method(base_cells, "BASE"), _by_method(new_cells, "NEW")
    exact = match == "variant"
    latency = (_samples_by_cell(base_samples, variants=exact), _samples_by_cell(new_samples, variants=exact))
    samples = {m: latency for m in LATENCY_METRICS}
    for m in (set(base_repeats or {}) & set(new_repeats or {})) - LATENCY_METRICS:
        samples[m] = (_samples_by_cell((base_repeats or {})[m], 1.0, exact),
                      _samples_by_cell((new_repeats or {})[m], 1.0, exact))
    units = _units(registry)
    result = Comparison()
    for key in sorted(set(base_cells) | set(new_cells), key=lambda k: tuple(map(str, k))):
        cell = dict(zip(CELL, key))
        b_all, n_all = base_cells.get(key, []), new_cells.get(key, [])
        if match == "method":
            b_v = {str(r.get("variant") or "") for r in b_all}
            n_v = {str(r.get("variant") or "") for r in n_all}
            cell["variant"] = "→".join(sorted(b_v) + sorted(n_v)) if b_v != n_v else next(iter(b_v or n_v), "")
        b_ok = [r for r in b_all if r.get("status") == "ok"]
        n_ok = [r for r in n_all if r.get("status") == "ok"]
        if not b_all or not n_all:
            result.deltas.append(Delta(cell, "—", math.nan, math.nan, verdict="new" if not b_all else "missing",
                                       detail="only in the new run" if not b_all else "only in the base run"))
            continue
        if b_ok and len(n_ok) < len(b_ok) and any(r.get("status") == "failed" for r in n_all):
            failed = sum(r.get("status") == "failed" for r in n_all)
            errors = sorted({str(r.get("error")) for r in n_all if r.get("status") == "failed"})
            result.deltas.append(Delta(cell, "status", len(b_ok), len(n_ok), verdict="failed",
                                       detail=f"{failed} job(s) failed: {errors[0]}"))
        for metric in names:
            result.deltas.append(_delta(cell, metric, b_ok, n_ok, by_metric.get(metric), samples.get(metric), alpha,
                                        units.get(metric, ""), sample_key=(key[1], key[2], key[3])))
    return result


def _delta(cell, metric, b_ok, n_ok, threshold, samples, alpha, unit: str = "", sample_key: tuple = ()) -> Delta:
    energy = unit in ENERGY_UNITS
    cost = energy or unit in TIME_UNITS
    b_vals, n_vals = finite(r.get(metric) for r in b_ok), finite(r.get(metric) for r in n_ok)
    d = Delta(cell, metric, statistics.fmean(b_vals) if b_vals else math.nan,
              statistics.fmean(n_vals) if n_vals else math.nan, threshold)
    if math.isnan(d.base) or math.isnan(d.new):
        d.verdict, d.detail = "ok", "no values"
        return d
    if energy:
        b_em = sorted({str(r.get("energy_method")) for r in b_ok if r.get("energy_method")})
        n_em = sorted({str(r.get("energy_method")) for r in n_ok if r.get("energy_method")})
        if b_em != n_em:
            d.verdict = "incomparable"
            d.detail = f"energy method {'/'.join(b_em) or '?'} → {'/'.join(n_em) or '?'}: not compared"
            return d
    modelled = all(r.get("mode") == "estimated" for r in [*b_ok, *n_ok])
    if any(r.get("mode") == "estimated" for r in [*b_ok, *n_ok]) and cost:
        d.detail = "estimated"
    if threshold is None or not threshold.exceeded(d.base, d.new):
        return d
    if not cost or modelled:  # deterministic per seed: pair the users across the runs
        is_sig, how = paired_by_user(b_ok, n_ok, metric, threshold.worse, alpha)
        d.verdict = "regression" if is_sig else "noise"
    else:
        b_s = samples[0].get(sample_key, []) if samples else []
        n_s = samples[1].get(sample_key, []) if samples else []
        if not b_s or not n_s:
            d.verdict = "unverified"
            how = "one figure per job and no repeated samples stored: no significance claim"
        else:
            is_sig, how = significant(b_s, n_s, threshold.worse, alpha)
            d.verdict = "regression" if is_sig else "noise"
    d.detail = ", ".join(x for x in (d.detail, how) if x)
    return d


def comparison_table(comparison: Comparison) -> tuple[list[str], list[list[Any]]]:
    headers = ["dataset", "method", "variant", "hardware", "metric", "base", "new", "Δ", "Δ %", "threshold", "verdict",
               "detail"]
    table = []
    for d in comparison.deltas:
        rel = d.relative
        table.append([d.cell["dataset"], d.cell["method"], d.cell["variant"], d.cell["hardware"], d.metric,
                      _num(d.base), _num(d.new), _num(d.change, signed=True),
                      "—" if math.isnan(rel) else f"{100 * rel:+.1f} %", str(d.threshold or "—"),
                      d.verdict.upper() if d.verdict in ("regression", "failed") else d.verdict, d.detail])
    return headers, table


def _num(value: float, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "—"
    magnitude = abs(value)
    digits = 4 if magnitude < 1 else 2 if magnitude < 100 else 0
    return f"{value:{'+' if signed else ''}.{digits}f}"
