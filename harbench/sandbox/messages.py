"""The requests that open a job's process, the integrity verdict, and the errors the boundary reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..api import MethodContext, MethodState, UserData, Windows


class AdaptFailed(RuntimeError):
    """A plugin's exception in its job's process, re-raised in the host with its type name and traceback."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback


class SandboxDied(RuntimeError):
    """A job's process (or the zygote) ended without replying: the message says whose and how."""


class OutputRejected(ValueError):
    """A plugin's output failed a check at the boundary (a negative energy, a fraction above 1...)."""


@dataclass
class ModelSpec:
    """How to rebuild the generic model in a job's process: a built-in backbone and its weights (safetensors)."""

    backbone: str
    channels: int
    classes: int
    weights: bytes


@dataclass
class PrepareRequest:
    """Everything ``prepare`` may see: its method, a copy of the generic model, the population."""

    method: str
    params: dict[str, Any]
    generic: ModelSpec
    population: Windows
    ctx: MethodContext
    torch_seed: int
    threads: int


@dataclass
class AdaptRequest:
    """Everything ``adapt`` may see: a method, its generic model's weights, its state, one user's data."""

    method: str
    params: dict[str, Any]
    generic: ModelSpec
    state: MethodState
    user: UserData
    ctx: MethodContext
    torch_seed: int
    threads: int


@dataclass
class LoadRequest:
    """An adapted model served from the cache (the generic architecture with cached weights), for a target that
    estimates its adapt phase from the facts of an earlier run."""

    method: str
    model: ModelSpec
    facts: dict[str, Any]
    threads: int


@dataclass
class Verdict:
    """What the job's process found changed in its inputs after ``adapt`` (empty lists: nothing)."""

    generic: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
