"""Figures of a run (matplotlib, the ``plots`` extra): the trade-offs users choose methods by.

* ``energy``: accuracy vs adapt energy, one panel per hardware target, Pareto front highlighted (one front per
  energy method: joules from different methods are never put on one front);
* ``latency``: accuracy vs batch-1 inference latency per hardware, with its Pareto front;
* ``robustness``: seen/unseen-context accuracy pair per method;
* ``gains``: per-user gain over ``generic`` per method (each dot a user, mean over seeds).

Points of ``estimated`` targets are hollow and labelled "(est.)".
"""

from __future__ import annotations

import io
import math
import statistics
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .analysis import finite, pareto_front, per_user, user_estimate
from .query import group_rows

FIGURES = ("energy", "latency", "robustness", "gains", "memory")
FORMATS = ("png", "svg")
SAME_COST = 0.02  # costs within 2 % of each other are one cost: no Pareto segment is drawn between them
LABEL_CHARS = 18  # longer method labels become a short key on the axis ("M3"), spelled out under the figure


class PlotsUnavailable(ImportError):
    pass


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotsUnavailable("plots need matplotlib: pip install 'harbench[plots]'") from None
    return plt


@dataclass(frozen=True)
class Point:
    """One method configuration on one target: means over users and seeds."""

    label: str
    hardware: str
    x: float
    y: float
    y_low: float  # the interval's bounds, inside [0, 1] (an accuracy interval never crosses 100 %)
    y_high: float
    estimated: bool
    energy_method: str


def _label(method: str, variant: str) -> str:
    return f"{method}[{variant.replace(' ', ',')}]" if variant else method


def _points(rows: Sequence[dict[str, Any]], x_metric: str) -> list[Point]:
    out = []
    for (method, variant, hardware), items in group_rows(rows, ["method", "variant", "hardware"]).items():
        ok = [r for r in items if r.get("status") == "ok"]
        xs = finite(r.get(x_metric) for r in ok)
        acc = user_estimate(ok, "acc_seen", bounds=(0.0, 1.0))  # the table cell's interval
        if not xs or math.isnan(acc.mean):
            continue
        low = acc.mean if math.isnan(acc.lo) else min(max(acc.lo, 0.0), acc.mean)
        high = acc.mean if math.isnan(acc.hi) else max(min(acc.hi, 1.0), acc.mean)
        out.append(Point(_label(method, variant), hardware, statistics.fmean(xs), acc.mean, low, high,
                         any(r.get("mode") == "estimated" for r in ok),
                         "/".join(sorted({str(r.get("energy_method")) for r in ok if r.get("energy_method")}))))
    return out


MARKERS = "osD^vPX*<>hp"


def _keys(labels: Sequence[str], rows: Sequence[dict[str, Any]]) -> tuple[list[str], str]:
    """Tick labels that fit under a bar: a label longer than :data:`LABEL_CHARS` becomes ``M<i>`` (numbered over
    every method configuration of the run, so one configuration has one key in every figure), and the key spelling
    those out is returned for the figure's foot (long variant names squashed the plot)."""
    every = sorted({_label(str(r.get("method") or ""), str(r.get("variant") or "")) for r in rows})
    short, key = [], []
    for label in labels:
        if len(label) <= LABEL_CHARS:
            short.append(label)
        else:
            short.append(f"M{every.index(label) + 1}")
            key.append(f"{short[-1]} = {label}")
    return short, "; ".join(key)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _yerr(points: Sequence["Point"]) -> list[list[float]]:
    """Asymmetric error bars from each point's interval, so none reaches past 0 or 100 %."""
    return [[100 * (p.y - p.y_low) for p in points], [100 * (p.y_high - p.y) for p in points]]


def _styles(labels: Sequence[str]) -> dict[str, tuple[Any, str]]:
    """One colour and marker per method configuration, the same in every panel and figure (legend, not labels
    on the points: labels on a dense front overlap)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: (cmap(i % cmap.N), MARKERS[i % len(MARKERS)]) for i, label in enumerate(sorted(labels))}


def _tradeoff(plt, rows, x_metric: str, x_label: str, title: str, split_by_energy: bool):
    """One panel per target (two per row, a page wide), one colour and marker per method configuration with a
    legend below; estimated points are hollow and their panel says how they were modelled."""
    from matplotlib.lines import Line2D

    from .decision import honesty

    points = _points(rows, x_metric)
    hardware = sorted({p.hardware for p in points}) or ["—"]
    styles = _styles(sorted({p.label for p in points}))
    ncols = min(2, len(hardware))
    nrows = math.ceil(len(hardware) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(10.0 if ncols == 2 else 6.4, 3.6 * nrows + 1.6), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[len(hardware):]:
        ax.set_visible(False)
    # one x scale for the whole figure: a log cpu panel beside linear ones could not be compared by eye
    positive = [p.x for p in points if p.x > 0]
    wide = bool(positive) and max(positive) / min(positive) > 100
    several = False
    for ax, hw in zip(axes.flat, hardware):
        mine = [p for p in points if p.hardware == hw]
        fronts = sorted({p.energy_method for p in mine}) if split_by_energy else [None]
        several = several or len(fronts) > 1
        for k, front_method in enumerate(fronts):
            group = [p for p in mine if front_method is None or p.energy_method == front_method]
            idx = pareto_front([(p.x, p.y) for p in group], x_tolerance=SAME_COST)
            if len(idx) > 1:
                ax.plot([group[i].x for i in idx], [100 * group[i].y for i in idx], ("-", "--", ":")[k % 3],
                        color="0.35", lw=1.2, zorder=1)
            on_front = {id(group[i]) for i in idx}
            for p in group:
                color, marker = styles[p.label]
                ax.errorbar(p.x, 100 * p.y, yerr=_yerr([p]), fmt=marker, ms=8 if id(p) in on_front else 6,
                            color=color, mfc="white" if p.estimated else color, mew=1.6, capsize=2, zorder=2)
        if wide:
            if min(p.x for p in points) > 0:
                ax.set_xscale("log")
            else:  # a method that costs nothing (generic) stays on the axis
                ax.set_xscale("symlog", linthresh=min(positive))
        if mine:
            ax.set_ylim(max(0.0, 100 * min(p.y_low for p in mine) - 3), min(101.0, 100 * max(p.y_high for p in mine) + 3))
        kind = honesty([r for r in rows if r.get("hardware") == hw and r.get("status") == "ok"]) if mine else "—"
        energy = sorted({p.energy_method for p in mine if p.energy_method not in ("", "none")})
        panel = f"{hw} ({kind}" + (f"; energy: {'/'.join(energy)})" if split_by_energy and energy else ")")
        if split_by_energy and len(fronts) > 1:
            panel += ": energy methods differ, one front each"
        ax.set_title(_wrap(panel, 52 if ncols == 2 else 80), fontsize=9)
        ax.set_xlabel(x_label, fontsize=9)
        ax.set_ylabel("accuracy, adapt context (%)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], ls="", marker=m, color=c, ms=7, label=_wrap(label, 40))
               for label, (c, m) in styles.items()]
    handles += [Line2D([], [], color="0.35", lw=1.2, label="Pareto front" + (" (one per energy method)"
                                                                            if several else "")),
                Line2D([], [], ls="", marker="o", color="0.35", mfc="white", mew=1.6, ms=7,
                       label="hollow: estimated (modelled)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(3 if ncols == 2 else 2, len(handles)), fontsize=8,
               frameon=False)
    fig.suptitle(f"{title} (error bars: 95 % interval of the mean accuracy)", fontsize=11)
    return fig


def figure_energy(plt, rows):
    """Accuracy vs adapt energy; falls back to adapt time when the run recorded no energy (and says so)."""
    has_energy = any(finite([r.get("adapt_j")]) for r in rows if r.get("status") == "ok")
    if has_energy:
        return _tradeoff(plt, rows, "adapt_j", "adapt energy per user (J)", "accuracy vs adapt energy", True)
    return _tradeoff(plt, rows, "adapt_s", "adapt time per user (s) — no energy recorded",
                     "accuracy vs adapt time", False)


def figure_latency(plt, rows):
    return _tradeoff(plt, rows, "latency_ms_p50", "batch-1 inference latency, median (ms)",
                     "accuracy vs inference latency", False)


def robustness_estimates(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[Any], list[Any]]:
    """Per method configuration, seen and unseen accuracy over users: each user once (the mean over its seeds and
    every target it ran on, since accuracy does not depend on the target), the cells' interval (users and seeds)."""
    groups = group_rows([r for r in rows if r.get("status") == "ok"], ["method", "variant"])
    labels, seen, unseen = [], [], []
    for (method, variant), items in groups.items():
        labels.append(_label(method, variant))
        seen.append(user_estimate(items, "acc_seen", bounds=(0.0, 1.0)))
        unseen.append(user_estimate(items, "acc_unseen", bounds=(0.0, 1.0)))
    return labels, seen, unseen


def figure_robustness(plt, rows):
    """Seen and unseen-context accuracy side by side: the gap is what personalization costs in robustness."""
    labels, seen, unseen = robustness_estimates(rows)
    ticks, key = _keys(labels, rows)
    fig, ax = plt.subplots(figsize=(min(10.0, max(6.4, 0.75 * len(labels) + 2)), 4.6), layout="constrained")
    xs = range(len(labels))
    for offset, values, name in ((-0.2, seen, "seen context (adapted on)"), (0.2, unseen, "unseen contexts")):
        heights = [100 * (0 if math.isnan(e.mean) else e.mean) for e in values]
        errs = [[0 if math.isnan(e.lo) else 100 * max(0.0, e.mean - max(e.lo, 0.0)) for e in values],
                [0 if math.isnan(e.hi) else 100 * max(0.0, min(e.hi, 1.0) - e.mean) for e in values]]
        ax.bar([x + offset for x in xs], heights, width=0.4, yerr=errs, capsize=2, label=name)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(ticks, rotation=30 if max(map(len, ticks), default=0) > 6 else 0, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%), 95 % interval\nover users and seeds", fontsize=9)
    ax.set_ylim(0, 101)
    ax.set_title("robustness: accuracy on the seen vs unseen contexts", fontsize=9)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)  # beside the axes: never over a bar
    if key:
        fig.supxlabel(_wrap(key, 140), fontsize=7)  # laid out with the figure (a free text overlapped the ticks)
    ax.grid(axis="y", alpha=0.3)
    return fig


def figure_gains(plt, rows):
    """Each dot is a user (mean over seeds); below zero means personalization made that user worse."""
    groups = group_rows([r for r in rows if r.get("status") == "ok"], ["method", "variant"])
    labels, data = [], []
    for (method, variant), items in groups.items():
        if method == "generic":
            continue
        values = list(per_user(items, "gain_seen").values())
        if values:
            labels.append(_label(method, variant))
            data.append([100 * v for v in values])
    ticks, key = _keys(labels, rows)
    fig, ax = plt.subplots(figsize=(min(10.0, max(6.4, 0.75 * len(labels) + 2)), 4.2), layout="constrained")
    if data:
        ax.boxplot(data, showfliers=False)
        for i, values in enumerate(data, start=1):
            jitter = [i + 0.08 * ((j % 5) - 2) for j in range(len(values))]
            ax.scatter(jitter, values, s=12, alpha=0.7, color="tab:blue", zorder=3)
        ax.set_xticks(range(1, len(labels) + 1))
        ax.set_xticklabels(ticks, rotation=30 if max(map(len, ticks)) > 6 else 0, ha="right", fontsize=8)
    if key:
        fig.supxlabel(_wrap(key, 140), fontsize=7)
    ax.axhline(0, color="tab:red", lw=1)
    ax.set_ylabel("gain over generic, adapt context (points)", fontsize=9)
    ax.set_title("per-user gain distribution (each dot a user)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return fig


def figure_memory(plt, rows):
    """Accuracy vs the adapt phase's peak memory (``adapt_peak_mb``), one panel per target, Pareto front marked."""
    return _tradeoff(plt, rows, "adapt_peak_mb", "adapt peak memory per user (MB)", "accuracy vs adapt memory",
                     False)


BUILDERS = {"energy": figure_energy, "latency": figure_latency, "robustness": figure_robustness,
            "gains": figure_gains, "memory": figure_memory}


def render_figures(rows: Sequence[dict[str, Any]], names: Sequence[str] = FIGURES) -> dict[str, Any]:
    """Build the named figures (matplotlib Figure objects), keyed by name."""
    plt = _pyplot()
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; available: {', '.join(FIGURES)}")
    return {name: BUILDERS[name](plt, list(rows)) for name in names}


def write_figures(rows: Sequence[dict[str, Any]], folder: str | Path, formats: Sequence[str] = FORMATS,
                  names: Sequence[str] = FIGURES) -> list[Path]:
    """Write every figure in every format into ``folder``; returns the files written."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown figure format(s) {bad}; available: {', '.join(FORMATS)}")
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in render_figures(rows, names).items():
        for fmt in formats:
            path = folder / f"{name}.{fmt}"
            fig.savefig(path, format=fmt, dpi=130, bbox_inches="tight",
                        metadata={"Date": None} if fmt == "svg" else None)
            written.append(path)
        plt.close(fig)
    return written


def svg_figures(rows: Sequence[dict[str, Any]], names: Sequence[str] = FIGURES) -> dict[str, str]:
    """The figures as inline SVG text, for the self-contained HTML report."""
    plt = _pyplot()
    out = {}
    for name, fig in render_figures(rows, names).items():
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        text = buf.getvalue()
        out[name] = text[text.find("<svg"):]  # drop the XML prolog and doctype: inline SVG in HTML
    return out
