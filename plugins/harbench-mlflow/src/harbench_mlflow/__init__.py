"""harbench-mlflow: each harbench run logged to MLflow through the run hooks (see :mod:`harbench_mlflow.plugin`)."""

from .logger import ENV, EXPERIMENT_ENV, MlflowLogger

__all__ = ["ENV", "EXPERIMENT_ENV", "MlflowLogger"]
