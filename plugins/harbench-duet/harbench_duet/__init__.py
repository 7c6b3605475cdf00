"""DUET for harbench: tuning-free device-model personalisation by cloud-side parameter generation.

Lv et al., "DUET: A Tuning-Free Device-Cloud Collaborative Parameters Generation Framework for Efficient Device
Model Generalization", WWW 2023 (arXiv 2209.05227).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harbench import lazy_exports

if TYPE_CHECKING:  # the eager imports, for type checkers and editors
    from .generator import GeneratorConfig, ParameterGenerator, run_head
    from .method import Duet

# Imported on first use: the report summary (and so `harbench claims`) must not import torch.
_WHERE: dict[str, str] = {
    **dict.fromkeys(["GeneratorConfig", "ParameterGenerator", "run_head"], ".generator"),
    "Duet": ".method",
}
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = ["Duet", "GeneratorConfig", "ParameterGenerator", "run_head"]
