"""The decision view: which method to deploy on which device, from a run's rows (pure functions, no torch).

Per hardware target it lists the methods on the accuracy–cost Pareto fronts (accuracy vs adapt energy, vs batch-1
latency, vs adapt memory when an ``adapt_peak_mb`` metric exists), the best method under the user's budgets
(``latency_ms_p50<=5``) and a one-line verdict ("on rpi5: tbft[block=fc] is within 1 pt of the best accuracy at
12× less adapt energy"). Accuracy does not depend on the target (the adapted model is evaluated on the host), so it
is given once per method configuration, with the table cell's 95 % interval (users and seeds); costs are given per target and
labelled ``measured``, ``estimated`` or ``uncalibrated`` (an estimate from a board profile nobody calibrated).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..stats.units import paired
from ..stats.verdicts import Claim, ClaimResult, Family
from .analysis import energy_methods, pareto_front, user_key
from .budgets import Budget
from .frame import Frame, means_by

ACCURACY = "acc_seen"
TOLERANCE = 0.01  # "as accurate as the best": within 1 point
AXES = (("adapt_j", "adapt energy"), ("latency_ms_p50", "latency"), ("adapt_peak_mb", "adapt memory"))
FAMILY = "decision view (the cheaper option within tolerance, every target)"
FALLBACK_AXIS = ("adapt_s", "adapt time")  # a target that recorded no energy is judged on adapt time
ENERGY_METHODS = {  # what each energy method is, for the legend
    "rapl": "a hardware energy counter (RAPL) read around the phase",
    "codecarbon-estimate": "codecarbon's model: a TDP guess × load + RAM power, nearly proportional to time "
                           "(no energy counter on this machine)",
    "none": "no energy recorded",
}
# ---------------------------------------------------------------------------------------------- the view


@dataclass(frozen=True)
class Accuracy:
    """One method configuration's accuracy: mean over users (seeds averaged), the table cell's 95 % interval."""

    label: str
    mean: float
    low: float
    high: float
    users: int
    unseen: float
    per_user: dict[Any, float] = field(repr=False, compare=False)


@dataclass
class Option:
    """One method configuration on one target: its accuracy and its mean costs there."""

    label: str
    accuracy: Accuracy
    costs: dict[str, float]
    fronts: list[str] = field(default_factory=list)  # names of the axes on whose front it lies
    within_budget: bool = True


@dataclass
class TargetView:
    hardware: str
    honesty: str  # measured | estimated | uncalibrated
    energy: list[str]
    axes: list[tuple[str, str]]
    options: list[Option]
    best: Option | None
    verdict: str
    claim: ClaimResult | None = None
    pending: Any = field(default=None, repr=False, compare=False)  # (Claim, render) until the family is judged
    # axis -> (low, high) ratios to the estimate, from the calibration residuals (estimated targets only)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    calibrated_from: str | None = None


@dataclass
class DecisionView:
    accuracy: list[Accuracy]
    targets: list[TargetView]
    budgets: list[Budget]
    legend: list[str]


def label(method: str, variant: str) -> str:
    """The short label of a method configuration: ``tbft[block=fc]``."""
    return f"{method}[{variant.replace(' ', ',')}]" if variant else method


def honesty(rows: Sequence[dict[str, Any]]) -> str:
    """``measured`` on the device, ``estimated`` by a calibrated model, ``uncalibrated``: by a model of figures
    nobody fitted to the board (the profile says so)."""
    if all(r.get("mode") != "estimated" for r in rows):
        return "measured"
    statuses = {((r.get("provenance") or {}).get("hardware") or {}).get("extra", {}).get("calibration_status")
                for r in rows}
    return "uncalibrated" if "uncalibrated" in statuses else "estimated"


def cost_intervals(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, tuple[float, float]], str | None]:
    """The target's cost intervals (ratios to the estimate, per cost axis) and where its calibration measurements
    came from, as the hardware describes itself (``extra.cost_intervals``, ``extra.calibrated_from``); empty for
    measured targets and for profiles no measurement backs."""
    for r in rows:
        if r.get("mode") != "estimated":
            continue
        extra = ((r.get("provenance") or {}).get("hardware") or {}).get("extra", {})
        intervals = {str(k): (float(v[0]), float(v[1])) for k, v in (extra.get("cost_intervals") or {}).items()}
        return intervals, extra.get("calibrated_from")
    return {}, None


def accuracies(rows: Sequence[dict[str, Any]], metric: str = ACCURACY, frame: Frame | None = None
               ) -> dict[tuple, Accuracy]:
    """Per method configuration of the successful ``rows``, in the order they first appear: the mean over users
    of ``metric`` (each user the mean over its jobs), the cell's interval, and the same mean of ``acc_unseen``.
    The per-user means are ``analysis.per_user``'s, from the frame's columns (one pass per metric, not per group)."""
    f = frame if frame is not None else Frame(list(rows))
    g = f.grouping(["dataset", "dataset_params", "user"])
    users = (g.codes, [user_key(f.rows[int(m[0])], f.keys) for m in g.members])  # analysis.user_key's keys
    seen, unseen = f.values(metric), f.values("acc_unseen")
    out = {}
    for (method, variant), members in zip(*_groups(f, ["method", "variant"])):
        per = _per_user(seen, users, members)
        if not per:
            continue
        cell = f.cell(metric, members, (0.0, 1.0))  # the table cell's interval (users and seeds as levels)
        low, high = cell.lo, cell.hi
        other = _per_user(unseen, users, members)
        out[(method, variant)] = Accuracy(label(method, variant), statistics.fmean(per.values()), low, high,
                                          len(per), statistics.fmean(other.values()) if other else math.nan, per)
    return out


def _groups(f: Frame, columns: list[str]) -> tuple[list[tuple], list[np.ndarray]]:
    """The groups of the frame's successful rows by ``columns``, in first-appearance order, with their positions."""
    g = f.grouping(columns)
    kept = [(k, m[f.ok[m]]) for k, m in zip(g.keys, g.members)]
    kept = [(k, m) for k, m in kept if len(m)]
    return [k for k, _ in kept], [m for _, m in kept]


def _per_user(values: np.ndarray, users: tuple[np.ndarray, list[Any]], members: np.ndarray) -> dict[Any, float]:
    """``analysis.per_user`` of the rows at ``members``: each user's ``math.fsum`` mean of its finite values, the
    users in the order their first row appears (the paired tests key by user).
    ``users``: each row's user code and each code's key."""
    m = members[~np.isnan(values[members])]
    if not len(m):
        return {}
    codes = users[0][m]
    means = means_by(values[m], codes)  # in code order
    distinct, first = np.unique(codes, return_index=True)
    order = np.argsort(first, kind="stable")
    return {users[1][int(distinct[i])]: float(means[i]) for i in order.tolist()}


def decide(rows: Sequence[dict[str, Any]], budgets: Sequence[Budget] = (), metric: str = ACCURACY,
           tolerance: float = TOLERANCE) -> DecisionView:
    """The decision view of these rows (only successful jobs count)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    f = Frame(ok)
    acc = accuracies(ok, metric, f)
    targets = []
    configs = dict(zip(*_groups(f, ["hardware", "method", "variant"])))
    for (hardware,), members in zip(*_groups(f, ["hardware"])):
        mine = {(m, v): at for (h, m, v), at in configs.items() if h == hardware}
        targets.append(_target(str(hardware), [ok[i] for i in members.tolist()], acc, budgets, tolerance, f, mine))
    family = Family(FAMILY)  # the targets' "cheaper within tolerance" claims: one family, Holm over the targets
    index = {id(t): family.add(t.pending[0].text, t.pending[0].values, t.pending[0].threshold,
                               t.pending[0].direction) for t in targets if t.pending is not None}
    verdicts = family.verdicts()
    for t in targets:
        if t.pending is not None:
            t.claim = verdicts[index[id(t)]]
            t.verdict = t.pending[1](t.claim)
    found = sorted({e for t in targets for e in t.energy})
    legend = [f"accuracy: {metric}, mean over users (seeds averaged) with a 95 % interval over users and seeds; it is "
              "the same on every target (the adapted model is evaluated on the host)",
              "measured: costs measured on the target; estimated: modelled from a calibrated profile; uncalibrated: "
              "modelled from a board profile nobody fitted to the board (order of magnitude only)",
              "front: the axes (E adapt energy, L latency, M adapt memory, T adapt time) on whose accuracy–cost "
              "Pareto front the method lies"]
    if family.claims:
        legend.append("verdicts: " + family.summary())
    legend += [f"energy {e}: {ENERGY_METHODS.get(e, _energy_text(e))}" for e in found]
    return DecisionView(sorted(acc.values(), key=lambda a: -a.mean), targets, list(budgets), legend)


def _energy_text(method: str) -> str:
    if method.startswith("estimate:"):
        return f"modelled by the {method.split(':', 1)[1]} estimator from the board profile (not measured)"
    return "as the target reports it"


def _target(hardware: str, rows: list[dict[str, Any]], acc: dict[tuple, Accuracy], budgets: Sequence[Budget],
            tolerance: float, f: Frame, configs: dict[tuple, np.ndarray]) -> TargetView:
    """``configs``: the positions in ``f`` of each method configuration's jobs on this target."""
    options = []
    for key, members in configs.items():
        if key not in acc:
            continue
        costs = {}
        for name in {a for a, _ in AXES} | {FALLBACK_AXIS[0]} | {b.metric for b in budgets}:
            values = f.values(name)[members]
            values = values[~np.isnan(values)].tolist()
            if values:
                costs[name] = statistics.fmean(values)
        options.append(Option(acc[key].label, acc[key], costs))
    axes = [(a, n) for a, n in AXES if sum(a in o.costs for o in options) >= 1]
    if not any(a == "adapt_j" for a, _ in axes) and any(FALLBACK_AXIS[0] in o.costs for o in options):
        axes.insert(0, FALLBACK_AXIS)
    for name, _ in axes:
        have = [o for o in options if name in o.costs]
        for i in pareto_front([(o.costs[name], o.accuracy.mean) for o in have]):
            have[i].fronts.append(name)
    for o in options:
        o.within_budget = all(b.allows(o.accuracy.mean if b.metric == ACCURACY else o.costs.get(b.metric))
                              for b in budgets)
    allowed = [o for o in options if o.within_budget]
    best = max(allowed, key=lambda o: (o.accuracy.mean, -o.costs.get(axes[0][0], 0.0) if axes else 0.0),
               default=None)
    verdict, pending = _verdict(hardware, options, axes, tolerance)
    intervals, source = cost_intervals(rows)
    view = TargetView(hardware, honesty(rows), energy_methods(rows), axes, options, best, verdict, None,
                      intervals=intervals, calibrated_from=source)
    view.pending = pending
    return view


Pending = tuple[Claim, Callable[[ClaimResult], str]] | None


def _verdict(hardware: str, options: list[Option], axes: list[tuple[str, str]],
             tolerance: float) -> tuple[str, Pending]:
    """The target's verdict text, or the claim it rests on and how to word it once the report's family of
    claims has been judged (:func:`decide`)."""
    if not options:
        return f"on {hardware}: no successful job", None
    top = max(options, key=lambda o: o.accuracy.mean)
    head = f"on {hardware}: "
    if not axes:
        return head + f"{top.label} has the best accuracy ({_pts(top.accuracy.mean)} %); no cost was recorded", None
    axis, axis_name = axes[0]
    close = [o for o in options if o.accuracy.mean >= top.accuracy.mean - tolerance and axis in o.costs]
    if top not in close or not close:
        return head + f"{top.label} has the best accuracy ({_pts(top.accuracy.mean)} %)", None
    cheapest = min(close, key=lambda o: (o.costs[axis], -o.accuracy.mean))
    if cheapest is top or cheapest.costs[axis] >= top.costs[axis]:
        return (head + f"{top.label} has the best accuracy ({_pts(top.accuracy.mean)} %) and the least {axis_name} "
                f"of the methods within {_tol(tolerance)} pt of it"), None
    diff = paired(cheapest.accuracy.per_user, top.accuracy.per_user)
    claim = Claim(f"{cheapest.label} within {_tol(tolerance)} pt of {top.label}", diff, -tolerance, ">")
    ratio = top.costs[axis] / cheapest.costs[axis] if cheapest.costs[axis] > 0 else math.inf
    saving = ("at no " + axis_name if cheapest.costs[axis] <= 0
              else f"at {100 * (1 - 1 / ratio):.0f} % less {axis_name}" if ratio < 2  # "1.0× less" reads as none
              else f"at {_ratio(ratio)}× less {axis_name}")

    def render(res: ClaimResult) -> str:
        evidence = (f"Δ {100 * res.mean:+.1f} [{100 * res.low:+.1f}, {100 * res.high:+.1f}] pts"
                    if not math.isnan(res.low) else f"Δ {100 * res.mean:+.1f} pts, interval needs ≥ 3 users")
        holm = (f", Holm p {res.p_adjusted:.3g} of {res.family_size}" if not math.isnan(res.p_adjusted) else "")
        return (head + f"{cheapest.label} is within {_tol(tolerance)} pt of the best accuracy ({top.label}, "
                f"{_pts(top.accuracy.mean)} %) {saving} ({evidence}, {res.n_users} users: {res.verdict}{holm})")

    return "", (claim, render)


def _pts(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.1f}"


def _tol(value: float) -> str:
    return f"{100 * value:g}"


def _ratio(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


# -------------------------------------------------------------------------------------------- rendering


def sig(value: float | None, digits: int = 2) -> str:
    """A figure to ``digits`` significant digits (a modelled cost has no more precision than that)."""
    if value is None or math.isnan(value):
        return "—"
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if exponent >= digits - 1:
        return f"{value:,.0f}"
    return f"{value:.{digits - 1 - exponent}f}"


FRONT_LETTER = {"adapt_j": "E", "latency_ms_p50": "L", "adapt_peak_mb": "M", "adapt_s": "T"}
UNITS = {"adapt_j": "J", "latency_ms_p50": "ms", "adapt_peak_mb": "MB", "adapt_s": "s"}


def accuracy_table(view: DecisionView) -> tuple[list[str], list[list[str]]]:
    headers = ["method", "accuracy (%) [95 % CI]", "unseen contexts (%)", "users"]
    rows = []
    for a in view.accuracy:
        interval = f" [{100 * a.low:.1f}, {100 * a.high:.1f}]" if not math.isnan(a.low) else ""
        rows.append([a.label, f"{100 * a.mean:.1f}{interval}",
                     "—" if math.isnan(a.unseen) else f"{100 * a.unseen:.1f}", str(a.users)])
    return headers, rows


def target_table(t: TargetView, every: bool = True) -> tuple[list[str], list[list[str]]]:
    """The target's options, those on no front marked "—" (a method must not vanish from its target because a
    cheaper one is as accurate: its costs are still what a reader came for); ``every=False``: fronts and the
    budget winner only."""
    digits = 2 if t.honesty != "measured" else 3
    headers = ["method", "accuracy (%)", *[f"{name} ({UNITS.get(a, '')})" for a, name in t.axes], "front"]
    if t.best is not None and any(not o.within_budget for o in t.options):
        headers.append("within budget")
    shown = [o for o in t.options if every or o.fronts or o is t.best]
    rows = []
    for o in sorted(shown, key=lambda o: -o.accuracy.mean):
        line = [o.label, f"{100 * o.accuracy.mean:.1f}", *[_with_interval(t, a, o.costs.get(a), digits) for a, _ in t.axes],
                " ".join(FRONT_LETTER.get(f, f) for f in o.fronts) or "—"]
        if len(headers) > len(line):
            line.append("yes" if o.within_budget else "no")
        rows.append(line)
    return headers, rows


def _with_interval(t: TargetView, axis: str, value: float | None, digits: int) -> str:
    ratio = t.intervals.get(axis)
    if value is None or ratio is None or math.isnan(value):
        return sig(value, digits)
    return f"{sig(value, digits)} [{sig(value * ratio[0], digits)}, {sig(value * ratio[1], digits)}]"


def target_title(t: TargetView) -> str:
    energy = ", ".join(e for e in t.energy) or "none recorded"
    title = f"on {t.hardware} ({t.honesty}; energy: {energy})"
    if t.honesty == "measured":
        return title
    bare = [name for a, name in t.axes if a not in t.intervals]
    with_interval = [name for a, name in t.axes if a in t.intervals]
    if with_interval:
        title += (f"; {', '.join(with_interval)} with an interval from the calibration residuals"
                  + (f" (measurements: {t.calibrated_from})" if t.calibrated_from else ""))
    if bare:  # a measured calibration of inference latency backs nothing else
        backed = t.honesty != "uncalibrated" and not with_interval
        title += f"; {', '.join(bare)}: {'no interval' if backed else 'uncalibrated, no interval'}"
    return title


def budget_line(t: TargetView, budgets: Sequence[Budget]) -> str | None:
    if not budgets:
        return None
    spec = ", ".join(b.text for b in budgets)
    if t.best is None:
        return f"best under {spec}: no method meets these budgets on {t.hardware}"
    return f"best under {spec}: {t.best.label} ({100 * t.best.accuracy.mean:.1f} %)"


def render_text(view: DecisionView, fmt: str = "github") -> str:
    """The decision view as text: accuracy once, then one short table and verdict per target, then the legend."""
    from tabulate import tabulate

    parts = ["Accuracy (once per method configuration)",
             tabulate(accuracy_table(view)[1], headers=accuracy_table(view)[0], tablefmt=fmt, disable_numparse=True)]
    for t in view.targets:
        headers, rows = target_table(t)
        parts += ["", target_title(t), tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)]
        line = budget_line(t, view.budgets)
        if line:
            parts.append(line)
        parts.append(t.verdict)
    parts += ["", *view.legend]
    return "\n".join(parts)
