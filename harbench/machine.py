"""This machine, as every layer describes it (the ``cpu`` target, the plan memo's key, a bundle's manifest): its
processor and memory. Shared infrastructure with no harbench import, so that any layer can read it."""

from __future__ import annotations

import os
import platform


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


def memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")
