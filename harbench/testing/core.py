"""What every conformance check shares: the report, the checker, tiny data, a registry of built-ins, a
short run through the real runner and a time limit."""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import signal
import sys
import tempfile
import threading
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import (
    Param,
    ParamError,
    Splits,
)
from ..builtin.datasets import SyntheticDrift
from ..hookspecs import hookimpl
from ..plugins import Registry
from ..results.store import Store
from ..run import Runner
from ..suite import parse_suite

TINY_DATA = {"users": 4, "windows": 8, "sessions": 2, "k": 3, "unseen_windows": 3}
FAST_CPU = {"min_duration_s": 0.0, "min_count": 5, "energy_min_s": 0.0, "warmup": 1, "energy": False}
_UNKNOWN = "__conformance_unknown_parameter__"
SHORT_RUN = "short run through the runner"


class ConformanceError(AssertionError):
    pass


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ConformanceReport:
    kind: str
    name: str
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def __str__(self) -> str:
        lines = [f"conformance of {self.kind} {self.name!r}:"]
        lines += [f"  {'ok  ' if c.passed else 'FAIL'} {c.name}" + (f": {c.detail}" if c.detail else "")
                  for c in self.checks]
        return "\n".join(lines)


class _Checker:
    """Runs checks in order, recording each; a check that raises fails with the exception as its detail.

    Checks run single-threaded (torch threads restored afterwards): they test behaviour, not speed, and one
    thread is both faster on a busy CI machine and free of thread-count-dependent float reductions.
    """

    def __init__(self, kind: str, name: str):
        self.report = ConformanceReport(kind, name)
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __call__(self, name: str, fn: Callable[[], str | None]) -> bool:
        if name == SHORT_RUN and self.report.failed:
            self._add(Check(name, False, "not run: fix the failures above first"))
            return False
        try:
            detail = fn() or ""
            self._add(Check(name, True, detail))
            return True
        except Exception as exc:  # the check's failure is the result, whatever raised it
            self._add(Check(name, False, f"{type(exc).__name__}: {exc}"))
            return False
        except BaseException as exc:  # SystemExit, KeyboardInterrupt from the plugin: fail the check, go on
            self._add(Check(name, False, f"the plugin raised {type(exc).__name__}({exc})"))
            return False

    def _add(self, check: Check) -> None:
        self.report.checks.append(check)
        if _STREAM is not None:  # in the check's own process: the parent keeps every check that finished
            _write_all(_STREAM, (json.dumps([check.name, check.passed, check.detail]) + "\n").encode())

    def finish(self) -> ConformanceReport:
        torch.set_num_threads(self._threads)
        if self.report.failed:
            raise ConformanceError(str(self.report))
        return self.report


_STREAM: int | None = None  # the pipe to the parent, inside :func:`in_own_process`'s child


def _in_own_process() -> bool:
    return _STREAM is not None


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


_DONE = "__checks finished__"


def in_own_process(kind: str, name: str, body: Callable[[], Any]) -> ConformanceReport:
    """Run ``body`` (which runs its checks with a :class:`_Checker`) in a process of its own, and report here.

    A plugin that ends its process (``sys.exit`` escaping, ``os._exit``, a signal, killing its parent) would
    otherwise end the plugin author's pytest, with status 0 and no output for ``os._exit(0)``. Here the checks run
    in a grandchild whose parent is a sacrificial subreaper: the report keeps every check that finished and fails
    with how the process ended; what the plugin started is killed with it. POSIX only; elsewhere in-process."""
    if not hasattr(os, "fork"):
        return body()
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the sacrificial parent: a subreaper that waits for the checks and kills what they left
        os.close(read)
        os._exit(_middle(write, body))
    os.close(write)
    chunks = []
    with os.fdopen(read, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    report, done = ConformanceReport(kind, name), False
    for line in b"".join(chunks).decode(errors="replace").splitlines():
        try:
            check_name, passed, detail = json.loads(line)
        except ValueError:
            continue
        if check_name == _DONE:
            done = True
            continue
        report.checks.append(Check(str(check_name), bool(passed), str(detail)))
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if not done:
        how = f"was killed by signal {code - 128}" if code >= 128 else f"exited with status {code}"
        report.checks.append(Check("runs to the end", False, f"the process running the checks {how} before they "
                                   "finished (did the plugin call os._exit, raise a signal or kill a process?)"))
    if report.failed:
        raise ConformanceError(str(report))
    return report


def _middle(write: int, body: Callable[[], Any]) -> int:
    from ..sandbox.reaper import become_subreaper, die_with_parent, reap_all

    global _STREAM
    die_with_parent()
    become_subreaper()
    pid = os.fork()
    if pid == 0:  # the checks
        die_with_parent()
        _STREAM = write
        try:
            body()
        except ConformanceError:
            pass
        except BaseException as exc:  # noqa: BLE001 -- reported to the parent as a failed check
            _write_all(write, (json.dumps(["runs to the end", False, f"{type(exc).__name__}: {exc}"]) + "\n").encode())
        _write_all(write, (json.dumps([_DONE, True, ""]) + "\n").encode())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    reap_all()
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# ---------------------------------------------------------------------------------------------- shared


def _check_plugin_class(cls: type, base: type, params: dict[str, Any]) -> Any:
    _require(isinstance(cls, type) and issubclass(cls, base), f"{cls!r} is not a subclass of harbench.{base.__name__}")
    _require(not inspect.isabstract(cls), f"{cls.__name__} leaves abstract methods unimplemented: "
             f"{sorted(getattr(cls, '__abstractmethods__', ()))}")
    name = getattr(cls, "name", None)
    _require(isinstance(name, str) and name and name.strip() == name and " " not in name,
             f"`name` must be a non-empty string without spaces, got {name!r}")
    _require(isinstance(cls.description, str) and cls.description.strip() != "", "`description` is empty: "
             "`harbench list` shows it to users")
    return None


def _check_parameters(cls: type, params: dict[str, Any]) -> str:
    declared = cls.parameters
    _require(isinstance(declared, dict), "`parameters` must be a dict of name -> harbench.Param")
    for pname, p in declared.items():
        _require(isinstance(p, Param), f"parameter {pname!r} is a {type(p).__name__}, not a harbench.Param")
        _require(bool(p.help), f"parameter {pname!r} has no help text (`harbench list` shows it)")
    cls()  # the defaults validate against their own declarations
    cls(**params)
    try:
        cls(**{_UNKNOWN: 1})
    except ParamError:
        pass
    else:
        raise AssertionError("an unknown parameter was accepted; declare parameters with harbench.Param and call "
                             "super().__init__(**params)")
    return f"{len(declared)} parameter(s)"


def _builtin_registry(kind: str | None = None, cls: type | None = None):
    """Built-ins only (third-party plugins pinned out), plus ``cls`` registered as a test plugin."""
    registry = Registry()
    registry.load_entry_points(allowed=[])
    if cls is not None:
        existing = registry.items[kind].get(cls.name)
        if existing is not None:
            _require(existing.cls is cls, f"{kind} name {cls.name!r} is taken by the built-in {existing.cls.__name__}")
        else:
            module = types.ModuleType(f"conformance_{kind}")
            setattr(module, f"harbench_register_{'hardware' if kind == 'hardware' else kind + 's'}",
                    hookimpl(lambda register: register(cls)))
            registry.add_plugin(module, "harbench-conformance", "0")
    return registry


def _short_run(registry, *, dataset: dict, methods: list[dict], hardware: dict, metrics: list[str] | None = None,
               target_users: int = 1) -> str:
    """Run one tiny suite through the real runner and store; every job must end ``ok``."""
    doc = {"name": "conformance", "datasets": [dataset], "methods": methods, "hardware": [hardware], "seeds": [0],
           "target_users": target_users, "generic": {"epochs": 1, "batch_size": 32}}
    if metrics is not None:
        doc["metrics"] = metrics
    with tempfile.TemporaryDirectory(prefix="harbench-conformance-") as folder:
        suite = parse_suite(json.dumps(doc), "conformance.yaml", registry)
        summary = Runner(suite, registry, Store(folder)).run()
        rows = Store(folder).job_rows(summary.run_id)
    bad = [f"{r['method']} on {r['user']}: {r['status']} {r.get('error') or ''}".strip()
           for r in rows if r["status"] != "ok"]
    _require(not bad, "jobs did not succeed: " + "; ".join(bad))
    return f"{len(rows)} job(s) ok through the runner"


def _tiny_splits(seed: int, targets: int = 1) -> Splits:
    dataset = SyntheticDrift(**TINY_DATA)
    return dataset.load(seed, list(dataset.describe().users[:targets]))


def _fingerprint(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))



@contextlib.contextmanager
def _time_limit(seconds: float | None, what: str):
    """Fail the check when ``what`` runs longer than ``seconds`` (main thread only; elsewhere unlimited)."""
    if not seconds or not math.isfinite(seconds) or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise ConformanceError(f"{what} exceeded the conformance time limit of {seconds:g} s on tiny data")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
