"""Every process a job starts ends with the job.

The zygote (and the root that forks zygotes) is a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``, through
``ctypes``): a process that a job forks, double-forks or ``setsid``\\ s is re-parented to it when its own parent
exits, never to init. After each job the zygote kills every child it has left (SIGKILL) and waits for them, over
and over until none is left, before it reports the job done; so the next job — and the next measurement — starts
with no process of an earlier job alive. Where ``prctl`` is missing (not Linux) orphans escape to init; the host's
:func:`survivors` check then still refuses to measure beside them.
"""

from __future__ import annotations

import os
import signal
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent() -> None:
    """Linux: deliver SIGKILL to this process when its parent dies, so no job outlives a killed run."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def become_subreaper() -> bool:
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _ppids() -> dict[int, int]:
    """pid -> parent pid of every process this user can see (``/proc/<pid>/stat``); empty without ``/proc``."""
    out: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] != b"Z":
            out[int(name)] = int(fields[1])
    return out


def descendants(pid: int, ppids: dict[int, int] | None = None) -> list[int]:
    """Living (non-zombie) descendants of ``pid``."""
    ppids = _ppids() if ppids is None else ppids
    children: dict[int, list[int]] = {}
    for child, parent in ppids.items():
        children.setdefault(parent, []).append(child)
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def reap_all(keep: frozenset[int] = frozenset(), timeout_s: float = 10.0) -> int:
    """Kill this process's descendants except ``keep`` and their own, wait for them; repeat until none is left
    (a process may fork while being killed). Returns how many were killed."""
    me, killed = os.getpid(), 0
    deadline = time.monotonic() + timeout_s
    while True:
        ppids = _ppids()
        kept = {p for k in keep for p in [k, *descendants(k, ppids)]}
        left = [p for p in descendants(me, ppids) if p not in kept]
        killed += kill(left)
        _wait_zombies(keep)
        if not left or time.monotonic() > deadline:
            return killed
        time.sleep(0.001)


def kill(pids: list[int]) -> int:
    """SIGKILL each of ``pids``; how many were still there to kill."""
    killed = 0
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def _wait_zombies(keep: frozenset[int]) -> None:
    """Collect every exited child (the re-parented orphans' exit statuses), never one in ``keep``."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in keep:  # cannot happen with WNOHANG on a living kept child; a dead one was the caller's to see
            return


def survivors(root: int, allowed: set[int]) -> list[int]:
    """Descendants of ``root`` (the sandbox's root process) other than ``allowed`` (its zygote and the current
    job's process): what a measurement must not run beside."""
    return [p for p in descendants(root) if p not in allowed]
