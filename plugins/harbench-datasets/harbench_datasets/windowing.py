"""Segments -> a flat table of windows with the provenance the splitter and the leakage check need."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .segments import Segment
from .signal import resample, window_starts


@dataclass
class WindowTable:
    """All windows of a dataset, one row each. ``recording`` is the segment's index (segments never overlap in
    time with each other on one sensor), ``start`` the window's first sample in it, ``source``/``t_start`` place
    the window on the clock it shares with simultaneous recordings of other contexts."""

    x: np.ndarray  # (N, C, T) float32
    y: np.ndarray  # (N,) int64
    recording: np.ndarray
    start: np.ndarray
    user: np.ndarray  # index into DatasetInfo.users
    context: np.ndarray  # index into DatasetInfo.contexts
    source: np.ndarray  # index into ``sources``
    t_start: np.ndarray  # float64 seconds on the source clock
    window_s: float
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, index: np.ndarray) -> "WindowTable":
        return WindowTable(self.x[index], self.y[index], self.recording[index], self.start[index], self.user[index],
                           self.context[index], self.source[index], self.t_start[index], self.window_s, self.sources)


def cut_windows(segments: list[Segment], users: tuple[str, ...], contexts: tuple[str, ...], channels: int,
                rate_hz: float, window: int, stride: int) -> WindowTable:
    """Resample each segment to ``rate_hz`` and cut ``window``-sample windows every ``stride`` samples.

    Segments of users or contexts outside ``users``/``contexts`` (the ones the parameters select) are dropped.
    """
    user_index = {u: i for i, u in enumerate(users)}
    context_index = {c: i for i, c in enumerate(contexts)}
    source_index: dict[str, int] = {}
    xs, cols = [], {k: [] for k in ("y", "recording", "start", "user", "context", "source", "t_start")}
    for rec, seg in enumerate(segments):
        if seg.user not in user_index or seg.context not in context_index:
            continue
        signal = resample(seg.signal, seg.rate_hz, rate_hz)
        starts = window_starts(signal.shape[1], window, stride)
        if not len(starts):
            continue
        xs.append(np.lib.stride_tricks.sliding_window_view(signal, window, axis=1)[:, starts].transpose(1, 0, 2))
        n = len(starts)
        src = source_index.setdefault(seg.source, len(source_index))
        for key, value in (("y", seg.label), ("recording", rec), ("user", user_index[seg.user]),
                           ("context", context_index[seg.context]), ("source", src)):
            cols[key].append(np.full(n, value, dtype=np.int64))
        cols["start"].append(starts)
        cols["t_start"].append(seg.t0 + starts / rate_hz)
    if not xs:
        empty = np.zeros(0, dtype=np.int64)
        return WindowTable(np.zeros((0, channels, window), np.float32), empty, empty, empty, empty, empty, empty,
                           np.zeros(0), window / rate_hz, tuple(source_index))
    return WindowTable(
        x=np.ascontiguousarray(np.concatenate(xs), dtype=np.float32),
        **{k: np.concatenate(v) for k, v in cols.items()},
        window_s=window / rate_hz,
        sources=tuple(source_index),
    )
