"""A test-only method that kills its own worker process the first time it adapts (marker file in $CRASH_MARKER)."""

import os

from harbench import AdaptResult, Method, hookimpl


class CrashOnce(Method):
    name = "crash-once"

    def adapt(self, generic, state, user, ctx):
        marker = os.environ["CRASH_MARKER"]
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker dies mid-job, as a lost Ray worker would
        return AdaptResult(generic)


@hookimpl
def harbench_register_methods(register):
    register(CrashOnce)
