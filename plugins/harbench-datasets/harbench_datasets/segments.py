"""The common currency between the dataset parsers and the windowing/splitting pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """A continuous, uniformly sampled stretch of one user's data in one context with one activity label.

    ``source`` names the clock the segment lives on and ``t0`` is its first sample's time on that clock (seconds).
    Segments recorded *simultaneously* in different contexts (PAMAP2's three IMUs, HHAR's phones worn together)
    share a source, which is how the splitter keeps a user's unseen-context test windows out of the time span of
    the adapt windows. Parsers return segments in chronological order per user and context.
    """

    user: str
    context: str
    label: int  # index into the dataset's classes
    signal: np.ndarray  # (channels, samples) float32, no NaN
    rate_hz: float
    source: str
    t0: float = 0.0
    # per-sample class indices (-1 = unlabelled) for recordings whose label changes inside the segment (a session
    # of several activities); ``label`` is then -1 and each window is labelled by the majority rule (windowing.py)
    labels: np.ndarray | None = None
    # the recording session (an execution, a trial) the segment belongs to: when set, the splitter separates adapt
    # and test by whole sessions, so no session contributes to both
    session: str | None = None

    @property
    def seconds(self) -> float:
        return self.signal.shape[1] / self.rate_hz


def labelled_seconds(segments: list[Segment], classes: tuple[str, ...]) -> dict[str, float]:
    """Class balance as labelled seconds per class: independent of window length and stride."""
    totals = dict.fromkeys(classes, 0.0)
    for s in segments:
        if s.labels is None:
            totals[classes[s.label]] += s.seconds
            continue
        counts = np.bincount(s.labels[s.labels >= 0], minlength=len(classes))
        for c, n in zip(classes, counts):
            totals[c] += n / s.rate_hz
    return {c: round(v, 1) for c, v in totals.items()}


def runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of maximal runs of equal consecutive values (keys: 1-D, or 2-D rows compared whole)."""
    keys = np.asarray(keys)
    if len(keys) == 0:
        return []
    change = np.any(keys[1:] != keys[:-1], axis=tuple(range(1, keys.ndim))) if keys.ndim > 1 else keys[1:] != keys[:-1]
    bounds = np.concatenate([[0], np.flatnonzero(change) + 1, [len(keys)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
