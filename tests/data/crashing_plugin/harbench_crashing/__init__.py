"""A test-only method that kills the worker process it runs for the first time it adapts (marker file in
$CRASH_MARKER), as a lost Ray worker would die."""

import os
import signal
import time

from harbench import AdaptResult, Method, hookimpl


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _host_pid() -> int:
    """adapt runs in a job process forked from the zygote, forked from the sandbox's root, forked from the host:
    the worker."""
    return _parent(_parent(os.getppid()))


class CrashOnce(Method):
    name = "crash-once"
    description = "kills its worker the first time"

    def adapt(self, generic, state, user, ctx):
        marker = os.environ["CRASH_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(_host_pid(), signal.SIGKILL)  # the worker dies mid-job; this process dies with it
            time.sleep(60)
        return AdaptResult(generic)


@hookimpl
def harbench_register_methods(register):
    register(CrashOnce)
