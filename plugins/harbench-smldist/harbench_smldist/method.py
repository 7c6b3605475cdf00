"""The harbench method: SMLDist's cloud pipeline in ``prepare``, on-device personalization in ``adapt``.

``variant`` selects what ``prepare`` builds, so baselines and ablations run through the same grid:

* ``teacher`` - the wide MobileNet trained on the population (deployed as is);
* ``student-scratch`` - the student trained with cross-entropy only;
* ``student-hinton`` - the student trained with classic temperature KD from the teacher;
* ``smldist`` - stage distillation (MSE + frequency attention), memory distillation, conditional logits
  distillation;
* ``smldist-no-stage`` / ``smldist-no-memory`` / ``smldist-no-conditional`` - the ablations (the last keeps
  the teacher's wrong targets).

Every variant ends with the head auto-search on the population's validation split (``head_search``).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

import torch

from harbench import (
    AdaptFacts,
    AdaptResult,
    Method,
    MethodState,
    Param,
    Windows,
    count_params,
    fit,
    flops_per_window,
    make_optimizer,
    split_train_val,
)

from .heads import HEAD_MODES
from .losses import ATTENTIONS, LOGITS_FORMS
from .networks import NetworkConfig, SMLNet, load_network, state_tensors
from .pipeline import (
    Recipe,
    TeacherTargets,
    choose_head,
    copy_memory,
    distil_logits,
    distil_stages,
    evaluate_heads,
    indexed,
    teacher_targets,
    train_supervised,
)

VARIANTS = (
    "teacher", "student-scratch", "student-hinton", "smldist",
    "smldist-no-stage", "smldist-no-memory", "smldist-no-conditional",
)
ADAPT_SCOPES = ("head", "full", "none")

# Every variant but student-scratch trains the same teacher (same data, seed and recipe); when the runner executes
# several variants in one process the teacher is trained once. Keyed by a digest of everything it depends on.
_TEACHER_CACHE: "OrderedDict[str, dict[str, torch.Tensor]]" = OrderedDict()
_TEACHER_CACHE_SIZE = 2


class SMLDist(Method):
    name = "smldist"
    description = "SMLDist: stage (+frequency attention), memory and logits distillation into a MobileNet student, head auto-search"
    # SMLDist trains its own teacher and student from the population and never uses the harness's generic model,
    # so it asks for the default backbone: suites then train no extra generic model for it.
    backbone = "resnet1d"
    parameters = {
        "variant": Param("smldist", "what prepare builds: the method, a baseline or an ablation", choices=VARIANTS),
        "teacher_width": Param(2.0, "teacher MobileNet width multiplier (2.0 ~ 0.73 M parameters)", ge=0.25),
        "student_width": Param(0.75, "student MobileNet width multiplier (0.75 ~ 0.13 M parameters)", ge=0.25),
        "neck": Param(256, "neck width shared by teacher and student (so the head can be copied)", ge=8),
        "memory_slots": Param(32, "stored patterns of the associative-memory head", ge=1),
        "memory_dim": Param(64, "dimension of the memory's query and patterns", ge=4),
        "update_steps": Param(2, "Hopfield retrieval updates of the memory head", ge=0),
        "teacher_epochs": Param(12, "teacher training epochs (the paper: 200)", ge=1),
        "stage_epochs": Param(3, "stage-distillation epochs per anchor (the paper: 200)", ge=1),
        "logits_epochs": Param(12, "logits-distillation epochs; also the student-scratch/hinton budget", ge=1),
        "lr": Param(1e-3, "Adam learning rate for teacher, scratch and logits training", ge=0.0),
        "stage_lr": Param(1e-3, "Adam learning rate of stage distillation (the paper: 1e-4 over 200 epochs)", ge=0.0),
        "batch_size": Param(32, "mini-batch size on the cloud", ge=2),
        "val_fraction": Param(0.2, "population share held out for epoch selection and the head search", ge=0.05, le=0.5),
        "lambda_f": Param(1.0, "weight of the frequency-attention term in the stage loss (0 = plain MSE)", ge=0.0),
        "attention": Param("teacher_spectrum", "frequency weights of the stage loss", choices=ATTENTIONS),
        "logits_form": Param("paper", "logits loss: the code's double softmax or a clean temperature form", choices=LOGITS_FORMS),
        "hardness": Param(1.0, "scale of the one-hot target replacing a wrong teacher prediction", ge=0.0),
        "ratio": Param(1.0, "weight of the distillation term against the hard-label CE", ge=0.0),
        "temperature": Param(4.0, "temperature of Hinton KD and of the clean logits form", ge=0.1),
        "head_search": Param(True, "pick the best of memory / intuition / fused heads on validation"),
        "compress": Param(True, "drop the head branches the chosen mode does not use before deployment"),
        "adapt_scope": Param("head", "what adapt fine-tunes on the user's data", choices=ADAPT_SCOPES),
        "adapt_epochs": Param(20, "personalization epochs", ge=1),
        "adapt_lr": Param(5e-3, "personalization learning rate (Adam)", ge=0.0),
        "adapt_batch_size": Param(16, "personalization mini-batch size", ge=2),
        "adapt_val_fraction": Param(0.25, "share of the user's windows held out to pick the epoch (0 = last)", ge=0.0, le=0.9),
    }

    # ----------------------------------------------------------------------------------------------- cloud side
    def _recipe(self) -> Recipe:
        p = self.params
        return Recipe(
            teacher_epochs=p.teacher_epochs, stage_epochs=p.stage_epochs, logits_epochs=p.logits_epochs, lr=p.lr,
            stage_lr=p.stage_lr, batch_size=p.batch_size, lambda_f=p.lambda_f, attention=p.attention,
            logits_form=p.logits_form, hardness=p.hardness, ratio=p.ratio, temperature=p.temperature,
        )

    def _config(self, info, width: float) -> NetworkConfig:
        p = self.params
        return NetworkConfig(info.channels, info.num_classes, width, p.neck, p.memory_slots, p.memory_dim, p.update_steps)

    @staticmethod
    def _seeded_network(config: NetworkConfig, seed: int) -> SMLNet:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return SMLNet(config)

    def _teacher(self, config: NetworkConfig, train, val, recipe: Recipe, ctx, timings: dict) -> tuple[SMLNet, bool]:
        """The trained teacher, from the in-process cache when an identical one was trained already."""
        digest = hashlib.sha256()
        for t in (train.x, train.y, val.x, val.y):
            digest.update(t.numpy().tobytes())
        digest.update(repr((config, recipe.teacher_epochs, recipe.lr, recipe.batch_size, ctx.seed)).encode())
        key = digest.hexdigest()
        cached = key in _TEACHER_CACHE
        if not cached:
            start = time.perf_counter()
            teacher = self._seeded_network(config, ctx.seed * 7919 + 1)
            train_supervised(teacher, train, val, recipe, recipe.teacher_epochs, ctx.generator(1))
            _TEACHER_CACHE[key] = {k: v.clone() for k, v in teacher.state_dict().items()}
            while len(_TEACHER_CACHE) > _TEACHER_CACHE_SIZE:
                _TEACHER_CACHE.popitem(last=False)
            timings["teacher_s"] = time.perf_counter() - start
        teacher = SMLNet(config)
        teacher.load_state_dict(_TEACHER_CACHE[key])
        teacher.eval()
        return teacher, cached

    def prepare(self, generic, population, ctx) -> MethodState:
        p, recipe, variant = self.params, self._recipe(), self.params.variant
        train, val = split_train_val(population, p.val_fraction)
        teacher_cfg, student_cfg = self._config(ctx.info, p.teacher_width), self._config(ctx.info, p.student_width)
        tensors: dict[str, torch.Tensor] = {}
        meta: dict = {"variant": variant, "teacher_config": teacher_cfg.to_meta(), "student_config": student_cfg.to_meta()}
        timings: dict[str, float] = {}

        teacher = None
        if variant != "student-scratch":
            teacher, meta["teacher_cached"] = self._teacher(teacher_cfg, train, val, recipe, ctx, timings)
            tensors.update(state_tensors(teacher, "teacher"))
            meta["teacher_val"] = _as_dict(evaluate_heads(teacher, val)["fused"])

        if variant == "teacher":
            deployed, deployed_cfg = teacher, teacher_cfg
        else:
            deployed, deployed_cfg = self._seeded_network(student_cfg, ctx.seed * 7919 + 2), student_cfg
            start = time.perf_counter()
            meta.update(self._train_student(deployed, teacher, train, val, recipe, ctx))
            timings["student_s"] = time.perf_counter() - start
            tensors.update(state_tensors(deployed, "student"))

        scores = evaluate_heads(deployed, val)
        head = choose_head(scores) if p.head_search else "fused"
        example = population.x[:1]
        meta.update(
            deployed="teacher" if variant == "teacher" else "student",
            deployed_config=deployed_cfg.to_meta(),
            head=head,
            head_scores={m: _as_dict(s) for m, s in scores.items()},
            teacher_params=count_params(SMLNet(teacher_cfg)),
            student_params=count_params(SMLNet(student_cfg)),
            teacher_flops=flops_per_window(SMLNet(teacher_cfg), example),
            student_flops=flops_per_window(SMLNet(student_cfg), example),
            timings=timings,
        )
        return MethodState(tensors=tensors, meta=meta)

    def _train_student(self, student: SMLNet, teacher: SMLNet | None, train, val, recipe: Recipe, ctx) -> dict:
        variant = self.params.variant
        if variant == "student-scratch":
            report = train_supervised(student, train, val, recipe, recipe.logits_epochs, ctx.generator(2))
            return {"best_epoch": report.best_epoch}
        stage = variant != "smldist-no-stage" and variant != "student-hinton"
        targets = teacher_targets(teacher, Windows.concat([train, val]), with_anchors=stage)
        train_rows, val_rows = indexed(train), indexed(val, offset=len(train))
        facts: dict = {}
        if stage:
            facts["stage_val_loss"] = distil_stages(
                student, teacher.anchor_channels, targets, train_rows, val_rows, recipe, ctx.generator(3)
            )
        if variant == "student-hinton":
            report = distil_logits(student, targets, train_rows, val, recipe, recipe.logits_epochs, ctx.generator(4),
                                   kind="hinton")
        else:
            if variant != "smldist-no-memory":
                copy_memory(student, teacher)
            facts["teacher_wrong_train"] = _wrong_share(targets, len(train))
            report = distil_logits(student, targets, train_rows, val, recipe, recipe.logits_epochs, ctx.generator(4),
                                   kind="smldist", conditional=variant != "smldist-no-conditional")
        facts["best_epoch"] = report.best_epoch
        return facts

    # ---------------------------------------------------------------------------------------------- device side
    def deployed_model(self, state: MethodState) -> SMLNet:
        """Rebuild the deployed network from the cached state, with the searched head, compressed if asked."""
        config = NetworkConfig(**state.meta["deployed_config"])
        model = load_network(state.tensors, state.meta["deployed"], config)
        model.head.set_mode(state.meta["head"])
        if self.params.compress:
            model.head.compress()
        return model

    def adapt(self, generic, state, user, ctx) -> AdaptResult:
        p = self.params
        model = self.deployed_model(state)
        extra = {
            "variant": state.meta["variant"], "head": state.meta["head"], "deployed": state.meta["deployed"],
            "val_acc": state.meta["head_scores"][state.meta["head"]]["accuracy"],
            "val_f1": state.meta["head_scores"][state.meta["head"]]["macro_f1"],
            "teacher_params": state.meta["teacher_params"], "student_params": state.meta["student_params"],
            "teacher_flops": state.meta["teacher_flops"], "student_flops": state.meta["student_flops"],
            "adapt_scope": p.adapt_scope,
        }
        if p.adapt_scope == "none":
            return AdaptResult(model, AdaptFacts(extra=extra))
        for param in model.parameters():
            param.requires_grad_(p.adapt_scope == "full")
        for param in model.head.parameters():
            param.requires_grad_(True)
        train, val = (split_train_val(user.adapt, p.adapt_val_fraction) if p.adapt_val_fraction > 0
                      else (user.adapt, None))
        opt = make_optimizer(model.parameters(), "adam", p.adapt_lr)
        report = fit(model, train, epochs=p.adapt_epochs, optimizer=opt, batch_size=p.adapt_batch_size,
                     generator=ctx.generator(5), val=val, train_mode=_train_mode(p.adapt_scope))
        extra["best_epoch"] = report.best_epoch
        return AdaptResult(model, AdaptFacts(
            params_trained=count_params(model, trainable_only=True), optimizer_steps=report.optimizer_steps,
            forward_samples=report.forward_samples, backward_samples=report.backward_samples,
            batch_size=p.adapt_batch_size, epochs=report.epochs_run,
            trainable=[n for n, q in model.named_parameters() if q.requires_grad], extra=extra,
        ))


def _train_mode(scope: str):
    """Head-only personalization keeps BatchNorm statistics frozen: a few user windows must not overwrite them."""
    if scope == "full":
        return None

    def head_only(model: SMLNet) -> None:
        model.eval()
        model.head.train()

    return head_only


def _as_dict(score) -> dict[str, float]:
    return {"accuracy": score.accuracy, "macro_f1": score.macro_f1}


def _wrong_share(targets: TeacherTargets, n_train: int) -> float:
    """Share of training windows whose teacher prediction the conditional rule replaces."""
    wrong = targets.logits[:n_train].argmax(dim=-1) != targets.labels[:n_train]
    return float(wrong.float().mean())
