"""A generative model of wrist/pocket IMU data with personal traits and named context drifts.

Each (user, context, activity) is one continuous recording at 50 Hz; windows of 128 samples are cut from it with
50 % overlap, so time order matters and splits must respect it (they do: see ``_split_target``).

Signal model (body frame: x forward, y vertical, z lateral; accelerometer in g, gyroscope in rad/s):

* Posture sets the gravity direction (upright for walking/jogging/standing, leaning for stairs, thigh horizontal
  for sitting) and slowly sways.
* Locomotion is a phase oscillator whose step frequency and amplitude random-walk within a recording; vertical
  acceleration has the step frequency and its harmonics (their ratios differ per activity), forward and lateral
  axes carry step and stride (half-frequency) components, downstairs adds heel-strike impacts, and the gyroscope
  measures pitch at the step frequency and roll/yaw at the stride frequency.
* Every user has personal traits: step-frequency and amplitude multipliers, harmonic mix, the sensor's mounting
  orientation, and a noise level.
* Contexts apply one named drift each, relative to the user's own ``home`` context:
  ``sensor`` (input-level: a different placement = rotation, per-axis gain, bias and extra noise),
  ``recovery`` (feature-level: slower, damped, less regular movement with tremor, e.g. after an injury),
  ``gait`` (feature-level, above the single step: an antalgic limp in which alternate steps differ in strength
  and duration, with more side-to-side sway, and stop-and-go bouts of 2-5 steps; step shape and cadence kept),
  ``labels`` (output-level: different class priors and a user-specific labelling in which two pairs of
  activities are confused, as when a user's "stairs" look like someone else's "walking").
  ``strength`` scales all drifts (0 = none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..api import ContextInfo, DatasetInfo, Splits, TargetSplit, Windows

RATE_HZ = 50.0
WINDOW = 128
STRIDE = 64
CLASSES = ("walking", "jogging", "upstairs", "downstairs", "sitting", "standing")
CONTEXTS = {
    "home": ContextInfo("home", None, "the user's everyday conditions; no drift"),
    "sensor": ContextInfo("sensor", "input", "input-level: new placement (rotation), gain, bias, noise"),
    "recovery": ContextInfo("recovery", "feature", "feature-level: slower, damped, irregular movement with tremor"),
    "gait": ContextInfo("gait", "feature", "feature-level: limping, stop-and-go gait; single steps unchanged"),
    "labels": ContextInfo("labels", "output", "output-level: changed class priors and two confused class pairs"),
}
# (step Hz, vertical g, forward g, lateral g, 2nd harmonic, 3rd harmonic, pitch rad/s, roll rad/s, lean deg)
_ACTIVITY = {
    "walking": (1.85, 0.38, 0.22, 0.10, 0.35, 0.10, 1.1, 0.35, 0.0),
    "jogging": (2.55, 0.80, 0.36, 0.20, 0.22, 0.06, 2.0, 0.60, 7.0),
    "upstairs": (1.65, 0.34, 0.26, 0.10, 0.55, 0.22, 1.25, 0.32, 9.0),
    "downstairs": (2.00, 0.44, 0.20, 0.13, 0.45, 0.28, 1.45, 0.42, -6.0),
}
_SWAPS = ((0, 2), (4, 5))  # output drift: walking<->upstairs, sitting<->standing


def _rotation(rng: np.random.Generator, degrees: float) -> np.ndarray:
    """A rotation by ``degrees`` about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


def _tilt(degrees: float) -> np.ndarray:
    """Rotation about the lateral (z) axis: leaning forward or, at ~80 degrees, a horizontal thigh."""
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


@dataclass(frozen=True)
class UserTraits:
    freq: float
    amp: float
    harmonics: float
    orientation: np.ndarray
    noise: float
    phase2: float


def _traits(rng: np.random.Generator, variability: float) -> UserTraits:
    v = variability
    return UserTraits(
        freq=float(np.exp(rng.normal(0, 0.10 * v))),
        amp=float(np.exp(rng.normal(0, 0.20 * v))),
        harmonics=float(np.exp(rng.normal(0, 0.35 * v))),
        orientation=_rotation(rng, abs(rng.normal(0, 14 * v))),
        noise=float(rng.uniform(0.06, 0.14)),
        phase2=float(rng.normal(0, 0.6 * v)),
    )


@dataclass(frozen=True)
class Drift:
    rotation: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    noise: float
    freq: float
    amp: float
    irregular: float
    tremor: float
    swap: float
    # gait (defaults = no change): alternate steps differ in amplitude (limp) and duration (skew), ``side`` is the
    # stride phase of the weak step, ``lurch`` scales the stride-frequency sway, ``pause`` (s) separates short bouts
    limp: float = 0.0
    skew: float = 0.0
    side: float = 0.0
    lurch: float = 1.0
    pause: float = 0.0


def _drift(rng: np.random.Generator, context: ContextInfo, s: float) -> Drift:
    none = Drift(np.eye(3), np.ones(6), np.zeros(6), 0.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    if context.name == "gait":  # a second feature-level drift, chosen by name (it draws its own parameters)
        return Drift(np.eye(3), np.ones(6), np.zeros(6), 0.0, 1.0, 1.0, 0.0, 0.0, 0.0,
                     limp=0.6 * s * rng.uniform(0.8, 1.2), skew=0.8 * s * rng.uniform(0.8, 1.2),
                     side=float(rng.uniform(0, 2 * np.pi)), lurch=1 + 1.5 * s, pause=0.5 * s)
    if context.drift == "input":
        return Drift(
            rotation=_rotation(rng, 55 * s),
            gain=1 + rng.uniform(-0.25, 0.25, 6) * s,
            bias=np.concatenate([rng.uniform(-0.15, 0.15, 3), rng.uniform(-0.1, 0.1, 3)]) * s,
            noise=0.04 * s,
            freq=1.0, amp=1.0, irregular=0.0, tremor=0.0, swap=0.0,
        )
    if context.drift == "feature":
        return Drift(np.eye(3), np.ones(6), np.zeros(6), 0.0, freq=1 - 0.35 * s, amp=1 - 0.45 * s,
                     irregular=0.5 * s, tremor=0.05 * s, swap=0.0)
    if context.drift == "output":
        return Drift(np.eye(3), np.ones(6), np.zeros(6), 0.0, 1.0, 1.0, 0.0, 0.0, swap=min(1.0, s))
    return none


def _bouts(rng: np.random.Generator, n: int, step_hz: float, pause_s: float) -> np.ndarray:
    """Stop-and-go: 1 during bouts of 2-5 steps, 0 during pauses of 0.5-1.5 x ``pause_s`` seconds, 0.1 s ramps."""
    gate = np.zeros(n)
    i = int(rng.integers(0, int(pause_s * RATE_HZ) + 1))
    while i < n:
        walk = int(rng.integers(2, 6) / step_hz * RATE_HZ)
        gate[i : i + walk] = 1.0
        i += walk + int(pause_s * rng.uniform(0.5, 1.5) * RATE_HZ)
    ramp = np.hanning(7)
    return np.convolve(gate, ramp / ramp.sum(), mode="same")


def _recording(rng: np.random.Generator, activity: int, n_samples: int, user: UserTraits, d: Drift) -> np.ndarray:
    """One continuous 6-channel recording of ``n_samples`` in the sensor frame."""
    t = np.arange(n_samples) / RATE_HZ
    name = CLASSES[activity]
    acc = np.zeros((3, n_samples))
    gyro = np.zeros((3, n_samples))
    if name in _ACTIVITY:
        f0, av, af, al, h2, h3, gp, gr, lean = _ACTIVITY[name]
        # slow random walks of frequency and amplitude within the recording
        walk = np.cumsum(rng.normal(0, 1, n_samples)) / math.sqrt(n_samples)
        f0, av = f0 * np.exp(rng.normal(0, 0.07)), av * np.exp(rng.normal(0, 0.15))  # this recording's pace
        freq = f0 * user.freq * d.freq * (1 + 0.05 * walk + d.irregular * 0.08 * np.sin(2 * np.pi * 0.23 * t))
        amp = user.amp * d.amp * (1 + 0.05 * np.roll(walk, n_samples // 3))
        gate = None
        if d.limp:  # gait: how strongly the user limps varies slowly (over ~2 s) within the recording
            smooth = np.hanning(101) / np.sqrt((np.hanning(101) ** 2).sum())
            slow = np.convolve(rng.normal(0, 1, n_samples + 200), smooth, mode="same")[100:-100]
            severity = np.clip(1 + 0.8 * slow, 0.1, 1.9)
        if d.pause:  # gait: the oscillator stops during pauses; cadence and step shape within a bout are kept
            gate = _bouts(rng, n_samples, float(f0 * user.freq), d.pause)
            freq = freq * gate
        phase = 2 * np.pi * np.cumsum(freq) / RATE_HZ + rng.uniform(0, 2 * np.pi)
        if d.limp:  # alternate steps: the weak one is also the quick one; the mean cadence is kept
            phase = phase + d.skew * severity * np.sin(phase / 2 + d.side)
            amp = amp * (1 - np.minimum(0.95, d.limp * severity) * np.cos(phase / 2 + d.side))
        if gate is not None:
            amp = amp * gate
        h2u, h3u = h2 * user.harmonics, h3 * user.harmonics
        jitter = 1 + d.irregular * 0.3 * rng.normal(0, 1, n_samples).cumsum() / math.sqrt(n_samples)
        acc[1] = amp * av * (np.sin(phase) + h2u * np.sin(2 * phase + user.phase2) + h3u * np.sin(3 * phase)) * jitter
        acc[0] = amp * af * (np.cos(phase) + 0.5 * h2u * np.sin(2 * phase + 0.7))
        acc[2] = d.lurch * amp * al * np.sin(phase / 2)
        if name == "downstairs":
            acc[1] += amp * 0.9 * np.maximum(0, np.sin(phase)) ** 12
        gyro[2] = amp * gp * np.sin(phase + 0.4)
        gyro[0] = d.lurch * amp * gr * np.sin(phase / 2 + 0.2)
        gyro[1] = d.lurch * amp * 0.5 * gr * np.cos(phase / 2)
        posture = _tilt(lean + rng.normal(0, 4))
    else:
        sway_f = rng.uniform(0.2, 0.4)
        sway = (0.025 if name == "standing" else 0.008) * np.sin(2 * np.pi * sway_f * t + rng.uniform(0, 6.3))
        acc[0] = sway
        gyro[2] = 4 * sway
        posture = _tilt((62.0 if name == "sitting" else 0.0) + rng.normal(0, 10))
    if d.tremor:
        tremor = d.tremor * np.sin(2 * np.pi * rng.uniform(4, 6) * t)
        acc += tremor
        gyro += 3 * tremor
    gravity = posture @ np.array([0.0, 1.0, 0.0])
    acc = acc + gravity[:, None]
    mount = d.rotation @ user.orientation
    signal = np.concatenate([mount @ acc, mount @ gyro])
    signal = signal * d.gain[:, None] + d.bias[:, None]
    signal += rng.normal(0, user.noise + d.noise, signal.shape)
    return signal.astype(np.float32)


def _windows(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, signal.shape[1] - WINDOW + 1, STRIDE)
    return np.stack([signal[:, s : s + WINDOW] for s in starts]), starts


@dataclass(frozen=True)
class SyntheticConfig:
    users: int = 16
    contexts: tuple[str, ...] = ("home", "sensor", "recovery", "labels")
    adapt_context: str = "home"
    population_contexts: tuple[str, ...] = ("home",)
    strength: float = 1.0
    variability: float = 1.0
    windows: int = 24
    sessions: int = 3
    k: int = 8
    unseen_windows: int = 12


def describe(cfg: SyntheticConfig) -> DatasetInfo:
    return DatasetInfo(
        name="synthetic-drift",
        channels=6,
        window=WINDOW,
        rate_hz=RATE_HZ,
        classes=CLASSES,
        users=tuple(f"u{i:02d}" for i in range(cfg.users)),
        contexts=tuple(CONTEXTS[c] for c in cfg.contexts),
        extra={"channels": ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"], "units": ["g"] * 3 + ["rad/s"] * 3,
               "stride": STRIDE},  # samples between window starts: the rate a device classifies at
    )


def generate(cfg: SyntheticConfig, seed: int, targets: Sequence[str]) -> Splits:
    info = describe(cfg)
    ctx_index = {c.name: i for i, c in enumerate(info.contexts)}
    traits = [_traits(np.random.default_rng([seed, u, 1]), cfg.variability) for u in range(cfg.users)]
    population_parts: list[Windows] = []
    targets_out: dict[str, TargetSplit] = {}
    recording_id = 0
    for u, user in enumerate(info.users):
        is_target = user in targets
        contexts = cfg.contexts if is_target else cfg.population_contexts
        per_context: dict[str, list[Windows]] = {}
        for c in contexts:
            ci = ctx_index[c]
            rng = np.random.default_rng([seed, u, 2, ci])
            drift = _drift(rng, CONTEXTS[c], cfg.strength)
            priors = np.ones(len(CLASSES))
            if CONTEXTS[c].drift == "output":
                priors = rng.permutation([1.75, 1.5, 1.0, 1.0, 0.6, 0.4]) ** min(1.0, cfg.strength)
            parts = []
            for a in range(len(CLASSES)):
                n = cfg.windows
                if is_target and c != cfg.adapt_context:
                    n = max(cfg.sessions, int(round(cfg.unseen_windows * priors[a])))
                generated = a
                if drift.swap and rng.random() < drift.swap:
                    for i, j in _SWAPS:
                        generated = j if a == i else i if a == j else generated
                per_session = -(-n // cfg.sessions)
                for _ in range(cfg.sessions):
                    x, starts = _windows(_recording(rng, generated, (per_session + 1) * STRIDE, traits[u], drift))
                    m = len(x)
                    parts.append(Windows(
                        x=torch.from_numpy(x), y=torch.full((m,), a, dtype=torch.long),
                        recording=torch.full((m,), recording_id, dtype=torch.long),
                        start=torch.from_numpy(starts).long(),
                        user=torch.full((m,), u, dtype=torch.long), context=torch.full((m,), ci, dtype=torch.long),
                    ))
                    recording_id += 1
            per_context[c] = parts
        if is_target:
            targets_out[user] = _split_target(user, per_context, cfg)
        else:
            population_parts += [w for parts in per_context.values() for w in parts]
    return Splits(info=info, population=Windows.concat(population_parts), targets=targets_out)


def _split_target(user: str, per_context: dict[str, list[Windows]], cfg: SyntheticConfig) -> TargetSplit:
    """adapt = the first k windows of each activity in recording order (the user's first sessions); the rest of the
    session that reaches k loses one window as a gap (windows overlap by half); later windows are test_seen, and
    every other context is test_unseen."""
    adapt, seen = [], []
    by_class: dict[int, list[Windows]] = {}
    for w in per_context[cfg.adapt_context]:
        by_class.setdefault(int(w.y[0]), []).append(w)
    for sessions in by_class.values():
        need = cfg.k
        for w in sessions:
            order = torch.argsort(w.start)
            if need > 0:
                take = min(need, len(w))
                adapt.append(w.subset(order[:take]))
                seen.append(w.subset(order[take + 1 :]))
                need -= take
            else:
                seen.append(w)
    unseen = [w for c, parts in per_context.items() if c != cfg.adapt_context for w in parts]
    return TargetSplit(
        user=user,
        adapt_context=cfg.adapt_context,
        unseen_contexts=tuple(c for c in per_context if c != cfg.adapt_context),
        adapt=Windows.concat(adapt),
        test_seen=Windows.concat([w for w in seen if len(w)]),
        test_unseen=Windows.concat(unseen),
    )
