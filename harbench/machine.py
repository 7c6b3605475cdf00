"""This machine, as every layer describes it (the ``cpu`` target, the plan memo's key, a bundle's manifest, a run's
environment, a benchmark's record): its processor and memory, and the commit of harbench's checkout. Shared
infrastructure with no harbench import, so that any layer can read it."""

from __future__ import annotations

import os
import platform
import subprocess


def processor() -> str:
    """This host's processor, as the ``cpu`` target describes it (and the plan memo's key checks it)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The commit of the git checkout harbench runs from (None outside one, or without git)."""
    try:
        text = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return text or None


def memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")
