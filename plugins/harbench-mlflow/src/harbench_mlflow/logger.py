"""One MLflow run per harbench run, one nested MLflow run per job.

* each job (``harbench_job_finished``): a child run named after the job, its identity as parameters (dataset,
  method, variant, hardware, user, seed, status, mode and every method/dataset parameter as ``method.NAME`` /
  ``dataset.NAME``), every numeric metric as a metric, a label metric (``energy_method``) and an error as tags;
* the run (``harbench_run_finished``): the parent gets the suite, the harbench run id and the job counts, and as
  artifacts the report (``report.md``: the decision view first, as ``harbench report`` prints it; ``report.json``:
  the numeric table) and the figures (``figures/*.png``, when matplotlib is installed).

It talks to MLflow through ``MlflowClient`` (no global active run), one ``log_batch`` per job. The tracking URI is
the one given (``HARBENCH_MLFLOW``), or MLflow's own setting (``MLFLOW_TRACKING_URI``) for ``1``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from typing import Any

import harbench

ENV = "HARBENCH_MLFLOW"  # a tracking URI ("file:/path/mlruns", "sqlite:///mlflow.db", "http://host:5000") or "1"
EXPERIMENT_ENV = "HARBENCH_MLFLOW_EXPERIMENT"  # the MLflow experiment (default: harbench)
MAX_PARAM = 6000  # MLflow's limit on a parameter value's length


class MlflowLogger:
    """The run hooks' state for one process: the parent MLflow run of the harbench run in progress."""

    def __init__(self, uri: str, experiment: str = "harbench"):
        self.uri = uri
        self.experiment = experiment
        self._client: Any = None
        self.parent: str | None = None  # the parent MLflow run id while a harbench run is logged
        self.jobs = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=None if self.uri in ("1", "true", "default") else self.uri)
        return self._client

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        return found.experiment_id if found is not None else self.client.create_experiment(self.experiment)

    def _start(self) -> str:
        run = self.client.create_run(self._experiment_id(), run_name="harbench run", tags={"harbench.version":
                                                                                          harbench.__version__})
        self.parent = run.info.run_id
        return self.parent

    # ---------------------------------------------------------------------------------------------- the hooks
    def job_finished(self, record: harbench.JobRecord) -> None:
        from mlflow.entities import Metric, Param, RunTag

        parent = self.parent or self._start()
        spec = record.spec
        child = self.client.create_run(self._experiment_id(), run_name=spec.label(),
                                       tags={"mlflow.parentRunId": parent, "harbench.job_key": spec.key})
        params = {"dataset": spec.dataset, "method": spec.method, "variant": spec.variant, "hardware": spec.hardware,
                  "user": spec.user, "seed": spec.seed, "status": record.status, "mode": record.mode,
                  **{f"method.{k}": v for k, v in spec.method_params.items()},
                  **{f"dataset.{k}": v for k, v in spec.dataset_params.items()}}
        now = int(time.time() * 1000)
        metrics, tags = [], [RunTag("harbench.status", record.status)]
        for name, value in record.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                metrics.append(Metric(name, float(value), now, 0))
            elif value is not None:
                tags.append(RunTag(f"harbench.metric.{name}", str(value)[:MAX_PARAM]))
        if record.error:
            tags.append(RunTag("harbench.error", record.error[:MAX_PARAM]))
        self.client.log_batch(child.info.run_id, metrics=metrics, tags=tags,
                              params=[Param(k, _text(v)) for k, v in params.items()])
        self.client.set_terminated(child.info.run_id, "FINISHED" if record.status != "failed" else "FAILED")
        self.jobs += 1

    def run_finished(self, run: harbench.RunSummary) -> None:
        from mlflow.entities import Metric, Param

        parent = self.parent or self._start()
        now = int(time.time() * 1000)
        self.client.log_batch(parent, params=[Param("suite", run.suite), Param("harbench_run_id", str(run.run_id))],
                              metrics=[Metric(k, float(v), now, 0) for k, v in (
                                  ("jobs", run.total), ("jobs_ok", run.ok), ("jobs_failed", run.failed),
                                  ("jobs_skipped", run.skipped), ("jobs_cached", run.cached), ("wall_s", run.wall_s))])
        self.client.set_tag(parent, "mlflow.runName", f"{run.suite} (harbench run {run.run_id})")
        if run.results is not None:
            self._artifacts(parent, run)
        self.client.set_terminated(parent, "FAILED" if run.failed or run.interrupted else "FINISHED")
        self.parent, self.jobs = None, 0

    def _artifacts(self, parent: str, run: harbench.RunSummary) -> None:
        """The report (decision view first) and the figures, as ``harbench report`` and ``plot`` give them."""
        with tempfile.TemporaryDirectory() as folder:
            report = os.path.join(folder, "report.md")
            with open(report, "w", encoding="utf-8") as f:
                f.write(harbench.report(run.run_id, run.results or "results", "github") + "\n")
            with open(os.path.join(folder, "report.json"), "w", encoding="utf-8") as f:
                f.write(harbench.report(run.run_id, run.results or "results", "json") + "\n")
            self.client.log_artifact(parent, report)
            self.client.log_artifact(parent, os.path.join(folder, "report.json"))
            try:
                figures = harbench.figures(run.run_id, run.results or "results", os.path.join(folder, "figures"))
            except (ImportError, ValueError) as exc:  # no matplotlib: the tables are still logged
                self.client.set_tag(parent, "harbench.figures", f"not drawn: {exc}")
                return
            if figures:
                self.client.log_artifacts(parent, os.path.join(folder, "figures"), "figures")


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MAX_PARAM]
