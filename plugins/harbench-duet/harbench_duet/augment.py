"""Virtual population devices: the same user's windows under one random sensor/gait transform per device.

Why: the generic backbone was trained on every population user, so on their own windows it is nearly perfect and
the episodic loss gives the generator little to learn -- but target users are new people. Giving each virtual
device one consistent personal transform (mounting rotation, per-axis gain, cadence and movement amplitude, the
kinds of trait that differ between people) creates devices the generic head gets wrong in a *systematic* way
that their unlabelled buffer reveals, which is exactly the correction DUET must learn to generate. The transform
is a training-data augmentation of ``prepare`` (off by default, ``virtual_devices=0``); it never touches target data.

It is a *prior about the data*, not part of DUET: the transform's families (rotation, gain, tempo, amplitude)
are the very traits by which ``harbench/data/synthetic.py`` makes its users differ, so on that generator it is
a prior matched to the benchmark. Use it only where you believe new users differ from the population that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from harbench import Windows

from .episodes import Device


@dataclass(frozen=True)
class TraitTransform:
    rotation: torch.Tensor  # (3, 3), applied to the accelerometer and the gyroscope triples
    gain: torch.Tensor  # (C,)
    tempo: float  # > 1 = faster movement (time compressed)
    amplitude: float  # scales each channel's deviation from its window mean

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = _rotate_triples(x, self.rotation)
        x = _retime(x, self.tempo)
        mean = x.mean(dim=-1, keepdim=True)
        x = mean + self.amplitude * (x - mean)
        return x * self.gain[None, :, None]


def random_transform(channels: int, generator: torch.Generator, strength: float = 1.0) -> TraitTransform:
    s = strength
    angle = math.radians(25.0 * s) * float(torch.randn((), generator=generator))
    return TraitTransform(
        rotation=_rotation(angle, torch.randn(3, generator=generator)),
        gain=1 + 0.15 * s * (2 * torch.rand(channels, generator=generator) - 1),
        tempo=math.exp(0.15 * s * float(torch.randn((), generator=generator))),
        amplitude=math.exp(0.25 * s * float(torch.randn((), generator=generator))),
    )


def _rotation(angle: float, axis: torch.Tensor) -> torch.Tensor:
    axis = axis / axis.norm().clamp_min(1e-8)
    k = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return torch.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def _rotate_triples(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate every complete group of three channels (acc xyz, gyro xyz); leftover channels pass through."""
    out = x.clone()
    for c in range(0, x.shape[1] - x.shape[1] % 3, 3):
        out[:, c : c + 3] = torch.einsum("ij,njt->nit", rotation, x[:, c : c + 3])
    return out


def _retime(x: torch.Tensor, tempo: float) -> torch.Tensor:
    """Resample so movement runs ``tempo`` times faster, keeping the window length (wrap-around padding)."""
    t = x.shape[-1]
    length = max(2, int(round(t / tempo)))
    y = F.interpolate(x, size=length, mode="linear", align_corners=False)
    if length >= t:
        start = (length - t) // 2
        return y[..., start : start + t]
    reps = -(-t // length)
    return y.repeat(1, 1, reps)[..., :t]


def add_virtual_devices(
    population: Windows, devices: list[Device], copies: int, generator: torch.Generator, strength: float = 1.0
) -> tuple[Windows, list[Device]]:
    """Append ``copies`` transformed versions of every device's windows; return the extended windows and the
    virtual devices (same user, so they stay on the same side of the train/validation split)."""
    if copies <= 0 or not devices:
        return population, []
    parts = [population]
    virtual = []
    offset = len(population)
    for device in devices:
        index = torch.cat([device.buffer_pool, device.query_pool])
        for _ in range(copies):
            transform = random_transform(population.x.shape[1], generator, strength)
            part = population.subset(index)
            parts.append(Windows(transform(part.x), part.y, part.recording, part.start, part.user, part.context))
            nb = len(device.buffer_pool)
            new = torch.arange(offset, offset + len(index))
            lengths = [len(t) for t in device.sessions()]  # sessions lie in buffer_pool in recording order
            virtual.append(Device(device.user, device.context, new[:nb], new[nb:], tuple(new[:nb].split(lengths))))
            offset += len(index)
    return Windows.concat(parts), virtual
