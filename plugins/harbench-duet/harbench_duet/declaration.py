"""DUET's declared parameters and their choices, apart from the method so that reading them needs no torch.

The report summary names a variant by the parameters in which it departs from these defaults (``duet[hidden=0]``);
``harbench claims`` reads them without importing the method (and so torch). ``Duet.parameters`` is this dict.
"""

from __future__ import annotations

from harbench import Param

from .communication import WIFI_J_PER_BYTE

ENCODERS = ("gru", "meanstd")
FORMS = ("residual", "direct")
ACTIVATIONS = ("tanh", "relu")
GRANULARITIES = ("buffer", "sample")
DECODERS = ("trained", "frozen")

PARAMETERS: dict[str, Param] = {
    "buffer_size": Param(16, "N: unlabelled windows in the device's real-time buffer", ge=1),
    "buffer_select": Param("recent", "buffer = the most recent windows of the device's stream (paper), or windows "
                           "spread evenly over it (ablation)", choices=("recent", "spread")),
    "upload": Param("embedding", "what the device uploads: backbone embeddings of the buffer, or raw windows",
                    choices=("embedding", "raw")),
    "encoder": Param("gru", "buffer encoder: a GRU (authors' code) or mean+std pooling", choices=ENCODERS),
    "form": Param("residual", "W = W_umn + dW(z) (stable) or W = W(z) (direct)", choices=FORMS),
    "hidden": Param(32, "hidden width of the generated head d -> h -> classes (two dynamic layers, as the released "
                    "code; 0 = one layer d -> classes, the generic head's form)", ge=0),
    "activation": Param("tanh", "nonlinearity between generated layers (Tanh: paper and released code)",
                        choices=ACTIVATIONS),
    "generate": Param("buffer", "one head per buffer, or one head per sample generated from the buffer followed "
                      "by that sample (the paper's per-sample generation)", choices=GRANULARITIES),
    "decoders": Param("trained", "parameter decoders trained (the paper's intent) or frozen at their random init "
                      "(what the released code does: its decoders live in plain Python lists)", choices=DECODERS),
    "z_dim": Param(32, "size of the buffer code z", ge=1),
    "delta_scale": Param(0.1, "scale of the generated residual dW (residual form; 0 = the universal head alone)",
                         ge=0.0),
    "swa": Param(False, "stable weight adapter over sub-buffers (ablation; not in the released code)"),
    "swa_subbuffers": Param(4, "sub-buffers the SWA attends over", ge=1),
    "virtual_devices": Param(0, "transformed copies of each population device added to the episodes (a prior "
                             "about the data: new-person traits matched to the synthetic generator; 0 = the "
                             "population as recorded, the paper)", ge=0),
    "virtual_strength": Param(1.0, "scale of the virtual devices' rotation/gain/tempo/amplitude changes", ge=0.0),
    "umn_steps": Param(300, "pre-training steps of the universal head on population features (hidden > 0)", ge=0),
    "episodes": Param(600, "training episodes (meta-batches) in prepare", ge=0),
    "meta_batch": Param(8, "devices per episode", ge=1),
    "query_size": Param(32, "labelled query windows per device and episode", ge=1),
    "lr": Param(1e-3, "generator learning rate (Adam)", ge=0.0),
    "weight_decay": Param(1e-4, "generator weight decay", ge=0.0),
    "umn_weight": Param(1.0, "lambda: weight of the universal head's loss L_umn", ge=0.0),
    "backbone_mode": Param("frozen", "backbone during prepare: frozen (paper Fig. 1c) or joint (authors' code)",
                           choices=("frozen", "joint")),
    "backbone_lr": Param(1e-4, "backbone learning rate when backbone_mode=joint", ge=0.0),
    "eval_every": Param(50, "episodes between validation checks", ge=1),
    "val_fraction": Param(0.25, "share of population users held out for checkpoint selection", ge=0.0, le=0.9),
    "select_by": Param("loss", "checkpoint selection score on validation users", choices=("loss", "accuracy")),
    "select_initial": Param(False, "also score the untrained generator (episode 0) as a checkpoint candidate "
                            "(harbench's earlier choice; the authors' code selects among trained epochs only)"),
    "radio_j_per_byte": Param(WIFI_J_PER_BYTE, "radio energy per byte when the hardware gives none "
                              "(default: Wi-Fi 0.007 J/KB, Balasubramanian et al. IMC 2009)", ge=0.0),
}
