"""The host's side of the boundary: the :class:`Sandbox` (its root and zygote) and a :class:`Session` on one job's
process. See :mod:`harbench.sandbox` for what runs where and why."""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
from dataclasses import asdict
from multiprocessing.connection import Connection, Pipe
from multiprocessing.reduction import recv_handle
from typing import Any

from ..api import MethodState
from .child import JobProcess
from .messages import AdaptFailed, PrepareRequest, SandboxDied
from .reaper import survivors
from .wire import Message, WireError, decode
from .zygote import root_main


class Sandbox:
    """The host's handle on its root and zygote. ``start()`` must run before the host process loads any data."""

    def __init__(self, registry, isolation: str = "process", targets=None, protected: list[str] | None = None):
        self.registry = registry
        self.targets = targets
        # strict: a process boundary whose job processes cannot read ``protected`` (see .isolation)
        self.protected = list(protected or []) if isolation == "strict" else None
        isolation = "process" if isolation == "strict" else isolation
        self.isolation = isolation if hasattr(os, "fork") else "inline"
        self.root: Connection | None = None
        self.root_pid: int | None = None
        self.conn: Connection | None = None  # the current zygote's pipe
        self.zygote_pid: int | None = None
        self.session: Session | None = None

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.isolation != "process" or self.root_pid is not None:
            return
        gc.collect()  # what the host no longer references is not copied into the root
        parent, child = Pipe(duplex=True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            parent.close()
            code = 0
            try:
                root_main(self.registry, self.targets, child, self.protected)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child.close()
        self.root, self.root_pid = parent, pid

    def _zygote(self) -> Connection:
        if self.conn is None:
            if self.root is None:
                raise SandboxDied("the sandbox's root process ended (killed?), and a new one cannot be forked once "
                                  "data is loaded; finish the run with --resume")
            try:
                self.root.send_bytes(b"zygote")
                self.conn = Connection(recv_handle(self.root))
                self.zygote_pid = int(self.root.recv_bytes())
            except (EOFError, OSError):
                self.root = None
                raise SandboxDied("the sandbox's root process ended (killed?); finish the run with --resume") from None
        return self.conn

    def lost_zygote(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        self.lost_zygote()
        if self.root is not None:
            self.root.close()
            self.root = None
        if self.root_pid is not None:
            try:
                os.waitpid(self.root_pid, 0)
            except ChildProcessError:
                pass
            self.root_pid = None

    def __del__(self) -> None:  # a host that forgets to close still lets its processes exit (EOF on the pipes)
        try:
            for c in (self.conn, self.root):
                if c is not None:
                    c.close()
        except Exception:  # noqa: BLE001
            pass

    def survivors(self) -> list[int]:
        """Processes other than the zygote and the current job's own process (processes of earlier jobs that the
        reaper missed, or helpers this job left running): a host measurement refuses to run beside them."""
        if self.root_pid is None:
            return []
        allowed = {self.zygote_pid} | ({self.session.pid} if self.session is not None else set())
        return survivors(self.root_pid, {p for p in allowed if p is not None})

    # ------------------------------------------------------------------------------------- sessions
    def open(self, request, phase: str) -> "Session":
        """A job's process holding ``request`` (its method's ``prepare`` or ``adapt`` inputs)."""
        if self.session is not None:
            self.session.close()
        if self.isolation != "process":
            self.session = Session(self, request.method, phase, None, inline=request)
            return self.session
        conn = self._zygote()
        session = Session(self, request.method, phase, conn)
        try:
            conn.send_bytes(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self.lost_zygote()
            raise SandboxDied(f"method {request.method!r} ({phase}): the sandbox's zygote ended (killed by an "
                              "earlier job?)") from None
        self.session = session
        session.pid = session.reply("ready").header["pid"]
        return session

    def prepare(self, request: PrepareRequest) -> MethodState:
        """Run ``prepare`` in a job's process; its state comes back as tensors and JSON, nothing else."""
        session = self.open(request, "prepare")
        try:
            msg = session.call(("go",), "state")
            return MethodState(tensors=dict(msg.tensors), meta=msg.header["meta"])
        finally:
            session.close()


class Session:
    """One job's process, from the host: commands in, :mod:`~harbench.sandbox.wire` messages out."""

    def __init__(self, sandbox: Sandbox, method: str, phase: str, conn: Connection | None, inline=None):
        self.sandbox, self.method, self.phase, self.conn = sandbox, method, phase, conn
        self.pid: int | None = None
        self.open = True
        self.busy = False  # a command is in flight: closing now must kill the process, not ask it
        self._region: Any = None  # the host meter's open region, while the job's process measures
        self._energy: list = []
        self.local: JobProcess | None = None
        if inline is not None:  # isolation: inline -- the same commands and messages, in this process
            copy = pickle.loads(pickle.dumps(inline))
            self.local = JobProcess(sandbox.registry, sandbox.targets, copy, None)

    def call(self, command: tuple, expect: str) -> Message:
        if self.local is not None:
            msg = decode(self.local.handle(command))
            return self._check(msg, expect)
        assert self.conn is not None
        self.busy = True
        try:
            self.conn.send_bytes(pickle.dumps(command, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # the process is gone: its "done" (or the zygote's end) says how
        msg = self.reply(expect)
        self.busy = False
        return msg

    def reply(self, expect: str) -> Message:
        """The next message for the host; the energy meter's requests are served on the way."""
        while True:
            msg = self._recv()
            if msg.kind == "meter":
                self._meter(msg.header.get("op"))
                continue
            return self._check(msg, expect)

    def _check(self, msg: Message, expect: str) -> Message:
        if msg.kind == "error":
            h = msg.header
            kind, message = str(h.get("type")), str(h.get("message"))
            if kind in ("SystemExit", "KeyboardInterrupt"):  # how it tried to end its process: say whose
                message = f"method {self.method!r} ({self.phase}): {message}"
            raise AdaptFailed(kind, message, str(h.get("traceback", "")))
        if msg.kind != expect:
            raise AdaptFailed("ProtocolError", f"method {self.method!r} ({self.phase}): its process answered "
                              f"{msg.kind!r} where {expect!r} was due")
        return msg

    def _recv(self) -> Message:
        assert self.conn is not None
        try:
            msg = decode(self.conn.recv_bytes())
        except (EOFError, OSError):
            self.open = False
            self.sandbox.lost_zygote()
            raise SandboxDied(f"method {self.method!r} ({self.phase}): the sandbox's zygote ended while the job ran "
                              "(killed by the method?)") from None
        except WireError as exc:
            self.kill()
            raise AdaptFailed("WireError", f"method {self.method!r} ({self.phase}): {exc}") from None
        if msg.kind == "done":
            self.open = False
            self._after_done(msg)
            raise SandboxDied(f"method {self.method!r} ({self.phase}): its process {msg.header.get('how')}")
        return msg

    def _after_done(self, msg: Message) -> None:
        if self.sandbox.session is self:
            self.sandbox.session = None

    def _meter(self, op) -> None:
        from ..measure.energy import EnergyMeter

        meter = EnergyMeter.shared()
        if op == "describe":
            answer: dict = {"method": meter.method, "idle_w": meter.idle_w}
        elif op == "start":
            self._region = meter.region()
            self._energy = self._region.__enter__()
            answer = {}
        else:
            region, self._region = self._region, None
            region.__exit__(None, None, None)
            answer = asdict(self._energy[0])
        assert self.conn is not None
        self.conn.send_bytes(pickle.dumps(answer))

    def kill(self) -> None:
        if self.pid is not None and self.open:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """End the job's process and wait until the zygote says it (and everything it started) is gone."""
        if self.sandbox.session is self:
            self.sandbox.session = None
        if self._region is not None:  # killed inside a metered region: end the host meter's task
            region, self._region = self._region, None
            region.__exit__(None, None, None)
        if self.local is not None or not self.open:
            self.open = False
            return
        if self.busy:  # an error, a time limit or Ctrl-C while the process works: it must not outlive the job
            self.kill()
        else:
            try:
                assert self.conn is not None
                self.conn.send_bytes(pickle.dumps(("close",)))
            except OSError:
                self.kill()
        try:
            while self.open and self.conn is not None:
                msg = decode(self.conn.recv_bytes())
                self.open = msg.kind != "done"
        except (EOFError, OSError, WireError):
            self.open = False
            self.sandbox.lost_zygote()
