"""DUET for harbench: tuning-free device-model personalisation by cloud-side parameter generation.

Lv et al., "DUET: A Tuning-Free Device-Cloud Collaborative Parameters Generation Framework for Efficient Device
Model Generalization", WWW 2023 (arXiv 2209.05227).
"""

from .generator import GeneratorConfig, ParameterGenerator, run_head
from .method import Duet

__all__ = ["Duet", "GeneratorConfig", "ParameterGenerator", "run_head"]
