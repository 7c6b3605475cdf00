"""A readers-writer lock over this host, shared by worker processes through ``flock``.

Work that only needs the CPU (training, estimates) holds it shared; a measurement on the host (the ``cpu``
target) holds it exclusively, so parallel work never disturbs measured latency or energy. A turnstile file keeps
a waiting measurement from being starved by a stream of new shared holders.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class HostLock:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _open(self, name: str) -> int:
        return os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o644)

    @contextmanager
    def hold(self, exclusive: bool) -> Iterator[None]:
        gate, main = self._open("turnstile.lock"), self._open("host.lock")
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            try:
                fcntl.flock(main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
            try:
                yield
            finally:
                fcntl.flock(main, fcntl.LOCK_UN)
        finally:
            os.close(gate)
            os.close(main)


@contextmanager
def no_lock(exclusive: bool = False) -> Iterator[None]:
    yield
