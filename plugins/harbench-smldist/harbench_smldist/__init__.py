"""SMLDist for harbench: distil a 1-D MobileNetV3 teacher into a student in three steps (stage, memory, logits) as
the authors' code does, and score the distilled network (optionally personalize it on the device)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harbench import lazy_exports

if TYPE_CHECKING:  # the eager imports, for type checkers and editors
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

# Imported on first use: the report summary (and so `harbench claims`) must not import torch.
_WHERE: dict[str, str] = {
    **dict.fromkeys(["HEAD_MODES", "MEMORY_FORMS", "AssociativeMemory", "CodeHopfieldMemory", "IntuitionMemoryHead"], ".heads"),
    **dict.fromkeys(["conditional_targets", "frequency_attention_loss", "hinton_loss", "smldist_logits_loss", "stage_loss"], ".losses"),
    **dict.fromkeys(["VARIANTS", "SMLDist"], ".method"),
    **dict.fromkeys(["CodeNet", "NetworkConfig", "SMLNet", "StageAdapters", "build_network"], ".networks"),
}
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "HEAD_MODES", "MEMORY_FORMS", "AssociativeMemory", "CodeHopfieldMemory", "CodeNet", "IntuitionMemoryHead",
    "NetworkConfig", "SMLDist", "SMLNet", "StageAdapters", "VARIANTS", "build_network", "conditional_targets",
    "frequency_attention_loss", "hinton_loss", "smldist_logits_loss", "stage_loss",
]
