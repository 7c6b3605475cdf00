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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .analysis import estimate, finite, group_rows, pareto_front, per_user

FIGURES = ("energy", "latency", "robustness", "gains")
FORMATS = ("png", "svg")


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
    y_err: float
    estimated: bool
    energy_method: str


def _label(method: str, variant: str) -> str:
    return f"{method} [{variant}]" if variant else method


def _points(rows: Sequence[dict[str, Any]], x_metric: str) -> list[Point]:
    out = []
    for (method, variant, hardware), items in group_rows(rows, ["method", "variant", "hardware"]).items():
        ok = [r for r in items if r.get("status") == "ok"]
        xs = finite(r.get(x_metric) for r in ok)
        acc = estimate(r.get("acc_seen") for r in ok)
        if not xs or math.isnan(acc.mean):
            continue
        half = (acc.hi - acc.mean) if not math.isnan(acc.hi) else 0.0
        out.append(Point(_label(method, variant), hardware, statistics.fmean(xs), acc.mean, half,
                         any(r.get("mode") == "estimated" for r in ok),
                         "/".join(sorted({str(r.get("energy_method")) for r in ok if r.get("energy_method")}))))
    return out


def _tradeoff(plt, rows, x_metric: str, x_label: str, title: str, split_by_energy: bool):
    points = _points(rows, x_metric)
    hardware = sorted({p.hardware for p in points}) or ["—"]
    fig, axes = plt.subplots(1, len(hardware), figsize=(5.2 * len(hardware), 4.2), squeeze=False)
    for ax, hw in zip(axes[0], hardware):
        mine = [p for p in points if p.hardware == hw]
        fronts = sorted({p.energy_method for p in mine}) if split_by_energy else [None]
        for front_method in fronts:
            group = [p for p in mine if front_method is None or p.energy_method == front_method]
            idx = pareto_front([(p.x, p.y) for p in group])
            if len(idx) > 1:
                ax.plot([group[i].x for i in idx], [100 * group[i].y for i in idx], "-", color="tab:red", lw=1.5,
                        alpha=0.8, zorder=1, label="Pareto front" + (f" ({front_method})" if len(fronts) > 1 else ""))
            on_front = {id(group[i]) for i in idx}
            for p in group:
                ax.errorbar(p.x, 100 * p.y, yerr=100 * p.y_err, fmt="o", ms=7 if id(p) in on_front else 5,
                            mfc="none" if p.estimated else None, color="tab:red" if id(p) in on_front else "tab:blue",
                            capsize=2, zorder=2)
                ax.annotate(p.label + (" (est.)" if p.estimated else ""), (p.x, 100 * p.y), fontsize=7,
                            xytext=(4, 3), textcoords="offset points")
        xs = [p.x for p in mine if p.x > 0]
        if xs and max(xs) / min(xs) > 100:
            ax.set_xscale("log")
        panel = f"{title} — {hw}"
        if split_by_energy and len(fronts) > 1:
            panel += "\nenergy methods differ: one front each, not comparable"
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(x_label)
        ax.set_ylabel("accuracy, adapt context (%) ± 95 % CI")
        ax.set_ylim(0, 102)  # an interval of a mean accuracy may overshoot [0, 100] with few users; the axis may not
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
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


def figure_robustness(plt, rows):
    """Seen and unseen-context accuracy side by side: the gap is what personalization costs in robustness."""
    groups = group_rows([r for r in rows if r.get("status") == "ok"], ["method", "variant"])
    labels, seen, unseen = [], [], []
    for (method, variant), items in groups.items():
        labels.append(_label(method, variant))
        seen.append(estimate(r.get("acc_seen") for r in items))
        unseen.append(estimate(r.get("acc_unseen") for r in items))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 2), 4.2))
    xs = range(len(labels))
    for offset, values, name in ((-0.2, seen, "seen context (adapted on)"), (0.2, unseen, "unseen contexts")):
        heights = [100 * (0 if math.isnan(e.mean) else e.mean) for e in values]
        errs = [0 if math.isnan(e.hi) else 100 * (e.hi - e.mean) for e in values]
        ax.bar([x + offset for x in xs], heights, width=0.4, yerr=errs, capsize=2, label=name)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%) ± 95 % CI")
    ax.set_ylim(0, 102)
    ax.set_title("robustness: accuracy on the seen vs unseen contexts", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
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
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 2), 4.2))
    if data:
        ax.boxplot(data, showfliers=False)
        for i, values in enumerate(data, start=1):
            jitter = [i + 0.08 * ((j % 5) - 2) for j in range(len(values))]
            ax.scatter(jitter, values, s=12, alpha=0.7, color="tab:blue", zorder=3)
        ax.set_xticks(range(1, len(labels) + 1))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.axhline(0, color="tab:red", lw=1)
    ax.set_ylabel("gain over generic, adapt context (points)")
    ax.set_title("per-user gain distribution (each dot a user)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


BUILDERS = {"energy": figure_energy, "latency": figure_latency, "robustness": figure_robustness,
            "gains": figure_gains}


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
            fig.savefig(path, format=fmt, dpi=130, metadata={"Date": None} if fmt == "svg" else None)
            written.append(path)
        plt.close(fig)
    return written


def svg_figures(rows: Sequence[dict[str, Any]], names: Sequence[str] = FIGURES) -> dict[str, str]:
    """The figures as inline SVG text, for the self-contained HTML report."""
    plt = _pyplot()
    out = {}
    for name, fig in render_figures(rows, names).items():
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        plt.close(fig)
        text = buf.getvalue()
        out[name] = text[text.find("<svg"):]  # drop the XML prolog and doctype: inline SVG in HTML
    return out
