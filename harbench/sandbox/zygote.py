"""The processes behind the boundary: a root, its zygote, and one fresh process per job.

* The **root** is forked from the host before the host loads any dataset: it holds the registered plugins (and
  the suite's hardware targets) and no data, warms torch up once, and forks zygotes on request, handing the host
  the zygote's end of a new pipe (``SCM_RIGHTS``). A zygote killed by a job is replaced by a clean one.
* The **zygote** forks one process per job and waits for it; it and the root are child subreapers
  (:mod:`harbench.sandbox.reaper`), so whatever the job started is killed before the zygote reports it done.
* The **job's process** unpickles its request (host -> job is pickled: the host trusts itself), then answers
  commands with :mod:`~harbench.sandbox.wire` messages (see :mod:`harbench.sandbox.child`).

Every process gets SIGKILL when its parent dies (``PR_SET_PDEATHSIG``): a killed run leaves nothing behind.
"""

from __future__ import annotations

import copy
import gc
import io
import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection, Pipe
from multiprocessing.reduction import send_handle
from pathlib import Path

import torch

from ..api import Windows
from ..models import build_backbone
from ..training import fit, make_optimizer, predict
from .child import JobProcess, error_message
from .isolation import IsolationUnavailable, restrict_reading
from .reaper import become_subreaper, die_with_parent, reap_all
from .wire import encode


def death(status: int) -> str:
    """How a process ended, from its wait status, in words."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"was killed by {name}" + (" (out of memory, or killed from outside?)" if sig == signal.SIGKILL else "")
    return f"exited with status {os.WEXITSTATUS(status)} (os._exit or a crash in native code)"


def _fresh_stdio() -> None:
    """Another thread of the host may have held a stream's lock at fork time: use new file objects."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        try:
            setattr(sys, name, io.TextIOWrapper(io.FileIO(os.dup(fd), "w"), line_buffering=True))
        except OSError:
            setattr(sys, name, open(os.devnull, "w"))


def _warm_up(targets=None) -> None:
    """Pay torch's first-use costs once, in the root, on random data: lazy imports (the optimizers' compile
    checks, the FLOP counter), kernel initialisation; otherwise every job's process paid ~1.8 s of them inside
    the measured adapt phase. The suite's estimating targets model a tiny adapt phase and inference on copies of
    themselves (their tracing machinery's first use), and the host measurement's memory tracer runs once."""
    from torch.utils.flop_counter import FlopCounterMode

    g = torch.Generator().manual_seed(0)
    model = build_backbone("resnet1d", 3, 2)
    n = 8
    w = Windows(torch.randn(n, 3, 32, generator=g), torch.arange(n) % 2, torch.zeros(n, dtype=torch.long),
                torch.arange(n) * 32, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))
    for opt in ("adam", "sgd"):
        fit(model, w, epochs=1, batch_size=4, optimizer=make_optimizer(model.parameters(), opt, 1e-4),
            generator=torch.Generator().manual_seed(0), val=w)
    predict(model, w.x)
    with FlopCounterMode(display=False):
        model(w.x[:1])
    model.eval()
    from ..api import AdaptFacts, AdaptResult
    from ..builtin.hardware import inference_memory
    from ..measure.latency import latency_loop

    latency_loop(model, w.x[:1], warmup=1, min_duration_s=0.0, min_count=1)
    inference_memory(model, w.x[:1])
    facts = AdaptFacts(params_trained=1, optimizer_steps=1, forward_samples=4, backward_samples=4, batch_size=4,
                       optimizer="adam", lr=1e-3)
    for hw in (getattr(targets, "instances", None) or {}).values():
        try:
            if hw.measures_host or hw.describe().mode != "estimated":  # never a device over the network
                continue
            mine = copy.deepcopy(hw)  # its state (a remembered window shape...) stays the jobs' own

            def adapt() -> AdaptResult:
                with torch.no_grad():
                    model(w.x[:4])
                return AdaptResult(model, facts)

            mine.run_adapt(adapt)
            mine.run_inference(model, w.x[:1])
        except Exception:  # noqa: BLE001 -- an optimisation only
            pass


def _child(run, *args) -> int:
    """Fork; the child runs ``run(*args)`` and exits (status 1 on an exception); returns the child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            die_with_parent()
            run(*args)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


def root_main(registry, targets, conn: Connection, protected: list[str] | None = None) -> None:
    _fresh_stdio()
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when to stop
    become_subreaper()
    try:
        _warm_up(targets)
    except Exception:  # noqa: BLE001 -- an optimisation only: a job that needs what failed here reports it
        pass
    gc.collect()
    host = os.getppid()
    zygote: int | None = None
    while True:
        try:
            conn.recv_bytes()  # "a zygote, please": the previous one (if any) is dead or closed
        except (EOFError, OSError):
            return
        if os.getppid() != host:
            return
        if zygote is not None:
            try:
                os.kill(zygote, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap_all()  # the dead zygote, and every orphan of its last job
        ours, theirs = Pipe(duplex=True)
        zygote = _child(_zygote_main, registry, targets, theirs, protected, conn)
        theirs.close()
        send_handle(conn, ours.fileno(), host)
        conn.send_bytes(str(zygote).encode())
        ours.close()


def _zygote_main(registry, targets, conn: Connection, protected: list[str] | None, root: Connection) -> None:
    root.close()  # a job must not be able to ask the root for zygotes behind the host's back
    become_subreaper()
    refusal: BaseException | None = None
    if protected is not None:  # isolation: strict -- once here, inherited by every job process
        try:
            restrict_reading([Path(p) for p in protected])
        except IsolationUnavailable as exc:
            refusal = exc
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if os.getppid() == 1:
            return
        pid = _child(_job_main, registry, targets, conn, payload, refusal)
        _, status = os.waitpid(pid, 0)
        killed = reap_all()
        try:
            conn.send_bytes(encode("done", {"status": status, "how": death(status), "killed": killed}))
        except OSError:
            return


def _job_main(registry, targets, conn: Connection, payload: bytes, refusal: BaseException | None) -> None:
    if refusal is not None:
        conn.send_bytes(error_message(refusal))
        return

    def ask(op: str) -> dict:
        """The host's energy meter, for a host-measuring target's inference (see child.HostMeter)."""
        conn.send_bytes(encode("meter", {"op": op}))
        return pickle.loads(conn.recv_bytes())

    try:
        job = JobProcess(registry, targets, pickle.loads(payload), ask)
    except BaseException as exc:
        conn.send_bytes(error_message(exc))
        return
    conn.send_bytes(encode("ready", {"pid": os.getpid()}))
    while True:
        try:
            command = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if command[0] == "close":
            return
        conn.send_bytes(job.handle(command))
