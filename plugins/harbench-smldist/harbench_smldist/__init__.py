"""SMLDist for harbench: distil a 1-D MobileNetV3 teacher into a MobileNet student in three steps (stage, memory,
logits), search the best of its heterogeneous heads, then personalize the student on the device."""

from .heads import HEAD_MODES, AssociativeMemory, IntuitionMemoryHead
from .losses import (
    conditional_targets,
    frequency_attention_loss,
    hinton_loss,
    smldist_logits_loss,
    stage_loss,
)
from .networks import NetworkConfig, SMLNet, StageAdapters
from .method import VARIANTS, SMLDist

__all__ = [
    "HEAD_MODES", "AssociativeMemory", "IntuitionMemoryHead", "NetworkConfig", "SMLDist", "SMLNet",
    "StageAdapters", "VARIANTS", "conditional_targets", "frequency_attention_loss", "hinton_loss",
    "smldist_logits_loss", "stage_loss",
]
