"""Jetson AGX Xavier target: GPU (default) or CPU, in one of its nvpmodel power modes.

The power mode scales the estimate (clock caps in ``profiles/jetson-xavier-agx.yaml``). In remote mode the agent
does not change the mode (that needs root and affects other users): it records ``nvpmodel -q``, live clocks and
whether ``jetson_clocks`` pinned them, and the result says whether the device was in the requested mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from harbench_devicekit import COMMON_PARAMETERS, DeviceTarget

from harbench import InferenceCost, Param, PhaseCost, hookimpl

PROFILES = Path(__file__).parent / "profiles"
POWER_MODES = ("MAXN", "10W", "15W", "30W", "30W_6CORE", "30W_4CORE", "30W_2CORE")
NVPMODEL_NAMES = {"30W": "MODE_30W_ALL", "30W_6CORE": "MODE_30W_6CORE", "30W_4CORE": "MODE_30W_4CORE",
                  "30W_2CORE": "MODE_30W_2CORE", "10W": "MODE_10W", "15W": "MODE_15W", "MAXN": "MAXN"}


class JetsonXavierAgx(DeviceTarget):
    name = "jetson-xavier-agx"
    description = "NVIDIA Jetson AGX Xavier (Volta GPU / 8x Carmel) in an nvpmodel power mode"
    profile_name = "jetson-xavier-agx"
    profile_dirs = [PROFILES]
    compute_unit = "gpu"
    parameters = {
        **COMMON_PARAMETERS,
        "power_mode": Param("MAXN", "nvpmodel power mode (estimate: its clock caps; remote: checked, not set)",
                            choices=POWER_MODES),
        "unit": Param("gpu", "run on the Volta GPU (CUDA torch) or the Carmel CPU", choices=("gpu", "cpu")),
    }

    def _mode_check(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Whether the device's ``nvpmodel -q`` matched the requested mode (None when it could not be read)."""
        reported = ((extra.get("state_start") or {}).get("power_mode") or {}).get("name")
        expected = NVPMODEL_NAMES[self.params.power_mode]
        extra["power_mode_requested"] = self.params.power_mode
        extra["power_mode_matches"] = None if reported is None else reported.upper() == expected.upper()
        return extra

    def _remote_inference(self, model: torch.nn.Module, example: torch.Tensor) -> InferenceCost:
        cost = super()._remote_inference(model, example)
        self._mode_check(cost.extra)
        return cost

    def _remote_adapt(self, model, workload, window, common) -> PhaseCost:
        cost = super()._remote_adapt(model, workload, window, common)
        self._mode_check(cost.extra)
        return cost


@hookimpl
def harbench_register_hardware(register):
    register(JetsonXavierAgx)
