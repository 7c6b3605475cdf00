"""The device boundary: where a method's ``adapt`` runs, with nothing in memory but what the job sends it.

Why a process: a method handed a shared generic model can change it in place (re-estimate BatchNorm statistics,
swap two classifier rows, flip an attribute), and a method running in the harness's process can reach the test
splits through the garbage collector or its callers' frames. Neither is possible here:

* A **zygote** is forked from the host process (the driver, or a pool worker) *before that process loads any
  dataset*, so it holds the registered plugins and no data. It closes its copy of the standard streams' locks
  (fresh file objects) and waits for requests.
* Each adapt runs in a **fresh grandchild** forked from the zygote. The job's inputs arrive pickled: the method's
  name and parameters, the generic model's weights (rebuilt into a new module, so every job starts from the same
  bytes), the prepared state, the user's adapt data and the context. Nothing the grandchild does — to the model,
  to the state, to module globals — survives it.
* The grandchild digests the generic model (every tensor, buffer and forward-relevant module attribute) and the
  prepared state before and after ``adapt`` and reports any change, so the job fails with the reason.
* While ``adapt`` runs, the grandchild **observes** what it executes (optimizer steps, forward and backward
  windows through root modules, which parameters were stepped): estimated targets cost the workload observed,
  not the one the method reports (see :mod:`harbench.run.observe`).

The host measures the adapt phase around the grandchild's compute only: the request is sent and unpacked before
the measured region starts ("ready"), and the integrity verdict is read after it ends.

``isolation: inline`` (for debugging with pdb) runs the same request in-process: fresh copies and digests, no
boundary. Fork is POSIX-only; on other platforms inline is the only mode.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection, Pipe
from typing import Callable

import torch

from ..api import AdaptResult, PhaseCost
from .sandbox_types import AdaptFailed, AdaptRequest, SandboxDied, Verdict
from .transfer import model_digest, pack_result, state_digest, unpack_result, weights_bytes
from .zygote import _death, _Job, _zygote, die_with_parent

__all__ = ["AdaptFailed", "AdaptRequest", "Sandbox", "SandboxDied", "Verdict", "die_with_parent", "model_digest",
           "pack_result", "state_digest", "unpack_result", "weights_bytes"]


# ------------------------------------------------------------------------------------------------ the host


class Sandbox:
    """The host's handle on its zygote. ``start()`` must run before the host process loads any data."""

    def __init__(self, registry, isolation: str = "process"):
        self.registry = registry
        self.isolation = isolation if hasattr(os, "fork") else "inline"
        self.conn: Connection | None = None
        self.pid: int | None = None
        self._done = True  # whether the zygote reported the current job's process ended

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.isolation != "process" or self.pid is not None:
            return
        gc.collect()  # what the host no longer references is not copied into the zygote
        parent, child = Pipe(duplex=True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the zygote
            parent.close()
            code = 0
            try:
                _zygote(self.registry, child)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child.close()
        self.conn, self.pid = parent, pid

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None

    def __del__(self) -> None:  # a host that forgets to close still lets its zygote exit (EOF on the pipe)
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:
            pass

    # ------------------------------------------------------------------------------------------ adapt
    def adapt(self, request: AdaptRequest,
              measure: Callable[[Callable[[], AdaptResult]], tuple[AdaptResult, PhaseCost]],
              after: Callable[[AdaptResult], None] = lambda r: None,
              defer: bool = False) -> tuple[AdaptResult, PhaseCost, Verdict]:
        """Run ``request`` under ``measure`` (the target's ``run_adapt``); ``after`` runs inside the measured
        region on the returned result (e.g. one forward so an estimating target sees the input shape).

        ``defer`` (for targets that measure this host and only time the call): the measured region ends when the
        job's process says ``adapt`` returned; the result travels afterwards and fills in the object ``measure``
        got, so moving the model between processes is never counted as adaptation."""
        if self.isolation == "lost":
            raise SandboxDied("the sandbox process of this host ended earlier in the run (killed?), and a new one "
                              "cannot be forked once data is loaded; finish the run with --resume")
        if self.isolation != "process":
            return self._inline(request, measure, after)
        if self.pid is None:
            self.start()
        return self._remote(request, measure, after, defer)

    def _inline(self, request, measure, after):
        request = pickle.loads(pickle.dumps(request))  # the same fresh copies a process would receive
        job = _Job(self.registry, request)

        def go() -> AdaptResult:
            result = job.run()
            after(result)
            return result

        result, cost = measure(go)
        return result, cost, job.verdict()

    def _remote(self, request, measure, after, defer=False):
        conn = self.conn
        assert conn is not None
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        self._done = False
        try:
            conn.send_bytes(payload)
        except OSError:
            self._done = True
            self._lost()
            raise SandboxDied("the sandbox process ended unexpectedly (killed?)") from None
        job_pid, replied = None, False
        try:
            msg = self._recv()
            if msg[0] == "error":
                raise AdaptFailed(*msg[1:])
            job_pid = msg[1]

            placeholder = AdaptResult(torch.nn.Identity())

            def receive() -> AdaptResult:
                reply = self._recv()
                if reply[0] == "error":
                    raise AdaptFailed(*reply[1:])
                return unpack_result(reply[1], reply[2])

            memory: dict = {}

            def go() -> AdaptResult:
                conn.send_bytes(b"go")
                done = self._recv()  # ("returned", peak memory) the moment adapt returns, or ("error", ...)
                if done[0] == "error":
                    raise AdaptFailed(*done[1:])
                memory.update(done[1] or {})
                if defer:
                    return placeholder
                result = receive()
                after(result)
                return result

            result, cost = measure(go)
            if defer:
                if result is not placeholder:
                    raise TypeError("a deferring target's run_adapt must return the result adapt() gave it")
                real = receive()
                result.model, result.facts = real.model, real.facts
                after(result)
                if cost.peak_mb is None and memory:  # a host-measuring target: the job process's own peak
                    cost.peak_mb = memory["peak_mb"]
                    cost.extra["memory"] = memory
            verdict = self._recv()[1]
            replied = True
            return result, cost, verdict
        finally:  # an error, a time limit or Ctrl-C: the job's process must not outlive the job
            if not replied and not self._done and job_pid is not None:
                try:
                    os.kill(job_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._drain()

    def _recv(self) -> tuple:
        """The next message of the job; the zygote's "done" before the expected reply means the job died."""
        assert self.conn is not None
        try:
            msg = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            self._lost()
            raise SandboxDied("the sandbox process ended unexpectedly") from None
        if msg[0] == "done":
            self._done = True
            raise SandboxDied(_death(msg[1]))
        return msg

    def _drain(self) -> None:
        """Read until the zygote says the job's process has ended, so the next request starts clean."""
        try:
            while self.conn is not None and not self._done:
                msg = pickle.loads(self.conn.recv_bytes())
                self._done = msg[0] == "done"
        except (EOFError, OSError):
            self._lost()

    def _lost(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        if self.pid is not None:
            try:
                os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        self.pid = None
        self.isolation = "lost"  # a host whose zygote died cannot fork a clean one after loading data
