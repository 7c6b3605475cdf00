"""One timestamped recording (a file of one user, context and session) -> continuous segments at ``rate_hz``.

Shared by ``sp-sw-har`` and ``recordings``, so that a manifest describing sp-sw-har gives exactly the dedicated
loader's windows. Rows with equal timestamps are averaged (their label is the first row's); the stream is cut
where consecutive timestamps are more than ``max_gap_s`` apart; each piece is resampled on its timestamps
(:func:`resample_timestamped`) and keeps a per-sample label, the nearest input sample's.
"""

from __future__ import annotations

import numpy as np

from .segments import Segment
from .signal import resample_timestamped


def merge_duplicates(t: np.ndarray, values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray, int]:
    """(unique times, (channels, m) means of the rows sharing a time, first label of each, rows merged)."""
    uniq, first, counts = np.unique(t, return_index=True, return_counts=True)
    if len(uniq) == len(t):
        return t, values, labels, 0
    sums = np.add.reduceat(values.astype(np.float64), first, axis=1)
    return uniq, (sums / counts[None, :]).astype(np.float32), labels[first], int(len(t) - len(uniq))


def timestamped_segments(*, user: str, context: str, session: str | None, source: str, t_s: np.ndarray,
                         values: np.ndarray, labels: np.ndarray, rate_hz: float,
                         max_gap_s: float) -> tuple[list[Segment], dict]:
    """``t_s``: non-decreasing seconds; ``values``: (channels, n) float; ``labels``: (n,) int class indices.

    Returns the segments and a report: rows merged (same timestamp), gaps cut, pieces too short to keep.
    """
    t, x, y, merged = merge_duplicates(t_s, values, labels)
    cuts = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    bounds = np.concatenate([[0], cuts, [len(t)]])
    segments, short = [], 0
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b - a < 2:
            short += 1
            continue
        grid, signal = resample_timestamped(t[a:b], x[:, a:b], rate_hz)
        right = np.clip(np.searchsorted(t[a:b], grid), 1, b - a - 1)
        nearer_left = grid - t[a:b][right - 1] <= t[a:b][right] - grid
        nearest = np.where(nearer_left, right - 1, right)
        segments.append(Segment(user=user, context=context, label=-1, signal=signal, rate_hz=rate_hz, source=source,
                                t0=float(grid[0]), labels=y[a:b][nearest].astype(np.int64), session=session))
    return segments, {"rows_merged": merged, "gaps_cut": len(cuts), "pieces_too_short": short}
