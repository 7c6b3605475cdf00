"""DUET's Personalized Parameters Generator (PPG): a hypernetwork that turns a device's unlabelled buffer into
the weights of the classifier head ("dynamic layers"), plus the Universal Meta Network's own head.

Shapes follow the authors' ``HyperNetwork_FC``: a set/sequence encoder maps the buffer's backbone features to a
vector ``z``; for every dynamic layer ``j`` one linear decoder produces the weight matrix and another the bias.
Everything here is batched over devices (leading dimension ``B``), as in the released code, so that episodic
training can generate heads for several users in one pass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .declaration import ACTIVATIONS, DECODERS, ENCODERS, FORMS, GRANULARITIES  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator's architecture: JSON-able, so ``MethodState.meta`` can carry it and ``adapt`` can rebuild."""

    feature_dim: int
    classes: int
    hidden: int = 32  # 0 = a single generated d -> classes layer (a drop-in for the generic head)
    z_dim: int = 32
    encoder: str = "gru"
    form: str = "residual"
    delta_scale: float = 0.1  # scales the residual decoders' output: the generated head starts at the UMN head
    swa: bool = False
    swa_subbuffers: int = 4
    swa_embed: int = 16
    activation: str = "tanh"  # between generated layers: Tanh as in the paper and the released code
    granularity: str = "buffer"  # one head per buffer, or one head per sample (buffer + that sample)
    decoders: str = "trained"  # trained (the paper's intent) or frozen at their random init (the released code)

    def __post_init__(self) -> None:
        for name, allowed in (("encoder", ENCODERS), ("form", FORMS), ("activation", ACTIVATIONS),
                              ("granularity", GRANULARITIES), ("decoders", DECODERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.swa and self.granularity == "sample":
            raise ValueError("swa=true needs generate=buffer: the stable weight adapter mixes heads of sub-buffers, "
                             "a per-sample head has none")

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(d_in, d_out) of every dynamic layer, input to output."""
        if self.hidden > 0:
            return [(self.feature_dim, self.hidden), (self.hidden, self.classes)]
        return [(self.feature_dim, self.classes)]

    @property
    def head_numel(self) -> int:
        """Parameters of one generated head: what the cloud sends back to the device."""
        return sum(i * o + o for i, o in self.layer_shapes)

    def to_meta(self) -> dict:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict) -> "GeneratorConfig":
        return cls(**meta)


# One generated layer: weight (B, d_out, d_in) and bias (B, d_out), the nn.Linear layout with a device axis.
LayerParams = tuple[torch.Tensor, torch.Tensor]


def activation_fn(name: str):
    """The nonlinearity between generated layers: ``tanh`` (the paper's and the released code's) or ``relu``."""
    return torch.tanh if name == "tanh" else torch.relu


def activation_module(name: str) -> nn.Module:
    return nn.Tanh() if name == "tanh" else nn.ReLU()


def run_head(features: torch.Tensor, layers: list[LayerParams], activation: str = "tanh") -> torch.Tensor:
    """Apply per-device heads: ``features`` (B, Q, d) -> logits (B, Q, classes); ``activation`` between layers."""
    act = activation_fn(activation)
    x = features
    for j, (weight, bias) in enumerate(layers):
        x = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
        if j < len(layers) - 1:
            x = act(x)
    return x


class SetEncoder(nn.Module):
    """Buffer features (B, N, d) -> z (B, z_dim).

    ``gru`` follows the released code (a GRU over the sequence, its last state, then the MLP Linear-Tanh-Linear,
    the released ``_mlp_trans``); ``meanstd`` pools the buffer's first two moments, which ignores order and is
    cheaper. Features are standardised with the population statistics first, so neither encoder has to learn the
    backbone's feature scale.

    Per-sample generation (``granularity=sample``) conditions each sample on the buffer followed by the sample
    itself -- its own recent history, as the released code conditions each request on its own click sequence.
    :meth:`state` summarises the buffer once (the GRU's hidden state, or the standardised buffer for ``meanstd``)
    and :meth:`per_sample` extends it by one window per sample, which equals encoding each ``buffer + sample``.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        d, z = cfg.feature_dim, cfg.z_dim
        self.kind = cfg.encoder
        self.register_buffer("feature_mean", torch.zeros(d))
        self.register_buffer("feature_std", torch.ones(d))
        if self.kind == "gru":
            self.gru = nn.GRU(d, z, batch_first=True)
            pooled = z
        else:
            pooled = 2 * d
        self.mlp = nn.Sequential(nn.Linear(pooled, z), nn.Tanh(), nn.Linear(z, z))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.feature_mean) / self.feature_std

    @staticmethod
    def _moments(x: torch.Tensor) -> torch.Tensor:
        std = x.std(dim=1, unbiased=False) if x.shape[1] > 1 else torch.zeros_like(x[:, 0])
        return torch.cat([x.mean(dim=1), std], dim=-1)

    def forward(self, buffer: torch.Tensor) -> torch.Tensor:
        x = self.standardise(buffer)
        if self.kind == "gru":
            _, last = self.gru(x)
            pooled = last[-1]
        else:
            pooled = self._moments(x)
        return self.mlp(pooled)

    def state(self, buffer: torch.Tensor) -> torch.Tensor:
        """What per-sample encoding needs of a buffer (B, N, d): the GRU state (1, B, z) or the standardised buffer."""
        x = self.standardise(buffer)
        if self.kind == "gru":
            return self.gru(x)[1]
        return x

    def per_sample(self, state: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """z of ``buffer + sample`` for every sample (B, Q, d) -> (B, Q, z_dim), from the buffer's :meth:`state`."""
        b, q, d = samples.shape
        s = self.standardise(samples).reshape(b * q, 1, d)
        if self.kind == "gru":
            _, last = self.gru(s, state.repeat_interleave(q, dim=1).contiguous())
            pooled = last[-1]
        else:
            n = state.shape[1]
            seq = torch.cat([state.unsqueeze(1).expand(b, q, n, d).reshape(b * q, n, d), s], dim=1)
            pooled = self._moments(seq)
        return self.mlp(pooled).reshape(b, q, -1)


class StableWeightAdapter(nn.Module):
    """The paper's SWA (an ablation, off by default: it is not in the released code, and its equations are not
    public). Generated parameter vectors of M sub-buffers, K (B, M, P), are embedded (phi), attend to each other
    through their self-similarity matrix, and their attention-weighted mean is mixed point-wise into the vector
    generated from the whole buffer: k = s * k_full + (1 - s) * mean(A K), with a learned gate s in (0, 1)^P.
    """

    def __init__(self, numel: int, embed: int):
        super().__init__()
        self.phi = nn.Linear(numel, embed)
        self.gate_logit = nn.Parameter(torch.full((numel,), 2.0))  # starts close to the full-buffer vector

    def forward(self, full: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
        e = self.phi(parts)  # (B, M, embed)
        attention = torch.softmax(e @ e.transpose(1, 2) / math.sqrt(e.shape[-1]), dim=-1)
        consensus = (attention @ parts).mean(dim=1)  # (B, P)
        gate = torch.sigmoid(self.gate_logit)
        return gate * full + (1 - gate) * consensus


class ParameterGenerator(nn.Module):
    """The cloud model: the UMN head (``base``) and the PPG (encoder + per-layer decoders [+ SWA]).

    ``residual`` form: W_j = W_j^UMN + delta_scale * dec_j(z), so an untrained generator already reproduces the
    UMN head and training only learns the personal correction (stable). ``direct`` form: W_j = dec_j(z), the
    released code's form, with its own decoder biases (not tied to the UMN head).
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SetEncoder(cfg)
        self.base = nn.ModuleList(nn.Linear(i, o) for i, o in cfg.layer_shapes)
        self.weight_decoders = nn.ModuleList(nn.Linear(cfg.z_dim, i * o) for i, o in cfg.layer_shapes)
        self.bias_decoders = nn.ModuleList(nn.Linear(cfg.z_dim, o) for _, o in cfg.layer_shapes)
        self.swa = StableWeightAdapter(cfg.head_numel, cfg.swa_embed) if cfg.swa else None
        self._init_decoders()

    def _init_decoders(self) -> None:
        """``decoders=trained``: small decoder weights, so z only nudges the head at first; biases give the head it
        starts from: zero (the UMN head, residual form) or a freshly initialised nn.Linear's range (direct form).

        ``decoders=frozen`` reproduces the released code: its ``HyperNetwork_FC`` initialises w1, b1, w2, b2 as
        ``fmod(randn, 2)`` and keeps them in plain Python lists, so they are never registered, never trained and
        absent from its state_dict; they stay random projections of z and only the encoder producing z learns.
        Here they are registered (so the cache holds them) but excluded from training (``requires_grad=False``)."""
        for (i, o), wdec, bdec in zip(self.cfg.layer_shapes, self.weight_decoders, self.bias_decoders):
            for dec in (wdec, bdec):
                if self.cfg.decoders == "frozen":
                    with torch.no_grad():
                        dec.weight.copy_(torch.fmod(torch.randn(dec.weight.shape), 2))
                        dec.bias.copy_(torch.fmod(torch.randn(dec.bias.shape), 2))
                    dec.weight.requires_grad_(False)
                    dec.bias.requires_grad_(False)
                    continue
                nn.init.normal_(dec.weight, std=0.01)
                if self.cfg.form == "residual":
                    nn.init.zeros_(dec.bias)
                else:
                    nn.init.uniform_(dec.bias, -1 / math.sqrt(i), 1 / math.sqrt(i))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.encoder.feature_mean.copy_(mean)
        self.encoder.feature_std.copy_(std.clamp_min(1e-4))

    def load_base_head(self, head: nn.Linear) -> None:
        """Start the UMN head from the generic model's head (only possible for the single-layer head)."""
        if len(self.base) != 1:
            raise ValueError("the generic head can seed the UMN head only when hidden == 0")
        self.base[0].load_state_dict(head.state_dict())

    # ----------------------------------------------------------------------------------------- generation
    def _flat_from_z(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) -> generated parameter vector (B, P): the decoders' raw output, all layers concatenated."""
        parts = []
        for wdec, bdec in zip(self.weight_decoders, self.bias_decoders):
            parts += [wdec(z), bdec(z)]
        return torch.cat(parts, dim=-1)

    def generate_flat(self, buffer: torch.Tensor) -> torch.Tensor:
        """Buffer features (B, N, d) -> decoder output vector (B, P), with SWA over sub-buffers when enabled."""
        full = self._flat_from_z(self.encoder(buffer))
        if self.swa is None:
            return full
        m = max(1, min(self.cfg.swa_subbuffers, buffer.shape[1]))
        chunks = torch.tensor_split(buffer, m, dim=1)
        parts = torch.stack([self._flat_from_z(self.encoder(c)) for c in chunks], dim=1)
        return self.swa(full, parts)

    def unflatten(self, flat: torch.Tensor) -> list[LayerParams]:
        """Decoder vector (B, P) -> per-layer (weight, bias), adding the UMN head in the residual form.

        With ``delta_scale=0`` the generated head *is* the UMN head, bit for bit (``w + 0 * dw == w`` for finite
        ``dw``): the ablation "universal head alone, no personalisation"."""
        layers, offset = [], 0
        b = flat.shape[0]
        for (i, o), base in zip(self.cfg.layer_shapes, self.base):
            w = flat[:, offset : offset + i * o].reshape(b, o, i)
            offset += i * o
            bias = flat[:, offset : offset + o]
            offset += o
            if self.cfg.form == "residual":
                w = base.weight + self.cfg.delta_scale * w
                bias = base.bias + self.cfg.delta_scale * bias
            layers.append((w, bias))
        return layers

    def forward(self, buffer: torch.Tensor) -> list[LayerParams]:
        """One PPG pass: buffer features (B, N, d) -> the B generated heads."""
        return self.unflatten(self.generate_flat(buffer))

    def per_sample_heads(self, state: torch.Tensor, samples: torch.Tensor) -> list[LayerParams]:
        """Per-sample generation: the buffer's encoder ``state`` and samples (B, Q, d) -> B*Q heads, one per
        sample, each conditioned on the buffer followed by that sample (``granularity=sample``)."""
        z = self.encoder.per_sample(state, samples)
        return self.unflatten(self._flat_from_z(z.reshape(-1, z.shape[-1])))

    def per_sample_logits(self, state: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """Logits (B, Q, classes) of every sample under its own generated head."""
        b, q, d = samples.shape
        layers = self.per_sample_heads(state, samples)
        return run_head(samples.reshape(b * q, 1, d), layers, self.cfg.activation).reshape(b, q, -1)

    def logits(self, buffer: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        """Logits (B, Q, classes) of samples (B, Q, d) under heads generated from buffers (B, N, d), at the
        configured granularity: what episodic training scores."""
        if self.cfg.granularity == "sample":
            return self.per_sample_logits(self.encoder.state(buffer), samples)
        return run_head(samples, self(buffer), self.cfg.activation)

    def umn_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The universal (non-personal) head on features (..., d): what L_umn trains."""
        act = activation_fn(self.cfg.activation)
        x = features
        for j, layer in enumerate(self.base):
            x = layer(x)
            if j < len(self.base) - 1:
                x = act(x)
        return x
