"""SMLDist for harbench: distil a 1-D MobileNetV3 teacher into a student in three steps (stage, memory, logits) as
the authors' code does, and score the distilled network (optionally personalize it on the device)."""

from .heads import HEAD_MODES, MEMORY_FORMS, AssociativeMemory, CodeHopfieldMemory, IntuitionMemoryHead
from .losses import (
    conditional_targets,
    frequency_attention_loss,
    hinton_loss,
    smldist_logits_loss,
    stage_loss,
)
from .method import VARIANTS, SMLDist
from .networks import CodeNet, NetworkConfig, SMLNet, StageAdapters, build_network

__all__ = [
    "HEAD_MODES", "MEMORY_FORMS", "AssociativeMemory", "CodeHopfieldMemory", "CodeNet", "IntuitionMemoryHead",
    "NetworkConfig", "SMLDist", "SMLNet", "StageAdapters", "VARIANTS", "build_network", "conditional_targets",
    "frequency_attention_loss", "hinton_loss", "smldist_logits_loss", "stage_loss",
]
