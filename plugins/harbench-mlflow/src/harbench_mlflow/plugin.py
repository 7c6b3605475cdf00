"""The entry point (group ``harbench``). The run hooks are implemented only while ``HARBENCH_MLFLOW`` is set: an
installed but unused plugin must not change a run — a plugin implementing ``harbench_job_finished`` makes harbench
skip its warm-run shortcut (the plan memo would not call the hook), and logging would write ``mlruns/`` into
whatever folder a run starts in. ``HARBENCH_MLFLOW`` is part of the plan memo's key (every ``HARBENCH_*`` setting
is), so turning it on or off never serves a memo made the other way."""

from __future__ import annotations

import os

from harbench import hookimpl

from .logger import ENV, EXPERIMENT_ENV, MlflowLogger

logger = MlflowLogger(os.environ[ENV], os.environ.get(EXPERIMENT_ENV) or "harbench") if os.environ.get(ENV) else None

if logger is not None:

    @hookimpl
    def harbench_job_finished(record):
        logger.job_finished(record)

    @hookimpl
    def harbench_run_finished(run):
        logger.run_finished(run)
