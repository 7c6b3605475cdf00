"""One job: adapt on the target's device view in a job process (or reuse the user's adapted model for an estimated
target), evaluate it there on the test inputs, measure inference there, and compute the metrics here from the
returned logits and the labels that never left this process (see :mod:`harbench.sandbox`)."""

from __future__ import annotations

import time
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from ..api import (
    AdaptFacts,
    DatasetInfo,
    InferenceCost,
    JobOutputs,
    Method,
    MethodContext,
    MethodState,
    PhaseCost,
    Splits,
    UserData,
)
from ..hashing import content_hash
from ..plugins import Registry
from ..records import JobRecord, JobSpec
from ..results.store import finite_or_none
from ..sandbox import (
    AdaptRequest,
    LoadRequest,
    ModelSpec,
    Sandbox,
    check_inference_cost,
    check_metric,
    check_phase_cost,
    weights_bytes,
)
from ..suite import Suite
from .cache import WeightCache
from .evaluate import SharedAdapt, evaluation, failed, names
from .limits import time_limit
from .stream import label_free_stream
from .targets import Targets, info_dict


def memory_fit(need_mb: float | None, usable_mb: float | None) -> str | None:
    """"needs N MB, device has M MB" when the adapt phase's peak exceeds the device's usable memory, else None."""
    if need_mb is None or usable_mb is None or need_mb <= usable_mb:
        return None
    return f"needs {need_mb:.1f} MB, device has {usable_mb:.0f} MB"


def _phase_cost(d: dict) -> PhaseCost:
    return PhaseCost(d["seconds"], d["joules"], d["joules_net"], str(d["energy_method"]), dict(d.get("extra") or {}),
                     d.get("peak_mb"))


def _inference_cost(d: dict) -> InferenceCost:
    return InferenceCost(list(d["latency_s"]), d["joules_per_window"], d["joules_net_per_window"],
                         str(d["energy_method"]), dict(d.get("extra") or {}), d.get("peak_mb"))


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
            shared.close()
            rec = JobRecord(job, "failed", error="job: MemoryError: the job exhausted memory")
        except Exception as exc:
            shared.close()  # a failed job's process (busy: killed) is never reused by the user's other targets
            rec = failed(job, exc, stage="job")
        rec.seconds = time.perf_counter() - t0
        return rec

    def _body(self, job, method, state, generic, generic_acc, splits: Splits, seed: int, shared: SharedAdapt,
              counters) -> JobRecord:
        """Adapt on the target (or reuse the user's adapted model for an estimated target), evaluate, measure."""
        info = splits.info
        target = splits.targets[job.user]
        hw = self.targets.of(job)
        hw_info = self.targets.describe(hw)
        estimated = hw_info.mode == "estimated"
        adapt = self._device_view(target.adapt, method, seed, job.user, info)
        example = adapt.x[:1]
        shared.switch(job.user)
        session = shared.session if estimated else None  # a measured target always adapts itself
        if session is None and estimated:
            session = self._cached_adapt(job, shared, generic, info, counters, method.backbone)
        if session is not None:  # an estimate models the adapt phase that ran (or was cached) from its facts
            adapt_cost = _phase_cost(session.call(("replay", job, example), "adapted").header["cost"])
            counters.adapt_reused += shared.adapted
        else:
            user = UserData(job.user, info.context(target.adapt_context), adapt)
            ctx = MethodContext(seed=seed, info=info, hardware=hw_info, radio_joules_per_byte=hw.radio_joules_per_byte())
            request = AdaptRequest(
                method=job.method, params=dict(method.params), generic=self._spec(generic, method.backbone, info),
                state=state, user=user, ctx=ctx, torch_seed=int(content_hash([seed, job.user], 8), 16),
                threads=self.threads)
            counters.adapted += 1
            t_adapt = time.perf_counter()
            try:
                shared.close()
                shared.user = job.user
                session = shared.session = self.sandbox.open(request, "adapt")
                adapt_cost = self._adapt(session, job, hw, example)
            finally:  # part of the job's own time already: kept apart from compute_s, for the growth benchmark
                counters.timings["adapt"] = counters.timings.get("adapt", 0.0) + time.perf_counter() - t_adapt
            verdict = session.call(("verdict",), "verdict").header
            if verdict.get("generic"):
                raise RuntimeError(f"method {job.method!r} modified the shared generic model "
                                   f"({names(verdict['generic'])}); adapt must work on a copy")
            if verdict.get("state"):
                raise RuntimeError(f"method {job.method!r} modified its prepared state ({names(verdict['state'])}); "
                                   "adapt must treat it as read-only")
            shared.adapted = True
        check_phase_cost(job.hardware, "adapt", adapt_cost)
        if shared.evaluation is None:
            msg = session.call(("evaluate", target.test_seen.x, target.test_unseen.x, example), "evaluated")
            shared.evaluation = evaluation(msg, job.method, info.num_classes, len(target.test_seen),
                                           len(target.test_unseen))
            if shared.adapted and shared.evaluation.weights is not None:
                self._put_adapt(shared.key, shared.evaluation)
        ev = shared.evaluation
        facts_in = AdaptFacts(**ev.facts)
        fits = memory_fit(adapt_cost.peak_mb, hw_info.usable_memory_mb)
        if fits and self.suite.model.memory_check == "skip":
            return JobRecord(job, "skipped", mode=hw_info.mode, error=f"does not fit on {hw_info.name}: {fits}",
                             facts={"memory_check": fits, "adapt_peak_mb": adapt_cost.peak_mb})
        self._refuse_beside_survivors(hw)
        inference = _inference_cost(session.call(("inference", job, target.test_seen.x[:1]), "inference")
                                    .header["cost"])
        check_inference_cost(job.hardware, inference)
        outputs = JobOutputs(
            info=info,
            y_seen=target.test_seen.y, pred_seen=ev.seen[0],
            y_unseen=target.test_unseen.y if len(target.test_unseen) else torch.zeros(0, dtype=torch.long),
            pred_unseen=ev.unseen[0],
            generic_acc_seen=generic_acc, adapt=adapt_cost, facts=facts_in, inference=inference,
            model_stats=ev.stats, prob_seen=ev.seen[1], prob_unseen=ev.unseen[1],
        )
        metrics = {}
        for name, metric in self.metrics.items():
            value = metric.compute(outputs)
            check_metric(name, getattr(metric, "unit", ""), value)
            metrics[name] = finite_or_none(value)
        facts = dict(facts_in.extra)
        facts["_samples"] = {"latency_s": outputs.inference.latency_s}
        facts["_provenance"] = {"hardware": info_dict(hw, self.targets.measured_info(hw)),
                                "energy_method": adapt_cost.energy_method,
                                "method_version": self.registry.get("method", job.method).version,
                                "adapt_extra": adapt_cost.extra, "inference_extra": outputs.inference.extra}
        if fits:  # memory_check: warn
            facts["memory_check"] = f"does not fit on {hw_info.name}: {fits}"
        facts.update({"optimizer_steps": facts_in.optimizer_steps, "forward_samples": facts_in.forward_samples,
                      "backward_samples": facts_in.backward_samples})
        return JobRecord(job, "ok", mode=hw_info.mode, metrics=metrics, facts=facts)

    def _adapt(self, session, job: JobSpec, hw, example) -> PhaseCost:
        """The adapt phase's cost: a host-measuring target meters the job's process from here, around its compute
        only ("go" to "returned"); any other target runs (or models) it beside the method."""
        if not hw.measures_host:
            return _phase_cost(session.call(("go-target", job, example), "adapted").header["cost"])
        self._refuse_beside_survivors(hw)
        memory: dict = {}

        def go():
            memory.update(session.call(("go",), "returned").header.get("memory") or {})
            return None

        _, cost = hw.run_adapt(go)
        if cost.peak_mb is None and memory:  # the job process's own peak
            cost.peak_mb = memory["peak_mb"]
            cost.extra["memory"] = memory
        return cost

    def _refuse_beside_survivors(self, hw) -> None:
        """A host measurement never runs beside a process an earlier job left (the reaper should leave none)."""
        if hw.measures_host:
            left = self.sandbox.survivors()
            if left:
                raise RuntimeError(f"refusing to measure on {hw.name!r}: {len(left)} process(es) other than the "
                                   f"job's own are alive (pids {left[:5]}), started by this job's method or left by "
                                   "an earlier job")

    def _spec(self, generic, backbone: str, info: DatasetInfo) -> ModelSpec:
        return ModelSpec(backbone, info.channels, info.num_classes, self._weights(generic))

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

    def _cached_adapt(self, job: JobSpec, shared: SharedAdapt, generic, info: DatasetInfo, counters, backbone: str):
        """A job process holding the adapted model of an earlier run (the cache's weights, the generic
        architecture), or None when the cache has none this harness can rebuild."""
        cached = self.cache.get("adapt", shared.key)
        if cached is None:
            return None
        tensors, meta = cached
        ours = generic.state_dict()
        if tensors.keys() != ours.keys() or any(tensors[k].shape != ours[k].shape for k in ours):
            return None  # written by another version of the harness: adapt again
        try:
            AdaptFacts(**meta["facts"])
        except (TypeError, KeyError):
            return None
        request = LoadRequest(job.method, ModelSpec(backbone, info.channels, info.num_classes,
                                                    safetensors_save(dict(tensors))), dict(meta["facts"]), self.threads)
        shared.session = self.sandbox.open(request, "cached adapt")
        shared.adapted = False
        counters.adapt_cached += 1
        return shared.session

    def _put_adapt(self, key: str, ev) -> None:
        """Cached only when the adapted model has the generic model's architecture, which the cache rebuilds it
        from (a method that returns another architecture, e.g. a distilled student, re-adapts instead)."""
        if self.cache.has("adapt", key):
            return
        self.cache.put("adapt", key, ev.weights, {"facts": ev.facts})
