"""DUET as a harbench method: train the generator on the population (``prepare``), then personalise each target
user with exactly one generator forward pass on its unlabelled buffer (``adapt``) -- no gradient on the device.

Roles inside ``adapt`` (one process simulates both sides, so the split is timed explicitly):

* device: choose the buffer from its stream, compute the buffer's backbone embeddings (``upload=embedding``, the
  privacy-friendly protocol), and install the returned head in place of its own (the static layers are shared
  with the generic model, not copied: a device swaps its head, it does not duplicate its backbone);
* cloud: one forward pass of the generator (plus the backbone embeddings when ``upload=raw``).

The harness measures the whole call; ``facts.extra`` reports the parts (``device_s``/``cloud_s``,
``device_flops``/``cloud_flops``), the bytes each way and the radio energy they cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from harbench import AdaptFacts, AdaptResult, Backbone, Method, MethodState, Windows, frozen_copy

from .augment import add_virtual_devices
from .communication import FLOAT32_BYTES, communication
from .declaration import PARAMETERS
from .episodes import DeviceSplit, build_devices, device_buffer, split_by_user
from .generator import GeneratorConfig, ParameterGenerator
from .meta_training import TrainingConfig, population_features, pretrain_umn, train_generator
from .personal_model import HeadSwapped, PerSampleHead, build_head, swap_head

# Adapt calls of this method in this process: the first one pays one-off costs (lazy kernel set-up, first GRU
# call, allocator growth) that later ones do not, so ``facts.extra["process_adapt_index"]`` lets the summary
# report the first adapt of a process apart from the steady state. Reporting only: adapt never reads it.
_ADAPT_CALLS = 0

GENERATOR_PREFIX = "generator."
BACKBONE_PREFIX = "backbone."


@dataclass(frozen=True)
class AdaptTimings:
    device_s: float
    cloud_s: float


class Duet(Method):
    name = "duet"
    description = ("DUET (Lv et al., WWW 2023): a cloud hypernetwork generates the classifier head from the user's "
                   "unlabelled recent windows in one forward pass; no labels, no on-device training")
    label_free = True
    parameters = PARAMETERS

    def __init__(self, **params):
        super().__init__(**params)
        if self.params.swa and self.params.generate == "sample":
            raise ValueError("duet: swa=true needs generate=buffer (the stable weight adapter mixes the heads of "
                             "sub-buffers; a per-sample head has none)")
        self._cached: tuple[MethodState, ParameterGenerator] | None = None

    # ------------------------------------------------------------------------------------------ cloud: prepare
    def generator_config(self, feature_dim: int, classes: int) -> GeneratorConfig:
        p = self.params
        return GeneratorConfig(
            feature_dim=feature_dim, classes=classes, hidden=p.hidden, z_dim=p.z_dim, encoder=p.encoder,
            form=p.form, delta_scale=p.delta_scale, swa=p.swa, swa_subbuffers=p.swa_subbuffers,
            activation=p.activation, granularity=p.generate, decoders=p.decoders,
        )

    def training_config(self) -> TrainingConfig:
        p = self.params
        return TrainingConfig(
            episodes=p.episodes, meta_batch=p.meta_batch, buffer_size=p.buffer_size, query_size=p.query_size,
            lr=p.lr, weight_decay=p.weight_decay, umn_weight=p.umn_weight, joint=p.backbone_mode == "joint",
            backbone_lr=p.backbone_lr, eval_every=p.eval_every, select_by=p.select_by, buffer_select=p.buffer_select,
            select_initial=p.select_initial,
        )

    def prepare(self, generic: Backbone, population: Windows, ctx) -> MethodState:
        torch.manual_seed(ctx.seed)  # parameter initialisation of the generator
        backbone = frozen_copy(generic)
        feats = population_features(backbone, population.x)
        cfg = self.generator_config(feats.shape[1], ctx.info.num_classes)
        generator = ParameterGenerator(cfg)
        generator.set_feature_stats(feats.mean(0), feats.std(0))
        if cfg.hidden == 0:
            generator.load_base_head(generic.head)
        else:
            pretrain_umn(generator, feats, population.y, self.params.umn_steps, self.params.lr * 3, ctx.generator(salt=5))
        split = split_by_user(build_devices(population), self.params.val_fraction, ctx.generator(salt=1))
        episodes_data, split = with_virtual_devices(
            population, split, self.params.virtual_devices, self.params.virtual_strength, ctx.generator(salt=4))
        tcfg = self.training_config()
        report = train_generator(generator, backbone, episodes_data, split, tcfg, ctx.generator(salt=2),
                                 val_rng_seed=ctx.seed * 1_000_003 + 3)
        tensors = {GENERATOR_PREFIX + k: v.detach().clone().contiguous() for k, v in generator.state_dict().items()}
        if tcfg.joint:
            tensors.update({BACKBONE_PREFIX + k: v.detach().clone().contiguous()
                            for k, v in backbone.state_dict().items()})
        meta = {
            "generator": cfg.to_meta(),
            "joint": tcfg.joint,
            "flops": _flop_model(backbone, generator, population.x[:1], tcfg.buffer_size),
            "training": {
                "episodes_run": report.episodes_run, "best_episode": report.best_episode,
                "val_loss": report.best_val_loss, "val_acc": report.best_val_acc, "val_umn_acc": report.val_umn_acc,
                "val_users": [ctx.info.users[u] for u in split.val_users], "seconds": round(report.seconds, 3),
                "train_devices": len(split.train), "val_devices": len(split.val),
            },
        }
        return MethodState(tensors=tensors, meta=meta)

    def rebuild_generator(self, state: MethodState) -> ParameterGenerator:
        """The generator from plain tensors + meta (what the safetensors cache holds); kept for later users."""
        if self._cached is not None and self._cached[0] is state:
            return self._cached[1]
        generator = ParameterGenerator(GeneratorConfig.from_meta(state.meta["generator"]))
        generator.load_state_dict(_with_prefix(state.tensors, GENERATOR_PREFIX))
        generator.eval()
        for p in generator.parameters():
            p.requires_grad_(False)
        self._cached = (state, generator)
        return generator

    # ------------------------------------------------------------------------------------------ device: adapt
    def adapt(self, generic, state, user, ctx) -> AdaptResult:
        global _ADAPT_CALLS
        call_index, _ADAPT_CALLS = _ADAPT_CALLS, _ADAPT_CALLS + 1
        p = self.params
        # DUET never looks at labels, even if a caller passes them. The windows are taken in the order handed
        # over -- the device's stream in time order -- and never re-sorted by recording id or start, which
        # carry no time (nor class) information under the harness's label-free protocol.
        stream = user.adapt.without_labels()
        generator = self.rebuild_generator(state)
        cfg = generator.cfg

        t0 = time.perf_counter()
        if state.meta.get("joint"):  # the backbone was retrained on the cloud: the device holds a new copy
            model = frozen_copy(generic)
            model.load_state_dict(_with_prefix(state.tensors, BACKBONE_PREFIX))
            model.eval()
        else:
            model = generic  # read only: its static layers are shared by the personal model (see HeadSwapped)
        buffer = stream.x[device_buffer(len(stream), p.buffer_size, p.buffer_select)]
        n = len(buffer)
        with torch.inference_mode():
            if p.upload == "embedding":
                payload = model.features(buffer)  # device
            t1 = time.perf_counter()
            if p.upload == "raw":
                payload = buffer
                buffer_feats = model.features(payload)  # cloud
            else:
                buffer_feats = payload
            if cfg.granularity == "sample":  # cloud: encode the buffer once; decoding happens per window
                encoder_state = generator.encoder.state(buffer_feats.unsqueeze(0))
            else:
                layers = generator(buffer_feats.unsqueeze(0))  # cloud: the single PPG forward pass
            t2 = time.perf_counter()
        if cfg.granularity == "sample":
            head = PerSampleHead(generator, encoder_state.clone())
        else:
            head = build_head(cfg, layers)  # device
        model = swap_head(model, head) if state.meta.get("joint") else HeadSwapped(generic, head)
        t3 = time.perf_counter()
        timings = AdaptTimings(device_s=(t1 - t0) + (t3 - t2), cloud_s=t2 - t1)

        flops = state.meta["flops"]
        feature_flops = flops["feature_per_window"] * n
        generator_flops = _generator_flops(flops, n)  # per-sample: an upper bound (decoders run at inference)
        device_flops = feature_flops if p.upload == "embedding" else 0.0
        cloud_flops = generator_flops + (feature_flops if p.upload == "raw" else 0.0)
        comm = communication(
            bytes_up=payload.numel() * FLOAT32_BYTES,
            bytes_down=_numel(head) * FLOAT32_BYTES,
            hardware_j_per_byte=ctx.radio_joules_per_byte,
            hardware_name=ctx.hardware.name if ctx.hardware is not None else None,
            fallback_j_per_byte=p.radio_j_per_byte,
        )
        return AdaptResult(model, AdaptFacts(
            params_trained=0, optimizer_steps=0, forward_samples=n, backward_samples=0, batch_size=n, epochs=0,
            trainable=[], flops=device_flops + cloud_flops,
            extra={
                "device_s": timings.device_s, "cloud_s": timings.cloud_s,
                "device_flops": device_flops, "cloud_flops": cloud_flops,
                "bytes_up": comm.bytes_up, "bytes_down": comm.bytes_down,
                "comm_j": comm.joules, "radio_j_per_byte": comm.j_per_byte, "comm_energy_source": comm.source,
                "buffer_windows": n, "upload": p.upload, "generated_params": cfg.head_numel,
                "generate": cfg.granularity, "process_adapt_index": call_index,
                "training": state.meta.get("training", {}),
            },
        ))


def _numel(module: torch.nn.Module) -> int:
    """Numbers the cloud sends down: the generated head, or (per-sample) the generator plus the buffer state."""
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())


def _with_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _count_flops(fn) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _flop_model(backbone: Backbone, generator: ParameterGenerator, example: torch.Tensor, buffer_size: int) -> dict:
    """FLOPs counted once in prepare, so ``adapt`` does not pay for counting: the backbone's embedding of one
    window, and the generator's pass on a one-window and on a full buffer (it is linear in the buffer length)."""
    backbone.eval()
    generator.eval()
    d = generator.cfg.feature_dim
    return {
        "feature_per_window": _count_flops(lambda: backbone.features(example[:1])),
        "generator_1": _count_flops(lambda: generator(torch.zeros(1, 1, d))),
        "generator_n": _count_flops(lambda: generator(torch.zeros(1, buffer_size, d))),
        "buffer_size": buffer_size,
    }


def _generator_flops(flops: dict, n: int) -> float:
    """Generator FLOPs for a buffer of ``n`` windows, interpolated from the two counts taken in prepare."""
    g1, gn, size = flops["generator_1"], flops["generator_n"], flops["buffer_size"]
    if size <= 1:
        return gn
    return g1 + (gn - g1) * (n - 1) / (size - 1)


def with_virtual_devices(
    population: Windows, split: DeviceSplit, copies: int, strength: float, generator: torch.Generator
) -> tuple[Windows, DeviceSplit]:
    """The episodes' windows and devices: the recorded ones plus virtual copies, each on its user's side."""
    extended, virtual = add_virtual_devices(population, split.train + split.val, copies, generator, strength)
    val_users = set(split.val_users)
    return extended, DeviceSplit(
        train=split.train + [d for d in virtual if d.user not in val_users],
        val=split.val + [d for d in virtual if d.user in val_users],
        val_users=split.val_users,
    )
