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

ENCODERS = ("gru", "meanstd")
FORMS = ("residual", "direct")


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

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {self.form!r}")

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


def run_head(features: torch.Tensor, layers: list[LayerParams]) -> torch.Tensor:
    """Apply per-device heads: ``features`` (B, Q, d) -> logits (B, Q, classes); ReLU between layers."""
    x = features
    for j, (weight, bias) in enumerate(layers):
        x = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
        if j < len(layers) - 1:
            x = torch.relu(x)
    return x


class SetEncoder(nn.Module):
    """Buffer features (B, N, d) -> z (B, z_dim).

    ``gru`` follows the released code (a GRU over the sequence, its last state, then a Tanh MLP); ``meanstd``
    pools the buffer's first two moments, which ignores order and is cheaper. Features are standardised with the
    population statistics first, so neither encoder has to learn the backbone's feature scale.
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
        self.mlp = nn.Sequential(nn.Linear(pooled, z), nn.Tanh(), nn.Linear(z, z), nn.Tanh())

    def forward(self, buffer: torch.Tensor) -> torch.Tensor:
        x = (buffer - self.feature_mean) / self.feature_std
        if self.kind == "gru":
            _, last = self.gru(x)
            pooled = last[-1]
        else:
            std = x.std(dim=1, unbiased=False) if x.shape[1] > 1 else torch.zeros_like(x[:, 0])
            pooled = torch.cat([x.mean(dim=1), std], dim=-1)
        return self.mlp(pooled)


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
        """Small decoder weights, so z only nudges the head at first; biases give the head it starts from:
        zero (the UMN head, residual form) or a freshly initialised nn.Linear's range (direct form)."""
        for (i, o), wdec, bdec in zip(self.cfg.layer_shapes, self.weight_decoders, self.bias_decoders):
            for dec in (wdec, bdec):
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
        """Decoder vector (B, P) -> per-layer (weight, bias), adding the UMN head in the residual form."""
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

    def umn_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The universal (non-personal) head on features (..., d): what L_umn trains."""
        x = features
        for j, layer in enumerate(self.base):
            x = layer(x)
            if j < len(self.base) - 1:
                x = torch.relu(x)
        return x
