"""The core metrics. Each is a function of a finished job's outputs; column names are part of the export format."""

from __future__ import annotations

from typing import Callable

import torch

from .. import JobOutputs, Metric, accuracy, hookimpl, macro_f1
from ..results import lifetime
from ..stats.samples import Stats


def _ms(q: float) -> Callable[[JobOutputs], float]:
    return lambda o: Stats(o.inference.latency_s).percentile(q) * 1000.0


def _mj(value: float | None, scale: float = 1000.0) -> float | None:
    return None if value is None else value * scale


ECE_BINS = 15  # equal-width confidence bins (Guo et al., ICML 2017, use 15)


def _probs(y: torch.Tensor, prob: torch.Tensor | None) -> torch.Tensor | None:
    """The probabilities as float64, or None when the job has none (an older caller) or the split is empty."""
    if prob is None or len(y) == 0:
        return None
    prob = prob.detach().to(torch.float64)
    if prob.ndim != 2 or prob.shape[0] != len(y):
        raise ValueError(f"class probabilities of shape {tuple(prob.shape)} do not match {len(y)} labels")
    return prob


def nll(y: torch.Tensor, prob: torch.Tensor | None) -> float | None:
    """Mean of −log p(true class), in nats."""
    p = _probs(y, prob)
    if p is None:
        return None
    true = p.gather(1, y.long().view(-1, 1)).squeeze(1).clamp_min(torch.finfo(torch.float64).tiny)
    return float(-true.log().mean())


def ece(y: torch.Tensor, prob: torch.Tensor | None, bins: int = ECE_BINS) -> float | None:
    """Expected calibration error: Σ_b |B_b|/n · |accuracy(B_b) − mean confidence(B_b)| over equal-width bins
    (i/bins, (i+1)/bins] of the top-class probability; the prediction is its argmax."""
    p = _probs(y, prob)
    if p is None:
        return None
    confidence, pred = p.max(dim=1)
    correct = (pred == y.long()).to(torch.float64)
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=torch.float64)[1:-1]
    index = torch.bucketize(confidence, edges, right=False)  # edges[i-1] < c <= edges[i]
    n = float(len(y))
    total = 0.0
    for b in index.unique():
        members = index == b
        total += float(members.sum()) / n * abs(float(correct[members].mean() - confidence[members].mean()))
    return total


def brier(y: torch.Tensor, prob: torch.Tensor | None) -> float | None:
    """Multi-class Brier score (Brier 1950): mean over windows of Σ_c (p_c − [y = c])²."""
    p = _probs(y, prob)
    if p is None:
        return None
    onehot = torch.nn.functional.one_hot(y.long(), p.shape[1]).to(torch.float64)
    return float(((p - onehot) ** 2).sum(dim=1).mean())


def stride_s(o: JobOutputs) -> float:
    """Seconds between consecutive windows: the dataset's ``extra["stride"]`` (samples) over its rate; a dataset
    that declares no stride is taken to classify back-to-back windows (stride = window)."""
    return float(o.info.extra.get("stride") or o.info.window) / o.info.rate_hz


def _infer_mw(o: JobOutputs) -> float | None:
    return lifetime.infer_mw(_mj(o.inference.joules_per_window), 1.0 / stride_s(o))


def _real_time_factor(o: JobOutputs) -> float | None:
    return lifetime.real_time_factor(Stats(o.inference.latency_s).percentile(50) if o.inference.latency_s else None,
                                     stride_s(o))


# name: (unit, higher is better, description, function); "fraction": stored in [0, 1], reported in points
CORE: dict[str, tuple[str, bool | None, str, Callable[[JobOutputs], float | str | None]]] = {
    "acc_seen": ("fraction", True, "accuracy on the user's held-out windows of the adapt context",
                 lambda o: accuracy(o.y_seen, o.pred_seen)),
    "acc_unseen": ("fraction", True, "accuracy on the user's other contexts (never seen by the method)",
                   lambda o: accuracy(o.y_unseen, o.pred_unseen)),
    "f1_seen": ("fraction", True, "macro-F1 on the adapt context's test windows",
                lambda o: macro_f1(o.y_seen, o.pred_seen, o.info.num_classes)),
    "f1_unseen": ("fraction", True, "macro-F1 on the unseen contexts",
                  lambda o: macro_f1(o.y_unseen, o.pred_unseen, o.info.num_classes)),
    "energy_method": ("", None, "how energy was obtained (rapl, codecarbon-estimate, ina3221, roofline-estimate, ...)",
                      lambda o: o.adapt.energy_method),
    "gain_seen": ("fraction", True, "acc_seen minus the generic model's acc_seen on the same user",
                  lambda o: None if o.generic_acc_seen is None else accuracy(o.y_seen, o.pred_seen) - o.generic_acc_seen),
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
    "nll_seen": ("nats", False, "mean negative log-likelihood of the true class on the adapt context's test windows "
                 "(probabilities clamped at the smallest positive double)", lambda o: nll(o.y_seen, o.prob_seen)),
    "nll_unseen": ("nats", False, "mean negative log-likelihood of the true class on the unseen contexts",
                   lambda o: nll(o.y_unseen, o.prob_unseen)),
    "ece_seen": ("fraction", False, f"expected calibration error on the adapt context's test windows: {ECE_BINS} "
                 "equal-width bins of the top-class confidence, (i/15, (i+1)/15], weighted by their share of windows",
                 lambda o: ece(o.y_seen, o.prob_seen)),
    "ece_unseen": ("fraction", False, f"expected calibration error on the unseen contexts ({ECE_BINS} equal-width "
                   "confidence bins)", lambda o: ece(o.y_unseen, o.prob_unseen)),
    "brier_seen": ("", False, "multi-class Brier score on the adapt context's test windows: mean over windows of "
                   "the squared distance between the probabilities and the one-hot label (0 best, 2 worst)",
                   lambda o: brier(o.y_seen, o.prob_seen)),
    "brier_unseen": ("", False, "multi-class Brier score on the unseen contexts (0 best, 2 worst)",
                     lambda o: brier(o.y_unseen, o.prob_unseen)),
    "adapt_peak_mb": ("MB", False, "peak memory of the adapt phase above the process's own before it (measured: RSS "
                      "high-water mark of the adapt process; estimated: weights + batch + saved activations + "
                      "gradients + optimizer state)", lambda o: o.adapt.peak_mb),
    "infer_peak_mb": ("MB", False, "memory of one batch-1 inference: weights + input + peak live activations",
                      lambda o: o.inference.peak_mb),
    "infer_mw": ("mW", False, "average inference power while monitoring continuously: infer_mj x windows per second "
                 "(rate_hz / the dataset's stride)", _infer_mw),
    "real_time_factor": ("ratio", False, "median batch-1 latency / the stride interval (> 1: the device cannot keep "
                         "up with the windows)", _real_time_factor),
    "adapt_share_24h": ("ratio", False, "adapt_j / (adapt_j + 24 h of monitoring at infer_mw), in [0, 1]",
                        lambda o: lifetime.adapt_share(o.adapt.joules, _infer_mw(o))),
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
