"""The cloud-side steps of SMLDist, each a function over networks and population windows.

Teacher outputs (logits and stage anchors) are computed once, in eval mode, for every population window and
looked up during distillation instead of re-running the teacher on every batch: the windows handed to ``fit``
carry their own index in place of the label (:func:`indexed`), and the loss reads labels and teacher outputs
from :class:`TeacherTargets` with it. This halves the cost of distillation on a 2-core CPU and changes nothing
else, since the teacher is frozen and the data are not augmented.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from harbench import FitReport, Windows, accuracy, cross_entropy, fit, macro_f1, make_optimizer, predict

from .heads import HEAD_MODES
from .losses import hinton_loss, smldist_logits_loss, stage_loss
from .networks import NUM_ANCHORS, SMLNet, StageAdapters

# Tie-break order of the head search: the fused head is what every network is trained with, so a tie keeps it;
# then memory (the code's default eval mode), then intuition.
HEAD_PREFERENCE = ("fused", "memory", "intuition")


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters of the cloud side (Adam everywhere instead of the code's Ranger + plateau LR)."""

    teacher_epochs: int = 12
    stage_epochs: int = 3
    logits_epochs: int = 12
    lr: float = 1e-3
    stage_lr: float = 1e-3
    batch_size: int = 32
    lambda_f: float = 1.0
    attention: str = "teacher_spectrum"
    logits_form: str = "paper"
    hardness: float = 1.0
    ratio: float = 1.0
    temperature: float = 4.0


@dataclass
class TeacherTargets:
    """The frozen teacher's outputs for windows 0..N-1 of :func:`indexed` windows, plus their true labels."""

    labels: torch.Tensor  # (N,)
    logits: torch.Tensor  # (N, classes)
    anchors: list[torch.Tensor] = field(default_factory=list)  # NUM_ANCHORS tensors (N, C_s, T_s), or empty


@dataclass(frozen=True)
class HeadScore:
    accuracy: float
    macro_f1: float


def indexed(windows: Windows, offset: int = 0) -> Windows:
    """The same windows with ``y`` replaced by their row in a :class:`TeacherTargets` table."""
    return dataclasses.replace(windows, y=torch.arange(offset, offset + len(windows)))


@torch.no_grad()
def teacher_targets(teacher: SMLNet, windows: Windows, with_anchors: bool, batch_size: int = 256) -> TeacherTargets:
    teacher.eval()
    logits, anchors = [], []
    for i in range(0, len(windows), batch_size):
        x = windows.x[i : i + batch_size]
        outs = teacher.stage_outputs(x)
        logits.append(teacher.head(outs[-1].mean(dim=-1)))
        if with_anchors:
            anchors.append(outs)
    stacked = [torch.cat([a[s] for a in anchors]) for s in range(NUM_ANCHORS)] if with_anchors else []
    return TeacherTargets(labels=windows.y.clone(), logits=torch.cat(logits), anchors=stacked)


def train_supervised(model: SMLNet, train: Windows, val: Windows, recipe: Recipe, epochs: int, generator) -> FitReport:
    """Cross-entropy training keeping the best validation-accuracy epoch (the teacher and the scratch student)."""
    opt = make_optimizer(model.parameters(), "adam", recipe.lr)
    return fit(model, train, epochs=epochs, optimizer=opt, batch_size=recipe.batch_size, generator=generator,
               loss_fn=cross_entropy, val=val, val_metric="accuracy", select_initial=False)


class _StageProbe(nn.Module):
    """The student truncated at one anchor, followed by that anchor's adapter: what stage distillation trains."""

    def __init__(self, student: SMLNet, adapters: StageAdapters, index: int):
        super().__init__()
        self.student, self.adapters, self.index = student, adapters, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapters(self.student.anchor(x, self.index), self.index)


def distil_stages(
    student: SMLNet, teacher_channels: list[int], targets: TeacherTargets, train: Windows, val: Windows,
    recipe: Recipe, generator,
) -> list[float]:
    """Stage distillation, anchor by anchor in order; returns each anchor's best validation stage loss.

    ``train`` and ``val`` are :func:`indexed` windows. As in the code, Adam sees every student parameter, so
    earlier stages keep adjusting while a later one is matched; the adapters are discarded afterwards.
    """
    adapters = StageAdapters(student.anchor_channels, teacher_channels)
    best = []
    for s in range(NUM_ANCHORS):
        probe = _StageProbe(student, adapters, s)

        def loss_fn(model: nn.Module, x: torch.Tensor, rows: torch.Tensor, s: int = s) -> torch.Tensor:
            return stage_loss(model(x), targets.anchors[s][rows], recipe.lambda_f, recipe.attention)

        params = list(student.parameters()) + list(adapters.maps[s].parameters())
        opt = make_optimizer(params, "adam", recipe.stage_lr)
        report = fit(probe, train, epochs=recipe.stage_epochs, optimizer=opt, batch_size=recipe.batch_size,
                     generator=generator, loss_fn=loss_fn, val=val, val_metric="loss", select_initial=False)
        best.append(float(report.best_val))
    student.eval()
    return best


def copy_memory(student: SMLNet, teacher: SMLNet) -> None:
    """Memory distillation: the teacher's whole head (memory, intuition, mixing weights) becomes the student's."""
    student.head.load_state_dict(teacher.head.state_dict())


def distil_logits(
    student: SMLNet, targets: TeacherTargets, train: Windows, val: Windows, recipe: Recipe, epochs: int,
    generator, *, kind: str, conditional: bool = True,
) -> FitReport:
    """Logits distillation of the whole student; ``kind`` is ``smldist`` (conditional rule) or ``hinton``.

    ``train`` is :func:`indexed`; ``val`` keeps its true labels and selects the best-accuracy epoch (the epoch-0
    student competes too, so a good stage+memory initialisation is never lost).
    """

    def loss_fn(model: nn.Module, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        z_s, z_t, y = model(x), targets.logits[rows], targets.labels[rows]
        if kind == "hinton":
            return hinton_loss(z_s, z_t, y, temperature=recipe.temperature, ratio=recipe.ratio)
        return smldist_logits_loss(z_s, z_t, y, form=recipe.logits_form, conditional=conditional,
                                   hardness=recipe.hardness, ratio=recipe.ratio, temperature=recipe.temperature)

    opt = make_optimizer(student.parameters(), "adam", recipe.lr)
    return fit(student, train, epochs=epochs, optimizer=opt, batch_size=recipe.batch_size, generator=generator,
               loss_fn=loss_fn, val=val, val_metric="accuracy", select_initial=True)


def evaluate_heads(model: SMLNet, val: Windows) -> dict[str, HeadScore]:
    """Validation accuracy and macro-F1 of the memory-only, intuition-only and fused heads (mode restored)."""
    original = model.head.mode
    scores = {}
    for mode in HEAD_MODES:
        model.head.set_mode(mode)
        pred = predict(model, val.x)
        scores[mode] = HeadScore(accuracy(val.y, pred), macro_f1(val.y, pred, model.config.classes))
    model.head.set_mode(original)
    return scores


def choose_head(scores: dict[str, HeadScore]) -> str:
    """The auto-search: best validation accuracy, then macro-F1, then the order fused > memory > intuition."""
    return max(scores, key=lambda m: (scores[m].accuracy, scores[m].macro_f1, -HEAD_PREFERENCE.index(m)))
