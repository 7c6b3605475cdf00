"""Digests of a model and a prepared state (what ``adapt`` must leave unchanged) and the generic weights' bytes."""

from __future__ import annotations

from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from ..api import MethodState
from ..run.cache import tensors_digest

_ATTR_TYPES = (bool, int, float, str, type(None))


def _attr_value(v: Any) -> Any:
    if isinstance(v, _ATTR_TYPES):
        return v
    if isinstance(v, (tuple, list)) and all(isinstance(x, _ATTR_TYPES) for x in v):
        return tuple(v)
    return None


def _tensor_hash(t: torch.Tensor) -> str:
    return tensors_digest({"": t})  # the cache's content digest: dtype, shape and bytes


def model_digest(model: torch.nn.Module) -> dict[str, str]:
    """A digest per tensor (weights and buffers) and per module's forward-relevant plain attributes.

    Plain attributes (``training``, BatchNorm ``momentum``/``eps``, convolution strides...) change what the forward
    computes without changing a tensor, so they are part of what must not change.
    """
    out = {}
    for name, t in model.state_dict(keep_vars=False).items():
        out[name] = _tensor_hash(t)
    for mname, module in model.named_modules():
        for k, v in vars(module).items():
            if not k.startswith("_") and _attr_value(v) is not None:
                out[f"{mname + '.' if mname else ''}{k}"] = repr(_attr_value(v))
    return out


def state_digest(state: MethodState) -> dict[str, str]:
    out = {}
    for name, t in state.tensors.items():
        out[f"tensors.{name}"] = _tensor_hash(t)
    out["meta"] = repr(sorted(state.meta.items(), key=lambda kv: kv[0]))
    return out


def weights_bytes(model: torch.nn.Module) -> bytes:
    """What a request carries of the generic model (independent copies of every tensor)."""
    return safetensors_save({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()})


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
