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
  not the one the method reports (see :mod:`harbench.observe`).

The host measures the adapt phase around the grandchild's compute only: the request is sent and unpacked before
the measured region starts ("ready"), and the integrity verdict is read after it ends.

``isolation: inline`` (for debugging with pdb) runs the same request in-process: fresh copies and digests, no
boundary. Fork is POSIX-only; on other platforms inline is the only mode.
"""

from __future__ import annotations

import copy
import gc
import io
import os
import pickle
import signal
import sys
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, Pipe
from typing import Any, Callable

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from .api import AdaptResult, MethodContext, MethodState, PhaseCost, UserData
from .cache import tensors_digest
from .models import build_backbone
from .observe import Observer


class AdaptFailed(RuntimeError):
    """A method's exception, re-raised in the host with the method's exception type name and traceback."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback


class SandboxDied(RuntimeError):
    pass


@dataclass
class AdaptRequest:
    """Everything an adapt call may see: a method, its generic model's weights, its state, one user's data."""

    method: str
    params: dict[str, Any]
    backbone: str
    channels: int
    classes: int
    generic: bytes  # the generic model's state dict as safetensors bytes (10x faster to move than pickled tensors)
    state: MethodState
    user: UserData
    ctx: MethodContext
    torch_seed: int
    threads: int


@dataclass
class Verdict:
    """What the grandchild found changed in its inputs after ``adapt`` (empty lists: nothing)."""

    generic: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------- digests


_ATTR_TYPES = (bool, int, float, str, type(None))


def _attr_value(v: Any) -> Any:
    if isinstance(v, _ATTR_TYPES):
        return v
    if isinstance(v, (tuple, list)) and all(isinstance(x, _ATTR_TYPES) for x in v):
        return tuple(v)
    return None


def _tensor_hash(t: torch.Tensor) -> str:
    return tensors_digest({"": t})  # the cache's content digest: dtype, shape and bytes


def model_digest(model: torch.nn.Module) -> dict[str, str]:
    """A digest per tensor (weights and buffers) and per module's forward-relevant plain attributes.

    Plain attributes (``training``, BatchNorm ``momentum``/``eps``, convolution strides...) change what the forward
    computes without changing a tensor, so they are part of what must not change.
    """
    out = {}
    for name, t in model.state_dict(keep_vars=False).items():
        out[name] = _tensor_hash(t)
    for mname, module in model.named_modules():
        for k, v in vars(module).items():
            if not k.startswith("_") and _attr_value(v) is not None:
                out[f"{mname + '.' if mname else ''}{k}"] = repr(_attr_value(v))
    return out


def state_digest(state: MethodState) -> dict[str, str]:
    out = {}
    for name, t in state.tensors.items():
        out[f"tensors.{name}"] = _tensor_hash(t)
    out["meta"] = repr(sorted(state.meta.items(), key=lambda kv: kv[0]))
    return out


def weights_bytes(model: torch.nn.Module) -> bytes:
    """What an :class:`AdaptRequest` carries of the generic model (independent copies of every tensor)."""
    return safetensors_save({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()})


def pack_result(result: AdaptResult) -> tuple:
    """The reply of a job: the result with its model as a weightless skeleton (meta tensors) plus its weights as
    safetensors bytes — milliseconds, where pickling every tensor took ~100 ms inside the measured region.
    Models with non-persistent buffers or shared tensors are pickled whole."""
    model = result.model
    try:
        if any(m._non_persistent_buffers_set for m in model.modules()):
            raise ValueError("non-persistent buffers")
        weights = safetensors_save({k: v.detach().contiguous() for k, v in model.state_dict().items()})
        skeleton = copy.deepcopy(model).to("meta")
        packed = pickle.dumps(AdaptResult(skeleton, result.facts), protocol=pickle.HIGHEST_PROTOCOL)
        return ("result", packed, weights)
    except Exception:
        return ("result", pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), None)


def unpack_result(packed: bytes, weights: bytes | None) -> AdaptResult:
    result = pickle.loads(packed)
    if weights is not None:
        result.model.load_state_dict(safetensors_load(weights), assign=True)
    return result


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


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

            def go() -> AdaptResult:
                conn.send_bytes(b"go")
                done = self._recv()  # ("returned",) the moment adapt returns, or ("error", ...)
                if done[0] == "error":
                    raise AdaptFailed(*done[1:])
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

    from .training import fit, make_optimizer, predict
    from .api import Windows

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
    try:
        result = job.run()
    except BaseException as exc:
        _send(conn, _error(exc))
        return
    _send(conn, ("returned",))
    try:
        reply = pickle.dumps(pack_result(result), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        _send(conn, _error(exc))
        return
    conn.send_bytes(reply)
    _send(conn, ("verdict", job.verdict()))
