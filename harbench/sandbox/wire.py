"""The transfer format of the device boundary, job process -> host: a JSON header and safetensors bytes.

Everything a job's process sends back (a prepared state, logits, costs, facts, the integrity verdict, its own
death notice) is decoded here with ``json.loads`` and ``safetensors`` only, so what a plugin returns can be data and
nothing else: no pickle, no object whose ``__setstate__`` or ``forward`` would run in the host. The host -> job
direction is pickled (the host trusts what it sends itself).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

MAGIC = b"HBW1"


class WireError(ValueError):
    """Bytes from a job's process that are not a message of this format."""


@dataclass
class Message:
    kind: str
    header: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """``json.dumps``'s fallback: numbers as floats (numpy scalars), anything else as its text."""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def encode(kind: str, header: dict[str, Any] | None = None, tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    head = json.dumps({"kind": kind, "header": header or {}}, default=plain).encode()
    blob = safetensors_save({k: v.detach().contiguous().clone() for k, v in tensors.items()}) if tensors else b""
    return MAGIC + len(head).to_bytes(8, "little") + head + blob


def decode(data: bytes) -> Message:
    if data[:4] != MAGIC or len(data) < 12:
        raise WireError("a job's process sent bytes that are not a harbench message")
    n = int.from_bytes(data[4:12], "little")
    try:
        head = json.loads(data[12 : 12 + n])
        tensors = safetensors_load(data[12 + n :]) if len(data) > 12 + n else {}
    except Exception as exc:  # noqa: BLE001 -- any malformed reply is the same one-line failure
        raise WireError(f"a job's process sent a malformed message ({type(exc).__name__})") from None
    if not isinstance(head, dict) or not isinstance(head.get("kind"), str) or not isinstance(head.get("header"), dict):
        raise WireError("a job's process sent a message without a kind")
    return Message(head["kind"], head["header"], tensors)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
