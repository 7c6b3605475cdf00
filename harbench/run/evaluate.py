"""What a job checks and computes on an adapted model: finite weights and outputs of the right shape, the test
splits' predictions and probabilities (once per adapted model), model statistics, and a failed job's record."""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass

import torch

from ..api import AdaptResult, DatasetInfo
from ..models import count_params
from ..records import JobRecord, JobSpec
from ..training import flops_per_window
from .sandbox import AdaptFailed


@dataclass
class SharedAdapt:
    """A unit's adapt results and their evaluations by user, and the cache key of this job's adapt node."""

    results: dict[str, AdaptResult]
    evaluations: dict[str, tuple]
    key: str

    def evaluate(self, user: str, result: AdaptResult, target) -> tuple[tuple, tuple, dict]:
        """(predictions, class probabilities) of each test split and model statistics, computed once per adapted
        model however many targets report them."""
        done = self.evaluations.get(user)
        if done is not None and done[0] is result:
            return done[1]
        model, example = result.model, target.test_seen.x[:1]
        pred_seen = checked_predictions(model, target.test_seen.x, "seen")
        unseen = checked_predictions(model, target.test_unseen.x, "unseen")
        outputs = (pred_seen, unseen, model_stats(model, example))
        if self.results.get(user) is result:
            self.evaluations[user] = (result, outputs)
        return outputs


def checked_predictions(model: torch.nn.Module, x: torch.Tensor, split: str,
                        batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Class predictions and probabilities (softmax of the logits, (N, C)) on a test split; logits that are not
    finite fail the job (argmax of NaN is class 0, which would pass as a poor but real accuracy)."""
    if not len(x):
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, 0)
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])
    bad = int((~torch.isfinite(logits)).any(dim=1).sum())
    if bad:
        raise ValueError(f"the personalized model's outputs are not finite on {bad} of {len(x)} test windows "
                         f"({split} context)")
    return logits.argmax(dim=1), torch.softmax(logits.to(torch.float64), dim=1)


def check_model(model: torch.nn.Module, info: DatasetInfo, example: torch.Tensor, method: str) -> None:
    for name, p in model.state_dict().items():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise ValueError(f"method {method!r} returned a model with non-finite weights in {name!r}")
    with torch.no_grad():
        out = model.eval()(example)
    if tuple(out.shape) != (1, info.num_classes):
        raise ValueError(f"method {method!r} returned a model whose output shape is {tuple(out.shape)}, "
                         f"expected (1, {info.num_classes})")


def model_stats(model: torch.nn.Module, example: torch.Tensor) -> dict[str, float]:
    kb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1024
    try:
        flops = flops_per_window(model, example)
    except Exception:
        flops = math.nan
    return {"params": count_params(model), "model_kb": kb, "flops": flops}


def failed(job: JobSpec, exc: BaseException, stage: str) -> JobRecord:
    """A method's exception raised in the sandbox keeps its own type name and traceback."""
    if isinstance(exc, AdaptFailed):
        if exc.type_name == "MemoryError":
            return JobRecord(job, "failed", error=f"{stage}: MemoryError: the job exhausted memory",
                             traceback=exc.remote_traceback)
        return JobRecord(job, "failed", error=f"{stage}: {exc.type_name}: {exc}", traceback=exc.remote_traceback)
    return JobRecord(job, "failed", error=f"{stage}: {type(exc).__name__}: {exc}",
                     traceback="".join(traceback.format_exception(exc)))


def names(keys: list[str], most: int = 4) -> str:
    shown = ", ".join(keys[:most])
    return shown + (f" and {len(keys) - most} more" if len(keys) > most else "")
