"""What the host computes from an adapted model's evaluation: the logits' checks (finite, the right shape, the same
in another batch order and size), predictions and probabilities, and a failed job's record. The model itself never
reaches the host (see :mod:`harbench.sandbox`)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import torch

from ..records import JobRecord, JobSpec
from ..sandbox import AdaptFailed, Message, Session, check_model_stats, transductive


@dataclass
class Evaluation:
    seen: tuple[torch.Tensor, torch.Tensor]  # predictions, class probabilities (N, C)
    unseen: tuple[torch.Tensor, torch.Tensor]
    stats: dict[str, float]
    facts: dict
    weights: dict[str, torch.Tensor] | None  # the adapted weights, when the cache can rebuild the model


@dataclass
class SharedAdapt:
    """A unit's current user: the job process holding that user's adapted model, and its evaluation, shared by
    every target of the user; the cache key of this job's adapt node."""

    key: str = ""
    user: str | None = None
    session: Session | None = None
    adapted: bool = False  # adapted in this run (not loaded from the cache)
    evaluation: Evaluation | None = None
    extra: dict = field(default_factory=dict)

    def switch(self, user: str) -> None:
        if user != self.user:
            self.close()
            self.user = user

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        self.session, self.evaluation, self.adapted, self.user = None, None, False, None


def evaluation(msg: Message, method: str, classes: int, n_seen: int, n_unseen: int) -> Evaluation:
    """Check the job process's logits and derive predictions and probabilities; any doubt fails the job."""
    shape = tuple(msg.header.get("shape") or ())
    if shape != (1, classes):
        raise ValueError(f"method {method!r} returned a model whose output shape is {shape}, expected (1, {classes})")
    t = msg.tensors
    seen, unseen, again = t.get("seen"), t.get("unseen"), t.get("again")
    for name, logits, n in (("seen", seen, n_seen), ("unseen", unseen, n_unseen)):
        if logits is None or (n and tuple(logits.shape) != (n, classes)):
            raise ValueError(f"method {method!r}: the model's logits on the {name} test windows have shape "
                             f"{None if logits is None else tuple(logits.shape)}, expected ({n}, {classes})")
    assert seen is not None and unseen is not None
    out = [checked_predictions(seen, n_seen, "seen"), checked_predictions(unseen, n_unseen, "unseen")]
    first = torch.cat([x for x, n in ((seen, n_seen), (unseen, n_unseen)) if n] or [torch.zeros(0, classes)])
    why = transductive(first, again if again is not None else torch.zeros(0))
    if why:
        raise ValueError(f"method {method!r}: the model's predictions depend on the batch they are evaluated in "
                         f"({why}); a personalized model must predict each window on its own (e.g. BatchNorm in "
                         "eval mode, no statistics of the test batch)")
    stats = msg.header.get("stats") or {}
    check_model_stats(method, stats)
    weights = {k[2:]: v for k, v in t.items() if k.startswith("w/")} if msg.header.get("cacheable") else None
    return Evaluation(out[0], out[1], stats, msg.header.get("facts") or {}, weights)


def checked_predictions(logits: torch.Tensor, n: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Class predictions and probabilities (softmax of the logits, (N, C)) on a test split; logits that are not
    finite fail the job (argmax of NaN is class 0, which would pass as a poor but real accuracy)."""
    if not n:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, 0)
    bad = int((~torch.isfinite(logits)).any(dim=1).sum())
    if bad:
        raise ValueError(f"the personalized model's outputs are not finite on {bad} of {n} test windows "
                         f"({split} context)")
    return logits.argmax(dim=1), torch.softmax(logits.to(torch.float64), dim=1)


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
