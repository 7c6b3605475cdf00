"""Episodes over population devices: where DUET's training buffers and labelled query sets come from.

A *device* is one population user in one context (its own data distribution). Each recording of a device is
split in time: the earlier part feeds buffers (the "real-time data" the generator conditions on), the later part
feeds query sets (the labelled windows the generated head is scored on), with one window dropped at the seam
because consecutive windows overlap by half. Buffer and query therefore never share a sample, mirroring a target
user whose buffer precedes the windows the personal model will classify.

Training buffers are drawn the way a target device's buffer is chosen (:func:`device_buffer`): the device's
buffer-side sessions are laid out as a stream in a random session order (windows in time order inside a
session, as the harness hands label-free methods their adapt stream), and the buffer is that stream's most
recent ``N`` windows (``recent``) or ``N`` windows spread evenly over it (``spread``). The generator therefore
learns from buffers like the ones it will see: with ``recent``, one or two activities, not a class-balanced mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harbench import Windows


@dataclass(frozen=True)
class Device:
    user: int
    context: int
    buffer_pool: torch.Tensor  # indices into the population, in stream order (recording, start)
    query_pool: torch.Tensor
    buffer_sessions: tuple[torch.Tensor, ...] = ()  # buffer_pool split by recording, each in time order

    def sessions(self) -> tuple[torch.Tensor, ...]:
        return self.buffer_sessions or (self.buffer_pool,)


@dataclass(frozen=True)
class DeviceSplit:
    train: list[Device]
    val: list[Device]
    val_users: list[int]


def stream_order(w: Windows, index: torch.Tensor) -> torch.Tensor:
    """``index`` sorted by (recording, start): the order in which a device would have recorded the windows."""
    key = w.recording[index] * (int(w.start.max()) + 1 if len(w) else 1) + w.start[index]
    return index[torch.argsort(key)]


def build_devices(population: Windows) -> list[Device]:
    """One :class:`Device` per (user, context) with at least one buffer and one query window."""
    devices = []
    pairs = torch.unique(torch.stack([population.user, population.context], dim=1), dim=0)
    for user, context in pairs.tolist():
        mask = (population.user == user) & (population.context == context)
        buffer_idx, query_idx = [], []
        for rec in torch.unique(population.recording[mask]).tolist():
            idx = stream_order(population, torch.nonzero(mask & (population.recording == rec)).flatten())
            cut = len(idx) // 2
            buffer_idx.append(idx[:cut])
            query_idx.append(idx[cut + 1 :])  # skip the window that overlaps both halves
        buffer_pool = stream_order(population, torch.cat(buffer_idx))
        query_pool = stream_order(population, torch.cat(query_idx))
        if len(buffer_pool) and len(query_pool):
            sessions = tuple(b for b in buffer_idx if len(b))
            devices.append(Device(user, context, buffer_pool, query_pool, sessions))
    return devices


def split_by_user(devices: list[Device], val_fraction: float, generator: torch.Generator) -> DeviceSplit:
    """Hold out whole population users for checkpoint selection (never target users, never a user's own data).

    With a single population user there is nothing to hold out: validation is then empty and the last
    checkpoint is kept.
    """
    users = sorted({d.user for d in devices})
    n_val = int(round(len(users) * val_fraction))
    n_val = min(max(n_val, 1 if val_fraction > 0 else 0), len(users) - 1)
    order = torch.randperm(len(users), generator=generator).tolist()
    val_users = sorted(users[i] for i in order[:n_val])
    return DeviceSplit(
        train=[d for d in devices if d.user not in val_users],
        val=[d for d in devices if d.user in val_users],
        val_users=val_users,
    )


def draw_buffer(device: Device, size: int, select: str, generator: torch.Generator) -> torch.Tensor:
    """A training buffer of ``size`` windows chosen as a target device chooses its own (see the module doc):
    the device's buffer-side sessions in a random order form a stream, :func:`device_buffer` picks from it.
    A stream shorter than ``size`` is cycled, so a meta-batch's buffers can be stacked."""
    sessions = device.sessions()
    order = torch.randperm(len(sessions), generator=generator).tolist()
    stream = torch.cat([sessions[i] for i in order])
    if len(stream) < size:
        stream = stream.repeat(-(-size // len(stream)))[-size:]
    return stream[device_buffer(len(stream), size, select)]


def draw_query(pool: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    if len(pool) >= size:
        return pool[torch.randperm(len(pool), generator=generator)[:size]]
    return pool[torch.randint(len(pool), (size,), generator=generator)]


def device_buffer(stream_len: int, size: int, select: str) -> torch.Tensor:
    """Which of a device's ``stream_len`` windows (in the order the device recorded them) form its buffer.

    ``recent`` (default) = the last ``size`` windows: the paper's real-time data, what a device holds. On a stream
    of sessions it covers the last session or two, i.e. one or two activities. ``spread`` (ablation) = ``size``
    windows evenly spaced over the whole stream: a device that keeps a reservoir over a longer period. On a stream
    ordered class by class (what the harness handed label-free methods before its time-ordered protocol) spread
    is class-balanced by construction, which is why it is no longer the default.
    """
    if stream_len <= size:
        return torch.arange(stream_len)
    if select == "recent":
        return torch.arange(stream_len - size, stream_len)
    if select == "spread":
        return torch.linspace(0, stream_len - 1, size).round().long()
    raise ValueError(f"unknown buffer selection {select!r}; expected 'recent' or 'spread'")
