"""Energy of a region of code on this host, through codecarbon.

codecarbon measures real energy only where a counter exists (RAPL); elsewhere it models power from a TDP guess,
the CPU load and a constant RAM figure, so its numbers track wall time. ``EnergyMeter.method`` records which it
did. One tracker is started per process (its first start probes the hardware) and regions use its task API;
idle power is measured once in the same process so results carry an idle-subtracted figure too.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass
class Energy:
    joules: float | None
    joules_net: float | None
    seconds: float
    method: str


class EnergyMeter:
    """A process-wide codecarbon tracker, serialised: codecarbon tasks must not overlap."""

    _instance: "EnergyMeter | None" = None
    _lock = threading.RLock()  # re-entrant: the idle measurement runs a region while shared() holds it

    def __init__(self, idle_s: float = 1.0, enabled: bool = True):
        self.method = "none"
        self.tracker = None
        self.idle_w: float | None = None
        if enabled:
            self._start(idle_s)

    @classmethod
    def shared(cls) -> "EnergyMeter":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _start(self, idle_s: float) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)

            tracker = OfflineEmissionsTracker(
                country_iso_code="USA", measure_power_secs=1, save_to_file=False, log_level="error",
                tracking_mode="machine",
            )
            tracker.start()
        except Exception as exc:  # codecarbon unavailable or broken: record it, never fake a number
            self.method = f"unavailable ({type(exc).__name__})"
            return
        self.tracker = tracker
        modes = {getattr(h, "_mode", None) for h in getattr(tracker, "_hardware", [])}
        self.method = "rapl" if "intel_rapl" in modes else "codecarbon-estimate"
        with self.region() as idle:  # idle_w is still None, so this region reports gross energy only
            time.sleep(idle_s)
        e = idle[0]
        self.idle_w = e.joules / e.seconds if e.joules is not None and e.seconds > 0 else None

    @contextmanager
    def region(self) -> Iterator[list[Energy]]:
        """Measure the enclosed block; the yielded list receives one :class:`Energy` when the block ends."""
        out: list[Energy] = []
        if self.tracker is None:
            t0 = time.perf_counter()
            yield out
            out.append(Energy(None, None, time.perf_counter() - t0, self.method))
            return
        with self._lock:
            self.tracker.start_task("harbench")
            t0 = time.perf_counter()
            try:
                yield out
            finally:
                seconds = time.perf_counter() - t0
                data = self.tracker.stop_task()
                joules = float(data.energy_consumed) * 3.6e6
                net = None if self.idle_w is None else max(joules - self.idle_w * seconds, 0.0)
                out.append(Energy(joules, net, seconds, self.method))
