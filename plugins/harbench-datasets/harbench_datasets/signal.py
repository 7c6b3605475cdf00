"""Signal conditioning shared by the parsers: NaN repair, rate conversion, and timestamp-driven resampling."""

from __future__ import annotations

import numpy as np


def fill_nan(signal: np.ndarray, max_fraction: float = 0.5) -> np.ndarray | None:
    """Linearly interpolate NaN samples per channel (edges take the nearest valid value).

    Returns ``None`` when some channel is missing for more than ``max_fraction`` of the samples: interpolating a
    mostly absent channel would invent the signal rather than repair dropouts.
    """
    missing = np.isnan(signal)
    if not missing.any():
        return signal
    if (missing.mean(axis=1) > max_fraction).any() or missing.all(axis=1).any():
        return None
    out = signal.copy()
    t = np.arange(signal.shape[1])
    for c in np.flatnonzero(missing.any(axis=1)):
        ok = ~missing[c]
        out[c, ~ok] = np.interp(t[~ok], t[ok], signal[c, ok])
    return out


def resample(signal: np.ndarray, src_hz: float, dst_hz: float) -> np.ndarray:
    """Convert a uniformly sampled (channels, T) signal to ``dst_hz`` by linear interpolation.

    Downsampling takes each output sample as the mean of the input over one output period centred on it (a
    boxcar, computed exactly from the running integral), a cheap anti-aliasing filter that keeps e.g. PAMAP2's
    100 Hz impacts from folding into a 50 Hz stream, without shifting the signal in time.
    """
    if abs(src_hz - dst_hz) < 1e-9 or signal.shape[1] == 0:
        return signal.astype(np.float32, copy=False)
    x = signal.astype(np.float64)
    n_out = int(np.floor((x.shape[1] - 1) * dst_hz / src_hz + 1e-9)) + 1
    t_dst = np.arange(n_out) / dst_hz
    if dst_hz >= src_hz:
        t_src = np.arange(x.shape[1]) / src_hz
        return np.stack([np.interp(t_dst, t_src, ch) for ch in x]).astype(np.float32)
    # sample k covers [(k - 1/2) / src, (k + 1/2) / src]: integrate piecewise-constant, average over each period
    edges = (np.arange(x.shape[1] + 1) - 0.5) / src_hz
    lo = np.clip(t_dst - 0.5 / dst_hz, edges[0], edges[-1])
    hi = np.clip(t_dst + 0.5 / dst_hz, edges[0], edges[-1])
    integral = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1) / src_hz], axis=1)
    area = np.stack([np.interp(hi, edges, ch) - np.interp(lo, edges, ch) for ch in integral])
    return (area / (hi - lo)[None, :]).astype(np.float32)


def covered(t: np.ndarray, grid: np.ndarray, max_gap: float) -> np.ndarray:
    """Which grid times lie between two samples of ``t`` (sorted) at most ``max_gap`` seconds apart."""
    if len(t) == 0:
        return np.zeros(len(grid), dtype=bool)
    right = np.searchsorted(t, grid, side="left")
    exact = (right < len(t)) & (t[np.minimum(right, len(t) - 1)] == grid)
    inside = (right > 0) & (right < len(t))
    gap = np.full(len(grid), np.inf)
    gap[inside] = t[right[inside]] - t[right[inside] - 1]
    return exact | (gap <= max_gap)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ranges of consecutive True values."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def interpolate(t: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Sample a timestamped (channels, n) stream at ``grid`` times by linear interpolation."""
    return np.stack([np.interp(grid, t, ch) for ch in values]).astype(np.float32)


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, stride, dtype=np.int64)


def resample_timestamped(t: np.ndarray, values: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample a (channels, n) stream sampled at increasing times ``t`` (seconds, no duplicates) onto the uniform
    grid ``t[0] + k / rate_hz``; returns (grid, (channels, len(grid)) float32).

    Never assumes a nominal rate. When the stream is denser than the grid (e.g. a ~102.5 Hz phone read at 50 Hz)
    each output sample is the mean of the input over one output period centred on it: the boxcar of
    :func:`resample`, with each input sample standing for the time up to halfway to its neighbours, so jittery
    timestamps get the weight of the time they cover. Otherwise samples are interpolated linearly.
    """
    n_out = int(np.floor((t[-1] - t[0]) * rate_hz + 1e-9)) + 1
    grid = t[0] + np.arange(n_out) / rate_hz
    x = values.astype(np.float64)
    src_hz = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else rate_hz
    if rate_hz >= src_hz or len(t) < 3:
        return grid, np.stack([np.interp(grid, t, ch) for ch in x]).astype(np.float32)
    mid = (t[1:] + t[:-1]) / 2
    edges = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    lo = np.clip(grid - 0.5 / rate_hz, edges[0], edges[-1])
    hi = np.clip(grid + 0.5 / rate_hz, edges[0], edges[-1])
    integral = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x * np.diff(edges)[None, :], axis=1)], axis=1)
    area = np.stack([np.interp(hi, edges, ch) - np.interp(lo, edges, ch) for ch in integral])
    return grid, (area / (hi - lo)[None, :]).astype(np.float32)
