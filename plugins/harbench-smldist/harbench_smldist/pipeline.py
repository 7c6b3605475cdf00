"""The cloud-side steps of SMLDist, each a function over networks and population windows.

Teacher outputs (logits and stage anchors) are computed once, in eval mode, for every population window and
looked up during distillation instead of re-running the teacher on every batch: the windows handed to ``fit``
carry their own index in place of the label (:func:`indexed`), and the loss reads labels and teacher outputs
from :class:`TeacherTargets` with it. This changes nothing else, since the teacher is frozen (eval mode, as in the
code) and the data are not augmented.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from harbench import FitReport, Windows, accuracy, cross_entropy, fit, macro_f1, make_optimizer, predict

from .heads import HEAD_MODES
from .losses import hinton_loss, smldist_logits_loss, stage_loss
from .networks import Network, StageAdapters

# Tie-break order of the head search: the fused head is what every network is trained with, so a tie keeps it;
# then memory (the code's default eval mode), then intuition.
HEAD_PREFERENCE = ("fused", "memory", "intuition")
LOGITS_INPUTS = ("code", "fused")


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters of the cloud side (Adam everywhere instead of the code's Ranger + plateau LR)."""

    teacher_epochs: int = 30
    stage_epochs: int = 3
    logits_epochs: int = 12
    lr: float = 1e-3
    stage_lr: float = 1e-3
    batch_size: int = 32
    lambda_f: float = 0.0
    attention: str = "teacher_spectrum"
    logits_form: str = "paper"
    logits_inputs: str = "code"
    hardness: float = 1.0
    ratio: float = 1.0
    temperature: float = 4.0


@dataclass
class TeacherTargets:
    """The frozen teacher's outputs for windows 0..N-1 of :func:`indexed` windows, plus their true labels.

    ``logits`` is what the logits losses compare with: the eval-mode memory-branch output (``logits_inputs='code'``)
    or the fused log-mixture (``'fused'``); ``deployed`` is the teacher's deployed (eval-mode) output.
    """

    labels: torch.Tensor  # (N,)
    logits: torch.Tensor  # (N, classes)
    deployed: torch.Tensor  # (N, classes)
    anchors: list[torch.Tensor] = field(default_factory=list)  # one (N, C, T) tensor per anchor, or empty


@dataclass(frozen=True)
class HeadScore:
    accuracy: float
    macro_f1: float


def indexed(windows: Windows, offset: int = 0) -> Windows:
    """The same windows with ``y`` replaced by their row in a :class:`TeacherTargets` table."""
    return dataclasses.replace(windows, y=torch.arange(offset, offset + len(windows)))


@torch.no_grad()
def teacher_targets(teacher: Network, windows: Windows, with_anchors: bool, logits_inputs: str = "code",
                    batch_size: int = 256) -> TeacherTargets:
    if logits_inputs not in LOGITS_INPUTS:
        raise ValueError(f"unknown logits_inputs {logits_inputs!r}; expected one of {LOGITS_INPUTS}")
    teacher.eval()
    logits, deployed, anchors = [], [], []
    for i in range(0, len(windows), batch_size):
        x = windows.x[i : i + batch_size]
        feats = teacher.features(x)
        head = teacher.head
        logits.append(head.memory(feats) if logits_inputs == "code" else head.mixture_log_probs(feats))
        deployed.append(head(feats))
        if with_anchors:
            anchors.append(teacher.anchors(x))
    stacked = [torch.cat([a[s] for a in anchors]) for s in range(teacher.num_anchors)] if with_anchors else []
    return TeacherTargets(labels=windows.y.clone(), logits=torch.cat(logits), deployed=torch.cat(deployed),
                          anchors=stacked)


def train_supervised(model: Network, train: Windows, val: Windows, recipe: Recipe, epochs: int, generator) -> FitReport:
    """Cross-entropy training keeping the best validation-accuracy epoch (the teacher and the scratch student).

    Validation runs in eval mode, so it scores the head's eval mode (the memory branch by default), as the code's
    evaluator does. The training loss is CE on the log of the mixture (the code applies CE to the mixture
    probabilities themselves; see the README).
    """
    opt = make_optimizer(model.parameters(), "adam", recipe.lr)
    return fit(model, train, epochs=epochs, optimizer=opt, batch_size=recipe.batch_size, generator=generator,
               loss_fn=cross_entropy, val=val, val_metric="accuracy", select_initial=False)


class _StageProbe(nn.Module):
    """The student truncated at one anchor, followed by that anchor's adapter: what stage distillation trains."""

    def __init__(self, student: Network, adapters: StageAdapters, index: int):
        super().__init__()
        self.student, self.adapters, self.index = student, adapters, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapters(self.student.anchor(x, self.index), self.index)


@torch.no_grad()
def anchor_mse(student: Network, adapters: StageAdapters, targets: TeacherTargets, windows: Windows,
               batch_stats: bool = False) -> list[float]:
    """MSE between the (adapted) student anchors and the teacher's on :func:`indexed` windows.

    ``batch_stats=False`` scores the student in eval mode (BatchNorm running statistics), as the code's stage
    evaluator does; ``True`` normalises with the windows' own statistics, i.e. the network stage distillation
    actually trains (the running statistics are saved and restored, so nothing changes).
    """
    was = student.training
    saved = {k: v.clone() for k, v in student.state_dict().items()}
    student.train(batch_stats)
    out = []
    for s in range(student.num_anchors):
        pred = adapters(student.anchor(windows.x, s), s)
        out.append(float(F.mse_loss(pred, targets.anchors[s][windows.y])))
    student.load_state_dict(saved)
    student.train(was)
    return out


def distil_stages(
    student: Network, teacher_channels: list[int], targets: TeacherTargets, train: Windows, val: Windows,
    recipe: Recipe, generator,
) -> dict[str, list[float]]:
    """Stage distillation, anchor by anchor in order; returns every anchor's validation MSE before and after, in eval
    mode (``before``/``after``, the code's diagnostic) and with batch statistics (``before_batch``/``after_batch``).

    ``train`` and ``val`` are :func:`indexed` windows. As in the code, a fresh Adam sees every student parameter for
    each anchor (earlier stages keep adjusting while a later one is matched), the student trains in training mode
    against the eval-mode teacher, and the last epoch is kept. Where widths differ (``architecture='harbench'``)
    1x1 adapters bridge them and are discarded afterwards; the code's anchors need none.
    """
    adapters = StageAdapters(student.anchor_channels, teacher_channels)
    before = anchor_mse(student, adapters, targets, val)
    before_batch = anchor_mse(student, adapters, targets, val, batch_stats=True)
    for s in range(student.num_anchors):
        probe = _StageProbe(student, adapters, s)

        def loss_fn(model: nn.Module, x: torch.Tensor, rows: torch.Tensor, s: int = s) -> torch.Tensor:
            return stage_loss(model(x), targets.anchors[s][rows], recipe.lambda_f, recipe.attention)

        params = list(student.parameters()) + list(adapters.maps[s].parameters())
        opt = make_optimizer(params, "adam", recipe.stage_lr)
        fit(probe, train, epochs=recipe.stage_epochs, optimizer=opt, batch_size=recipe.batch_size,
            generator=generator, loss_fn=loss_fn)
    student.eval()
    return {"before": before, "after": anchor_mse(student, adapters, targets, val),
            "before_batch": before_batch, "after_batch": anchor_mse(student, adapters, targets, val, batch_stats=True)}


def copy_memory(student: Network, teacher: Network) -> None:
    """Memory distillation: the teacher's whole head (memory, intuition, mixing weights) becomes the student's
    (the code's ``model.classifier.load_state_dict(teacher_model.classifier.state_dict())``)."""
    student.head.load_state_dict(teacher.head.state_dict())


def student_inputs(z: torch.Tensor, logits_inputs: str) -> torch.Tensor:
    """What the logits losses see of the student's training-mode output (the log-mixture, see heads.py):
    the mixture probabilities themselves with ``'code'`` (the code's ``y_pred``), the log-mixture with ``'fused'``."""
    return z.exp() if logits_inputs == "code" else z


def distil_logits(
    student: Network, targets: TeacherTargets, train: Windows, val: Windows, recipe: Recipe, epochs: int,
    generator, *, kind: str, conditional: bool = True,
) -> FitReport:
    """Logits distillation of the whole student; ``kind`` is ``smldist`` (conditional rule), ``hinton`` (the code's
    ``HintonCrossEntropyLoss``: T = 1, no T^2) or ``hinton-t4`` (T = ``temperature`` with T^2).

    ``train`` is :func:`indexed`; ``val`` keeps its true labels and selects the best-accuracy epoch (in eval mode,
    as the code's evaluator; the untrained epoch 0 does not compete, as in the code).
    """

    def loss_fn(model: nn.Module, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        z_s = student_inputs(model(x), recipe.logits_inputs)
        z_t, y = targets.logits[rows], targets.labels[rows]
        if kind == "hinton":
            return hinton_loss(z_s, z_t, y, temperature=1.0, ratio=recipe.ratio, t_squared=False)
        if kind == "hinton-t4":
            return hinton_loss(z_s, z_t, y, temperature=recipe.temperature, ratio=recipe.ratio, t_squared=True)
        return smldist_logits_loss(z_s, z_t, y, form=recipe.logits_form, conditional=conditional,
                                   hardness=recipe.hardness, ratio=recipe.ratio, temperature=recipe.temperature)

    opt = make_optimizer(student.parameters(), "adam", recipe.lr)
    return fit(student, train, epochs=epochs, optimizer=opt, batch_size=recipe.batch_size, generator=generator,
               loss_fn=loss_fn, val=val, val_metric="accuracy", select_initial=False)


def evaluate_heads(model: Network, val: Windows) -> dict[str, HeadScore]:
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
    """The auto-search (a reconstruction): best validation accuracy, then macro-F1, then fused > memory > intuition."""
    return max(scores, key=lambda m: (scores[m].accuracy, scores[m].macro_f1, -HEAD_PREFERENCE.index(m)))
