"""One job: adapt on the target's device view (in the sandbox, or reuse the user's adapt for an estimated
target), check and evaluate the adapted model, measure inference, compute the metrics."""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import torch

from ..api import AdaptFacts, AdaptResult, DatasetInfo, JobOutputs, Method, MethodContext, MethodState, Splits, UserData
from ..hashing import content_hash
from ..plugins import Registry
from ..records import JobRecord, JobSpec
from ..results.store import finite_or_none
from ..suite import Suite
from .cache import WeightCache
from .evaluate import SharedAdapt, check_model, failed, names
from .limits import time_limit
from .sandbox import AdaptRequest, Sandbox, weights_bytes
from .stream import label_free_stream
from .targets import Targets, info_dict


def memory_fit(need_mb: float | None, usable_mb: float | None) -> str | None:
    """"needs N MB, device has M MB" when the adapt phase's peak exceeds the device's usable memory, else None."""
    if need_mb is None or usable_mb is None or need_mb <= usable_mb:
        return None
    return f"needs {need_mb:.1f} MB, device has {usable_mb:.0f} MB"


class JobNode:
    """The job's dependencies, explicit: nothing here reads the worker or the driver."""

    def __init__(self, suite: Suite, registry: Registry, cache: WeightCache, targets: Targets,
                 metrics: dict[str, Any], sandbox: Sandbox):
        self.suite = suite
        self.registry = registry
        self.cache = cache
        self.targets = targets
        self.metrics = metrics
        self.sandbox = sandbox
        self.threads = suite.model.threads
        self._generic_bytes: dict[int, tuple[Any, bytes]] = {}

    def run(self, job: JobSpec, method: Method, state: MethodState, generic, generic_acc, splits: Splits, seed: int,
            shared: SharedAdapt, counters) -> JobRecord:
        t0 = time.perf_counter()
        try:
            with time_limit(self.suite.model.timeout_s):
                rec = self._body(job, method, state, generic, generic_acc, splits, seed, shared, counters)
        except MemoryError:
            rec = JobRecord(job, "failed", error="job: MemoryError: the job exhausted memory")
        except Exception as exc:
            rec = failed(job, exc, stage="job")
        rec.seconds = time.perf_counter() - t0
        return rec

    def _body(self, job, method, state, generic, generic_acc, splits: Splits, seed: int, shared: SharedAdapt,
              counters) -> JobRecord:
        """Adapt on the target (or reuse the user's adapt result for an estimated target), evaluate, measure."""
        info = splits.info
        target = splits.targets[job.user]
        hw = self.targets.of(job)
        hw_info = self.targets.describe(hw)
        estimated = hw_info.mode == "estimated"
        adapt = self._device_view(target.adapt, method, seed, job.user, info)
        user = UserData(job.user, info.context(target.adapt_context), adapt)
        ctx = MethodContext(seed=seed, info=info, hardware=hw_info, radio_joules_per_byte=hw.radio_joules_per_byte())

        def shape_probe(result: AdaptResult) -> None:
            """One forward on the returned model, so a target that estimates from traced calls sees the input
            shape (the method itself ran in another process); a host-measured target does not pay for it."""
            if not hw.measures_host:
                with torch.no_grad():
                    result.model.eval()(adapt.x[:1])

        reused = None
        if estimated:  # adapt is deterministic per seed: an estimate models it from an earlier run's facts
            reused = shared.results.get(job.user) or self._cached_adapt(shared.key, generic, counters)
        if reused is not None:
            def replay() -> AdaptResult:
                shape_probe(reused)
                return reused

            result, adapt_cost = hw.run_adapt(replay)
            counters.adapt_reused += job.user in shared.results
        else:
            request = AdaptRequest(
                method=job.method, params=dict(method.params), backbone=method.backbone, channels=info.channels,
                classes=info.num_classes, generic=self._weights(generic), state=state, user=user, ctx=ctx,
                torch_seed=int(content_hash([seed, job.user], 8), 16), threads=self.threads)
            counters.adapted += 1
            t_adapt = time.perf_counter()
            try:
                result, adapt_cost, verdict = self.sandbox.adapt(request, hw.run_adapt, shape_probe,
                                                                 defer=hw.measures_host)
            finally:  # part of the job's own time already: kept apart from compute_s, for the growth benchmark
                counters.timings["adapt"] = counters.timings.get("adapt", 0.0) + time.perf_counter() - t_adapt
            if verdict.generic:
                raise RuntimeError(f"method {job.method!r} modified the shared generic model ({names(verdict.generic)}); "
                                   "adapt must work on a copy")
            if verdict.state:
                raise RuntimeError(f"method {job.method!r} modified its prepared state ({names(verdict.state)}); "
                                   "adapt must treat it as read-only")
        if not isinstance(result, AdaptResult):
            raise TypeError(f"method {job.method!r}: adapt() returned {type(result).__name__}, expected harbench.AdaptResult")
        shared.results.setdefault(job.user, result)
        model = result.model.eval()
        check_model(model, info, target.test_seen.x[:1], job.method)
        if reused is None:
            self._put_adapt(shared.key, result, generic)
        fits = memory_fit(adapt_cost.peak_mb, hw_info.usable_memory_mb)
        if fits and self.suite.model.memory_check == "skip":
            return JobRecord(job, "skipped", mode=hw_info.mode, error=f"does not fit on {hw_info.name}: {fits}",
                             facts={"memory_check": fits, "adapt_peak_mb": adapt_cost.peak_mb})
        (pred_seen, prob_seen), (pred_unseen, prob_unseen), model_stats = shared.evaluate(job.user, result, target)
        outputs = JobOutputs(
            info=info,
            y_seen=target.test_seen.y, pred_seen=pred_seen,
            y_unseen=target.test_unseen.y if len(target.test_unseen) else torch.zeros(0, dtype=torch.long),
            pred_unseen=pred_unseen,
            generic_acc_seen=generic_acc, adapt=adapt_cost, facts=result.facts,
            inference=hw.run_inference(model, target.test_seen.x[:1]),
            model_stats=model_stats, prob_seen=prob_seen, prob_unseen=prob_unseen,
        )
        metrics = {}
        for name, metric in self.metrics.items():
            metrics[name] = finite_or_none(metric.compute(outputs))
        facts = dict(result.facts.extra)
        facts["_samples"] = {"latency_s": outputs.inference.latency_s}
        facts["_provenance"] = {"hardware": info_dict(hw, self.targets.measured_info(hw)),
                                "energy_method": adapt_cost.energy_method,
                                "method_version": self.registry.get("method", job.method).version,
                                "adapt_extra": adapt_cost.extra, "inference_extra": outputs.inference.extra}
        if fits:  # memory_check: warn
            facts["memory_check"] = f"does not fit on {hw_info.name}: {fits}"
        facts.update({"optimizer_steps": result.facts.optimizer_steps, "forward_samples": result.facts.forward_samples,
                      "backward_samples": result.facts.backward_samples})
        return JobRecord(job, "ok", mode=hw_info.mode, metrics=metrics, facts=facts)

    def _weights(self, generic) -> bytes:
        """The generic model's weights as sent to the sandbox, serialised once per generic model."""
        cached = self._generic_bytes.get(id(generic))
        if cached is None or cached[0] is not generic:
            cached = self._generic_bytes[id(generic)] = (generic, weights_bytes(generic))
        return cached[1]

    def _device_view(self, adapt, method: Method, seed: int, user: str, info: DatasetInfo):
        """Labelled methods get the dataset's k windows per class; label-free ones the device's unlabelled stream."""
        if not method.label_free:
            return adapt
        return label_free_stream(adapt, seed, user, self.suite.model.label_free_windows,
                                 stride=int(info.extra.get("stride", info.window)))

    def _cached_adapt(self, key: str, generic, counters) -> AdaptResult | None:
        cached = self.cache.get("adapt", key)
        if cached is None:
            return None
        model = copy.deepcopy(generic)
        try:
            model.load_state_dict(cached[0], strict=True)
            facts = AdaptFacts(**cached[1]["facts"])
        except (RuntimeError, TypeError, KeyError):  # written by another version of the harness: adapt again
            return None
        counters.adapt_cached += 1
        return AdaptResult(model, facts)

    def _put_adapt(self, key: str, result: AdaptResult, generic) -> None:
        """Cached only when the adapted model has the generic model's architecture, which the cache rebuilds it
        from (a method that returns another architecture, e.g. a distilled student, re-adapts instead)."""
        if self.cache.has("adapt", key) or type(result.model) is not type(generic):
            return
        theirs, ours = result.model.state_dict(), generic.state_dict()
        if theirs.keys() != ours.keys() or any(theirs[k].shape != ours[k].shape for k in ours):
            return
        self.cache.put("adapt", key, theirs, {"facts": dataclasses.asdict(result.facts)})
