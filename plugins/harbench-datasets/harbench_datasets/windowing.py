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
    session: np.ndarray | None = None  # (N,) int64 chronological rank of the window's session, -1 = none
    dropped: dict | None = None  # windows dropped by the labelling rule: {"windows": n, "by_majority_class": {...}}

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, index: np.ndarray) -> "WindowTable":
        return WindowTable(self.x[index], self.y[index], self.recording[index], self.start[index], self.user[index],
                           self.context[index], self.source[index], self.t_start[index], self.window_s, self.sources,
                           None if self.session is None else self.session[index], self.dropped)


def majority_labels(labels: np.ndarray, starts: np.ndarray, window: int, min_purity: float,
                    num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The labelling rule for windows cut from a segment whose label changes: a window takes its most frequent
    label when that label covers at least ``min_purity`` of its samples and no other label is as frequent;
    unlabelled samples (-1) count against the purity. Returns (label per window, -1 for dropped; majority class
    per window, -1 where every sample is unlabelled)."""
    view = np.lib.stride_tricks.sliding_window_view(labels, window)[starts]
    counts = np.stack([(view == c).sum(axis=1) for c in range(num_classes)], axis=1)
    order = np.sort(counts, axis=1)
    best = counts.argmax(axis=1)
    top = order[:, -1]
    tie = order[:, -2] == top if num_classes > 1 else np.zeros(len(top), dtype=bool)
    keep = (top >= min_purity * window - 1e-9) & ~tie & (top > 0)
    return np.where(keep, best, -1), np.where(top > 0, best, -1)


def session_ranks(segments: list[Segment]) -> dict[tuple[str, str], int]:
    """(user, session) -> chronological rank among the user's sessions (by the session's earliest segment)."""
    first: dict[tuple[str, str], float] = {}
    for seg in segments:
        if seg.session is not None:
            key = (seg.user, seg.session)
            first[key] = min(first.get(key, np.inf), seg.t0)
    ranks: dict[tuple[str, str], int] = {}
    for user in sorted({u for u, _ in first}):
        mine = sorted((t, s) for (u, s), t in first.items() if u == user)
        ranks.update({(user, s): i for i, (_, s) in enumerate(mine)})
    return ranks


def cut_windows(segments: list[Segment], users: tuple[str, ...], contexts: tuple[str, ...], channels: int,
                rate_hz: float, window: int, stride: int, min_purity: float = 0.5,
                classes: tuple[str, ...] = ()) -> WindowTable:
    """Resample each segment to ``rate_hz`` and cut ``window``-sample windows every ``stride`` samples.

    Segments of users or contexts outside ``users``/``contexts`` (the ones the parameters select) are dropped.
    Segments with per-sample ``labels`` are labelled window by window with :func:`majority_labels`; the windows
    that rule drops are counted in ``WindowTable.dropped``.
    """
    ranks = session_ranks(segments)
    has_sessions = bool(ranks)
    num_classes = max(len(classes), 1 + max((int(s.labels.max()) for s in segments if s.labels is not None
                                             and len(s.labels)), default=0))
    dropped = {"windows": 0, "kept": 0, "by_majority_class": {}}
    user_index = {u: i for i, u in enumerate(users)}
    context_index = {c: i for i, c in enumerate(contexts)}
    source_index: dict[str, int] = {}
    xs, cols = [], {k: [] for k in ("y", "recording", "start", "user", "context", "source", "t_start", "session")}
    for rec, seg in enumerate(segments):
        if seg.user not in user_index or seg.context not in context_index:
            continue
        signal = resample(seg.signal, seg.rate_hz, rate_hz)
        starts = window_starts(signal.shape[1], window, stride)
        if not len(starts):
            continue
        if seg.labels is None:
            y = np.full(len(starts), seg.label, dtype=np.int64)
        else:
            # the label of each output sample is that of the nearest input sample
            pick = np.minimum(np.rint(np.arange(signal.shape[1]) * seg.rate_hz / rate_hz).astype(np.int64),
                              len(seg.labels) - 1)
            y, majority = majority_labels(seg.labels[pick], starts, window, min_purity, num_classes)
            lost = y < 0
            dropped["windows"] += int(lost.sum())
            for c in majority[lost]:
                name = classes[c] if 0 <= c < len(classes) else ("unlabelled" if c < 0 else str(c))
                dropped["by_majority_class"][name] = dropped["by_majority_class"].get(name, 0) + 1
            starts, y = starts[~lost], y[~lost]
            if not len(starts):
                continue
        dropped["kept"] += len(starts)
        xs.append(np.lib.stride_tricks.sliding_window_view(signal, window, axis=1)[:, starts].transpose(1, 0, 2))
        n = len(starts)
        src = source_index.setdefault(seg.source, len(source_index))
        session = ranks.get((seg.user, seg.session), -1)
        for key, value in (("recording", rec), ("user", user_index[seg.user]),
                           ("context", context_index[seg.context]), ("source", src), ("session", session)):
            cols[key].append(np.full(n, value, dtype=np.int64))
        cols["y"].append(y.astype(np.int64))
        cols["start"].append(starts)
        cols["t_start"].append(seg.t0 + starts / rate_hz)
    if not xs:
        empty = np.zeros(0, dtype=np.int64)
        return WindowTable(np.zeros((0, channels, window), np.float32), empty, empty, empty, empty, empty, empty,
                           np.zeros(0), window / rate_hz, tuple(source_index), empty if has_sessions else None,
                           dropped)
    session = cols.pop("session")
    return WindowTable(
        x=np.ascontiguousarray(np.concatenate(xs), dtype=np.float32),
        **{k: np.concatenate(v) for k, v in cols.items()},
        window_s=window / rate_hz,
        sources=tuple(source_index),
        session=np.concatenate(session) if has_sessions else None,
        dropped=dropped,
    )
