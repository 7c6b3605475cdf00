"""What a run records about the machine and software it ran on (stored with the run, shown in reports)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from typing import Any

import torch

from .. import __version__
from ..plugins import Registry


def environment(registry: Registry) -> dict[str, Any]:
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "host": socket.gethostname(), "platform": platform.platform(), "python": sys.version.split()[0],
        "torch": torch.__version__, "harbench": __version__, "plugins": registry.versions(),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "git_commit": commit,
    }
