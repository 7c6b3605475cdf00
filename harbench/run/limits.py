"""Guards around a node's work: a time limit that never fires inside an import, and Ctrl-C handling."""

from __future__ import annotations

import math
import signal
import threading


class JobTimeout(Exception):
    pass


class time_limit:
    """Raise :class:`JobTimeout` after ``seconds`` (an interval timer; main thread only). An infinite or absurdly
    long limit (over ~3 years, which the timer cannot hold) means none."""

    def __init__(self, seconds: float | None, what: str = "the job"):
        if seconds is not None and (not math.isfinite(seconds) or seconds > 1e8):
            seconds = None
        self.seconds = seconds if threading.current_thread() is threading.main_thread() else None
        self.what = what

    def _expired(self, signum, frame):
        f = frame
        while f is not None:  # never interrupt an import: a half-imported module breaks every later job
            if f.f_code.co_filename.startswith("<frozen importlib"):
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                return
            f = f.f_back
        raise JobTimeout(f"{self.what} exceeded its time limit of {self.seconds:g} s (timeout_s)")

    def __enter__(self):
        if self.seconds:
            self.previous = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


class StopOnInterrupt:
    """The first Ctrl-C lets the current job finish and stops the run; a second one aborts at once (it raises
    ``KeyboardInterrupt`` where the driver is; the driver still records the run as ``interrupted``, so
    ``--resume`` finishes it, and ``aborted`` says the current job was abandoned)."""

    def __init__(self):
        self.requested = False
        self.aborted = False

    def _handler(self, signum, frame):
        if self.requested:
            self.aborted = True
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)
