"""``isolation: strict``: a job's processes cannot read the dataset's files, the results folder or what else the
host names, through Linux Landlock (``ctypes``; ABI 1+, Linux >= 5.13 with ``landlock`` among the active LSMs).

Landlock allows by rule and denies the rest, so the ruleset handles only *reading* (files and directories) and
allows it beneath every path that is not on the way to a protected folder: at each ancestor of a protected folder
every other entry is allowed, the protected folder itself is not. Writing, executing and everything else stay as
they were. A process under Landlock cannot ptrace (or read ``/proc/<pid>/mem`` of) a process outside its domain,
so the host's memory stays out of reach too. The zygote restricts itself once; every job process inherits it.

Where the kernel has no Landlock, ``strict`` fails the jobs with that reason instead of running unprotected.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # x86-64 and aarch64 share these numbers
_VERSION = 1  # LANDLOCK_CREATE_RULESET_VERSION
_PATH_BENEATH = 1
READ_FILE, READ_DIR = 1 << 2, 1 << 3
_PR_SET_NO_NEW_PRIVS = 38


class IsolationUnavailable(RuntimeError):
    pass


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none (not Linux, too old, or not enabled)."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def allowed_paths(protected: list[Path]) -> list[Path]:
    """Every path whose subtree holds no protected folder, at the ancestors of the protected folders."""
    protected = [p.resolve() for p in protected]
    on_way = {a for p in protected for a in [p, *p.parents]}
    out: list[Path] = []
    for ancestor in sorted({a for p in protected for a in p.parents}):
        if ancestor in protected:
            continue
        try:
            entries = list(ancestor.iterdir())
        except OSError:
            continue
        for entry in entries:
            target = entry.resolve() if entry.is_symlink() else entry
            if entry in on_way or any(target == p or p in target.parents or target in p.parents for p in protected):
                continue
            out.append(target)
    return out


def restrict_reading(protected: list[Path]) -> None:
    """Deny this process (and its future children) reading beneath ``protected``; raise when impossible."""
    if not landlock_abi():
        raise IsolationUnavailable("isolation: strict needs Linux Landlock (Linux >= 5.13 with 'landlock' in "
                                   "/sys/kernel/security/lsm); this kernel offers none")
    libc = _libc()
    handled = ctypes.c_uint64(READ_FILE | READ_DIR)
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(handled), ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        raise IsolationUnavailable(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    try:
        for path in allowed_paths(protected):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rights = READ_FILE | READ_DIR if os.path.isdir(path) else READ_FILE
                rule = _PathBeneath(rights, fd)
                libc.syscall(_ADD_RULE, ruleset, _PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise IsolationUnavailable(f"prctl(NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise IsolationUnavailable(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
