"""Shared by the harbench device plugins (Raspberry Pi, Jetson): the device agent, its SSH transport, the
per-operator roofline estimator with its device profiles, and ``harbench calibrate``."""

from .profiles import DeviceProfile, load_profile
from .roofline import Estimate, estimate
from .target import COMMON_PARAMETERS, DeviceTarget
from .trace import OpTrace, trace_forward, trace_train_step
from .workload import AdaptWorkload

__all__ = ["AdaptWorkload", "COMMON_PARAMETERS", "DeviceProfile", "DeviceTarget", "Estimate", "OpTrace",
           "estimate", "load_profile", "trace_forward", "trace_train_step"]
