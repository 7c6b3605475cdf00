"""The plugin author's conformance suite: call it from your plugin's own tests.

    from harbench.testing import check_method
    def test_conformance():
        check_method(MyMethod, {"epochs": 1})

Each ``check_*`` runs named checks — interface, parameter schema, a short run on tiny synthetic data, determinism,
no use of forbidden data, serialisable state — and finally one tiny suite through the real runner, so a plugin that
passes here runs under ``harbench run``. It returns a :class:`ConformanceReport` and raises
:class:`ConformanceError` (an ``AssertionError``, so pytest shows every failed check) when any check fails.
"""


from .core import FAST_CPU, TINY_DATA, Check, ConformanceError, ConformanceReport
from .datasets import check_dataset
from .hardware import check_hardware
from .helpers import check_splits, measured_on, registry, synthetic_drift, tiny_generic, tiny_splits
from .methods import adapt_digest, check_method
from .metrics import check_metric, tiny_outputs

__all__ = ["FAST_CPU", "TINY_DATA", "Check", "ConformanceError", "ConformanceReport", "adapt_digest", "check_dataset",
           "check_hardware", "check_method", "check_metric", "check_splits", "measured_on", "registry", "synthetic_drift",
           "tiny_generic", "tiny_outputs", "tiny_splits"]
