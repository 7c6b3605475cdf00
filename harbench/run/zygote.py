"""The child side of the device boundary: the zygote forked before any data is loaded, and the grandchild that
runs one adapt request (see :mod:`harbench.run.sandbox` for why)."""

from __future__ import annotations

import gc
import io
import os
import pickle
import signal
import sys
import traceback
from multiprocessing.connection import Connection

import torch
from safetensors.torch import load as safetensors_load

from ..api import AdaptResult, Windows
from ..models import build_backbone
from ..training import fit, make_optimizer, predict
from .observe import Observer
from .sandbox_types import AdaptRequest, Verdict
from .transfer import changed, model_digest, pack_result, state_digest

# --------------------------------------------------------------------------------------------- one request


class _Job:
    """One adapt request inside the grandchild (or inline): build the inputs, run, observe, verify."""

    def __init__(self, registry, request: AdaptRequest):
        self.request = request
        torch.set_num_threads(max(1, request.threads))
        self.method = registry.get("method", request.method).cls(**request.params)
        generic = build_backbone(request.backbone, request.channels, request.classes)
        generic.load_state_dict(safetensors_load(request.generic))
        generic.eval()
        for p in generic.parameters():
            p.requires_grad_(False)
        self.generic = generic
        self.before = model_digest(generic), state_digest(request.state)

    def run(self) -> AdaptResult:
        r = self.request
        torch.manual_seed(r.torch_seed)
        with Observer() as observer:
            result = self.method.adapt(self.generic, r.state, r.user, r.ctx)
        if not isinstance(result, AdaptResult):
            raise TypeError(f"method {r.method!r}: adapt() returned {type(result).__name__}, expected harbench.AdaptResult")
        observer.apply(result)
        return result

    def verdict(self) -> Verdict:
        return Verdict(changed(self.before[0], model_digest(self.generic)),
                       changed(self.before[1], state_digest(self.request.state)))


class PeakRss:
    """The adapt phase's peak resident memory above the job process's own at "go" (Linux ``/proc``).

    ``start`` resets the kernel's high-water mark (``VmHWM``, by writing 5 to ``/proc/self/clear_refs``) to the
    current RSS, which already holds the unpacked request and every page inherited from the zygote; ``stop``
    reads the mark again. Without ``clear_refs`` the mark since the fork is used (the process is fresh, so it
    differs only by what unpacking the request touched). None where ``/proc`` is missing."""

    def __init__(self) -> None:
        self.base_kb: int | None = None
        self.how = "VmHWM after clear_refs"

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return None

    def start(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            self.how = "VmHWM since fork (clear_refs not writable)"
        self.base_kb = self._status("VmRSS")

    def stop(self) -> dict | None:
        peak = self._status("VmHWM")
        if self.base_kb is None or peak is None:
            return None
        return {"peak_mb": max(peak - self.base_kb, 0) / 1024.0, "baseline_mb": self.base_kb / 1024.0,
                "method": f"rss: {self.how}, over the job process's RSS at go"}


def _death(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"the adapt process was killed by {name}" + (" (out of memory?)" if sig == signal.SIGKILL else "")
    return f"the adapt process exited with status {os.WEXITSTATUS(status)}"


# ----------------------------------------------------------------------------------------- zygote, grandchild


def _fresh_stdio() -> None:
    """Another thread of the host may have held a stream's lock at fork time: use new file objects."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        try:
            setattr(sys, name, io.TextIOWrapper(io.FileIO(os.dup(fd), "w"), line_buffering=True))
        except OSError:
            setattr(sys, name, open(os.devnull, "w"))


def die_with_parent() -> None:
    """Linux: deliver SIGKILL to this process when its parent dies, so no job outlives a killed run."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _warm_up() -> None:
    """Pay torch's first-use costs once, in the zygote, on random data: lazy imports (the optimizers' compile
    checks, the FLOP counter), kernel initialisation. Measured on this VM: without it every job's process paid
    ~1.8 s of them inside the measured adapt phase (finetune-last: 1.8–2.3 s against 0.06 s in-process)."""
    from torch.utils.flop_counter import FlopCounterMode

    g = torch.Generator().manual_seed(0)
    for name in ("resnet1d",):
        model = build_backbone(name, 3, 2)
        n = 8
        w = Windows(torch.randn(n, 3, 32, generator=g), torch.arange(n) % 2, torch.zeros(n, dtype=torch.long),
                    torch.arange(n) * 32, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))
        for opt in ("adam", "sgd"):
            fit(model, w, epochs=1, batch_size=4, optimizer=make_optimizer(model.parameters(), opt, 1e-4),
                generator=torch.Generator().manual_seed(0), val=w)
        predict(model, w.x)
        with FlopCounterMode(display=False):
            model(w.x[:1])


def _zygote(registry, conn: Connection) -> None:
    _fresh_stdio()
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when to stop
    try:
        _warm_up()
    except Exception:  # an optimisation only: a job that needs what failed here reports it itself
        pass
    gc.collect()
    host = os.getppid()
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if os.getppid() != host:
            return
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                die_with_parent()
                _grandchild(registry, conn, payload)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        try:
            conn.send_bytes(pickle.dumps(("done", status)))
        except (BrokenPipeError, OSError):
            return


def _send(conn: Connection, msg: tuple) -> None:
    conn.send_bytes(pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))


def _error(exc: BaseException) -> tuple:
    return ("error", type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))


def _grandchild(registry, conn: Connection, payload: bytes) -> None:
    try:
        job = _Job(registry, pickle.loads(payload))
    except BaseException as exc:
        _send(conn, _error(exc))
        return
    _send(conn, ("ready", os.getpid()))
    if conn.recv_bytes() != b"go":
        return
    memory = PeakRss()
    memory.start()
    try:
        result = job.run()
    except BaseException as exc:
        _send(conn, _error(exc))
        return
    _send(conn, ("returned", memory.stop()))
    try:
        reply = pickle.dumps(pack_result(result), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        _send(conn, _error(exc))
        return
    conn.send_bytes(reply)
    _send(conn, ("verdict", job.verdict()))
