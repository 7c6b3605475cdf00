"""The messages of the device boundary: a request, the integrity verdict, and the errors it reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api import MethodContext, MethodState, UserData


class AdaptFailed(RuntimeError):
    """A method's exception, re-raised in the host with the method's exception type name and traceback."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback


class SandboxDied(RuntimeError):
    pass


@dataclass
class AdaptRequest:
    """Everything an adapt call may see: a method, its generic model's weights, its state, one user's data."""

    method: str
    params: dict[str, Any]
    backbone: str
    channels: int
    classes: int
    generic: bytes  # the generic model's state dict as safetensors bytes (10x faster to move than pickled tensors)
    state: MethodState
    user: UserData
    ctx: MethodContext
    torch_seed: int
    threads: int


@dataclass
class Verdict:
    """What the grandchild found changed in its inputs after ``adapt`` (empty lists: nothing)."""

    generic: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
