"""Episodic training of the generator on population devices (the cloud side of ``prepare``).

Each step samples a meta-batch of training devices; for each one an unlabelled buffer and a disjoint labelled
query set are drawn, the head is generated from the buffer, and the loss is
``L_ppg + lambda * L_umn``: the generated head's cross-entropy on the query plus the universal head's on the same
windows (the UMN path of the paper's Fig. 2; lambda = 0 trains the generator alone). The checkpoint kept is the
one with the best score on held-out population users, so target users play no part in any choice.

Only **trained** checkpoints are candidates (``select_initial=False``, the default), as in the authors'
``code/main/multi_metric_meta_train.py`` (HelloZicky/DUET at ``7cf8069``): it scores the model after each epoch
``for epoch in range(1, args.max_epoch + 1)`` and saves it when ``pred_overall_auc > best_auc`` (``best_auc = 0``),
so the untrained generator is never kept. harbench used to score episode 0 too; because the validation users are in
the backbone's training data, the untrained generator (≈ the universal head) then won for every non-augmented
variant and every DUET claim was a claim about the universal head. ``select_initial=True`` keeps that behaviour as
a named option.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from harbench import Backbone, Windows

from .episodes import Device, DeviceSplit, draw_buffer, draw_query
from .generator import ParameterGenerator


@dataclass(frozen=True)
class TrainingConfig:
    episodes: int = 600
    meta_batch: int = 8
    buffer_size: int = 16
    query_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    umn_weight: float = 1.0  # lambda
    joint: bool = False  # also train the backbone (the released code) instead of freezing it (the paper's Fig. 1c)
    backbone_lr: float = 1e-4
    eval_every: int = 50
    val_buffers: int = 4  # buffers drawn per validation device, to steady the selection score
    select_by: str = "loss"  # loss | accuracy
    buffer_select: str = "recent"  # how training buffers are chosen: as the target devices choose theirs
    select_initial: bool = False  # also score the untrained generator (episode 0) as a checkpoint candidate


@dataclass
class TrainingReport:
    episodes_run: int = 0
    best_episode: int = 0
    best_val_loss: float | None = None
    best_val_acc: float | None = None
    val_umn_acc: float | None = None
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


class FeatureSource:
    """Backbone features of population windows: precomputed once when the backbone is frozen, recomputed on
    demand (with gradients) when it is trained jointly. BatchNorm stays in eval mode either way, so episodes of a
    few windows never disturb the population statistics the backbone was trained with."""

    def __init__(self, backbone: Backbone, population: Windows, joint: bool):
        self.backbone = backbone
        self.x = population.x
        self.joint = joint
        backbone.eval()
        self.cache = None if joint else population_features(backbone, population.x)

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        flat = index.reshape(-1)
        if self.cache is not None:
            out = self.cache[flat]
        else:
            self.backbone.eval()
            out = self.backbone.features(self.x[flat])
        return out.reshape(*index.shape, -1)


@torch.no_grad()
def population_features(backbone: Backbone, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    was = backbone.training
    backbone.eval()
    out = torch.cat([backbone.features(x[i : i + batch]) for i in range(0, len(x), batch)])
    backbone.train(was)
    return out


def pretrain_umn(generator: ParameterGenerator, features: torch.Tensor, labels: torch.Tensor, steps: int, lr: float,
                 rng: torch.Generator, batch: int = 256) -> None:
    """Step 1 of the paper's recipe: fit the universal head on population features before any episode, so the
    residual form starts from a working classifier (needed when the head has a hidden layer the generic model
    lacks; with ``hidden=0`` the UMN head already starts as the generic head)."""
    optimizer = torch.optim.Adam(generator.base.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(len(features), (min(batch, len(features)),), generator=rng)
        loss = F.cross_entropy(generator.umn_logits(features[idx]), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def train_generator(
    generator: ParameterGenerator,
    backbone: Backbone,
    population: Windows,
    split: DeviceSplit,
    cfg: TrainingConfig,
    rng: torch.Generator,
    val_rng_seed: int,
) -> TrainingReport:
    """Train ``generator`` (and ``backbone`` when ``cfg.joint``) in place; restore the best validation checkpoint."""
    start = time.perf_counter()
    labels = population.y
    if labels is None:
        raise ValueError("DUET's population training needs labelled population windows")
    for p in backbone.parameters():
        p.requires_grad_(cfg.joint)
    features = FeatureSource(backbone, population, cfg.joint)
    groups = [{"params": [p for p in generator.parameters() if p.requires_grad], "lr": cfg.lr}]
    if cfg.joint:
        groups.append({"params": backbone.parameters(), "lr": cfg.backbone_lr})
    optimizer = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    validation = _ValidationSet(split.val, cfg, val_rng_seed)

    report = TrainingReport()
    best = None

    def evaluate(episode: int) -> None:
        nonlocal best
        if not validation.devices:
            return
        loss, acc, umn_acc = validation.score(generator, features, labels)
        report.history.append({"episode": episode, "val_loss": loss, "val_acc": acc, "val_umn_acc": umn_acc})
        score, best_score = (loss, report.best_val_loss) if cfg.select_by == "loss" else (-acc, None if report.best_val_acc is None else -report.best_val_acc)
        if best_score is None or score < best_score:
            report.best_episode, report.best_val_loss, report.best_val_acc, report.val_umn_acc = episode, loss, acc, umn_acc
            best = (copy.deepcopy(generator.state_dict()), copy.deepcopy(backbone.state_dict()) if cfg.joint else None)

    if cfg.select_initial:  # harbench's earlier choice; the authors' code scores trained epochs only
        evaluate(0)
    for episode in range(1, cfg.episodes + 1):
        generator.train()
        chosen = torch.randint(len(split.train), (cfg.meta_batch,), generator=rng).tolist()
        devices = [split.train[i] for i in chosen]
        buf = torch.stack([draw_buffer(d, cfg.buffer_size, cfg.buffer_select, rng) for d in devices])
        qry = torch.stack([draw_query(d.query_pool, cfg.query_size, rng) for d in devices])
        loss = episode_loss(generator, features(buf), features(qry), labels[qry], cfg.umn_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        report.episodes_run = episode
        if episode % cfg.eval_every == 0 or episode == cfg.episodes:
            evaluate(episode)

    if best is not None:
        generator.load_state_dict(best[0])
        if best[1] is not None:
            backbone.load_state_dict(best[1])
    else:
        report.best_episode = report.episodes_run
    generator.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    report.seconds = time.perf_counter() - start
    return report


def episode_loss(
    generator: ParameterGenerator, buffer_feats: torch.Tensor, query_feats: torch.Tensor, query_y: torch.Tensor,
    umn_weight: float,
) -> torch.Tensor:
    """L_ppg + lambda * L_umn for a meta-batch: buffers (B, N, d), queries (B, Q, d), labels (B, Q)."""
    logits = generator.logits(buffer_feats, query_feats)
    loss = F.cross_entropy(logits.flatten(0, 1), query_y.flatten())
    if umn_weight:
        loss = loss + umn_weight * F.cross_entropy(generator.umn_logits(query_feats).flatten(0, 1), query_y.flatten())
    return loss


class _ValidationSet:
    """Fixed buffers (drawn once, seeded) and the full query pools of the held-out population devices."""

    def __init__(self, devices: list[Device], cfg: TrainingConfig, seed: int):
        rng = torch.Generator().manual_seed(seed)
        self.devices = devices
        self.buffers = [
            torch.stack([draw_buffer(d, cfg.buffer_size, cfg.buffer_select, rng) for _ in range(cfg.val_buffers)])
            for d in devices
        ]

    @torch.no_grad()
    def score(self, generator: ParameterGenerator, features: FeatureSource, labels: torch.Tensor) -> tuple[float, float, float]:
        """Mean over devices of (generated-head CE, generated-head accuracy, UMN-head accuracy)."""
        generator.eval()
        losses, accs, umn_accs = [], [], []
        for device, buffers in zip(self.devices, self.buffers):
            q = device.query_pool
            qf = features(q).unsqueeze(0).expand(len(buffers), -1, -1)
            y = labels[q].unsqueeze(0).expand(len(buffers), -1)
            logits = generator.logits(features(buffers), qf)
            losses.append(float(F.cross_entropy(logits.flatten(0, 1), y.flatten())))
            accs.append(float((logits.argmax(-1) == y).float().mean()))
            umn_accs.append(float((generator.umn_logits(qf[0]).argmax(-1) == y[0]).float().mean()))
        n = len(self.devices)
        return sum(losses) / n, sum(accs) / n, sum(umn_accs) / n

