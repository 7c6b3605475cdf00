"""The core metrics. Each is a function of a finished job's outputs; column names are part of the export format."""

from __future__ import annotations

from typing import Callable

from .. import JobOutputs, Metric, accuracy, hookimpl, macro_f1
from ..stats import Stats


def _ms(q: float) -> Callable[[JobOutputs], float]:
    return lambda o: Stats(o.inference.latency_s).percentile(q) * 1000.0


def _mj(value: float | None, scale: float = 1000.0) -> float | None:
    return None if value is None else value * scale


# name: (unit, higher is better, description, function)
CORE: dict[str, tuple[str, bool | None, str, Callable[[JobOutputs], float | str | None]]] = {
    "acc_seen": ("", True, "accuracy on the user's held-out windows of the adapt context",
                 lambda o: accuracy(o.y_seen, o.pred_seen)),
    "acc_unseen": ("", True, "accuracy on the user's other contexts (never seen by the method)",
                   lambda o: accuracy(o.y_unseen, o.pred_unseen)),
    "f1_seen": ("", True, "macro-F1 on the adapt context's test windows",
                lambda o: macro_f1(o.y_seen, o.pred_seen, o.info.num_classes)),
    "f1_unseen": ("", True, "macro-F1 on the unseen contexts",
                  lambda o: macro_f1(o.y_unseen, o.pred_unseen, o.info.num_classes)),
    "gain_seen": ("", True, "acc_seen minus the generic model's acc_seen on the same user",
                  lambda o: None if o.generic_acc_seen is None else accuracy(o.y_seen, o.pred_seen) - o.generic_acc_seen),
    "energy_method": ("", None, "how energy was obtained (rapl, codecarbon-estimate, ina3221, roofline-estimate, ...)",
                      lambda o: o.adapt.energy_method),
    "adapt_s": ("s", False, "wall time of the adapt phase on the target", lambda o: o.adapt.seconds),
    "adapt_j": ("J", False, "energy of the adapt phase (gross)", lambda o: o.adapt.joules),
    "adapt_j_net": ("J", False, "energy of the adapt phase above idle power", lambda o: o.adapt.joules_net),
    "adapt_flops": ("FLOP", False, "FLOPs the adapt phase executed, when the method counts them",
                    lambda o: o.facts.flops),
    "latency_ms_p50": ("ms", False, "batch-1 inference latency, median", _ms(50)),
    "latency_ms_p90": ("ms", False, "batch-1 inference latency, 90th percentile", _ms(90)),
    "latency_ms_p99": ("ms", False, "batch-1 inference latency, 99th percentile", _ms(99)),
    "infer_mj": ("mJ", False, "inference energy per window (gross)", lambda o: _mj(o.inference.joules_per_window)),
    "infer_mj_net": ("mJ", False, "inference energy per window above idle power",
                     lambda o: _mj(o.inference.joules_net_per_window)),
    "params": ("", False, "parameters of the personalized model", lambda o: o.model_stats["params"]),
    "params_trained": ("", False, "parameters the adapt phase updated", lambda o: o.facts.params_trained),
    "model_kb": ("kB", False, "size of the personalized model's weights", lambda o: o.model_stats["model_kb"]),
    "flops": ("FLOP", False, "forward FLOPs per window (torch.utils.flop_counter)", lambda o: o.model_stats["flops"]),
}


def _metric_class(name: str) -> type[Metric]:
    unit, higher, description, fn = CORE[name]
    return type(
        f"Metric_{name}",
        (Metric,),
        {"name": name, "unit": unit, "higher_is_better": higher, "description": description,
         "compute": lambda self, out, _fn=fn: _fn(out), "__module__": __name__},  # cache keys hash this module
    )


METRICS = [_metric_class(n) for n in CORE]


@hookimpl
def harbench_register_metrics(register):
    for cls in METRICS:
        register(cls)
