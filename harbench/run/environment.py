"""What a run records about the machine and software it ran on (stored with the run, shown in reports)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..machine import git_commit, memory_gb, processor  # noqa: F401  (re-exported: the run layer's users read them here)

if TYPE_CHECKING:
    from ..plugins import Registry


def environment(registry: Registry) -> dict[str, Any]:
    import torch

    return describe_environment(registry.versions(), torch.__version__, torch.get_num_threads())


def describe_environment(plugins: dict[str, str], torch_version: str | None, threads: int | None) -> dict[str, Any]:
    """The environment from its parts; a warm run (``run/warm.py``) fills them without importing torch."""
    return {
        "host": socket.gethostname(), "platform": platform.platform(), "python": sys.version.split()[0],
        "torch": torch_version, "harbench": __version__, "plugins": plugins,
        "torch_threads": threads, "cpu_count": os.cpu_count(), "git_commit": git_commit(),
    }


