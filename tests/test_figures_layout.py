"""Figures that hold at the default suite's size and larger (8 method configurations, some with long variant
names; 4 targets): measured on matplotlib's own renderer, which is what the PNG, the SVG and the HTML page draw.

Each figure: no two texts overlap (titles, tick labels, axis labels, legend entries, the key), no legend covers an
axes, every error bar stays inside [0, 100] %, one x scale per figure, and no Pareto segment joins costs that differ
by less than 2 %.
"""

from __future__ import annotations

import itertools

import pytest

from harbench.results.plots import FIGURES, SAME_COST, render_figures

from .figure_rows import default_suite_rows

matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def figures():
    figs = render_figures(default_suite_rows())
    for fig in figs.values():
        fig.canvas.draw()
    yield figs
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)


def _drawn(fig) -> list:
    """Every text the figure draws: tick labels only where their tick is inside the axis' view (matplotlib keeps
    the others as visible objects, undrawn)."""
    ticks, drawn = set(), []
    for ax in fig.axes:
        for axis, index in ((ax.xaxis, 0), (ax.yaxis, 1)):
            low, high = sorted(axis.get_view_interval())
            for label in axis.get_ticklabels(which="both"):
                ticks.add(id(label))
                if low - 1e-9 * abs(high - low) <= label.get_position()[index] <= high + 1e-9 * abs(high - low):
                    drawn.append(label)
    return drawn + [t for t in fig.findobj(matplotlib.text.Text) if id(t) not in ticks]


def _texts(fig):
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in _drawn(fig)
            if t.get_visible() and t.get_text().strip() and t.figure is fig]


@pytest.mark.parametrize("name", FIGURES)
def test_no_text_overlaps_another(figures, name):
    texts = _texts(figures[name])
    clashes = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(texts, 2)
               if box_a.overlaps(box_b) and box_a.intersection(box_a, box_b).width > 1
               and box_a.intersection(box_a, box_b).height > 1]
    assert not clashes, clashes[:5]


@pytest.mark.parametrize("name", FIGURES)
def test_no_legend_covers_an_axes_and_error_bars_stay_in_range(figures, name):
    fig = figures[name]
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    legends = [*fig.legends, *(ax.get_legend() for ax in axes if ax.get_legend())]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in axes), name
    for ax in axes:
        for container in ax.containers:
            for segments in getattr(container, "lines", [None, None, ()])[2]:
                ys = segments.get_segments()
                assert all(0.0 <= y <= 100.0 + 1e-9 for seg in ys for _, y in seg), name


@pytest.mark.parametrize("name", ["energy", "latency", "memory"])
def test_one_x_scale_per_figure_and_no_front_across_a_negligible_cost(figures, name):
    axes = [ax for ax in figures[name].axes if ax.get_visible()]
    assert len(axes) == 4 and len({ax.get_xscale() for ax in axes}) == 1
    for ax in axes:
        for line in ax.get_lines():
            xs = list(line.get_xdata())
            if line.get_linestyle() in ("-", "--", ":") and len(xs) > 1:  # a front
                assert all(b - a > SAME_COST * abs(a) for a, b in zip(xs, xs[1:])), (name, xs)
