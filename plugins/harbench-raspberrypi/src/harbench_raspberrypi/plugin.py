"""Raspberry Pi 4 and 5 targets: profile data in ``profiles/``; agent, estimator and transport from devicekit.

Energy on the board: a Pi 5 reads its PMIC rails through ``vcgencmd pmic_read_adc``; a Pi 4 has no power
telemetry, so it uses an external meter through ``meter_command`` (any program printing watts: a USB-C inline
meter reader, an INA219/INA260 on a second controller) or, failing that, the published utilisation model,
flagged ``utilisation-model`` / modelled in the results.
"""

from __future__ import annotations

from pathlib import Path

from harbench_devicekit import DeviceTarget

from harbench import hookimpl

PROFILES = Path(__file__).parent / "profiles"


class RaspberryPi4(DeviceTarget):
    name = "rpi4"
    description = "Raspberry Pi 4 B (4x Cortex-A72 @ 1.5 GHz): roofline estimate, or measured over SSH"
    profile_name = "rpi4"
    profile_dirs = [PROFILES]


class RaspberryPi5(DeviceTarget):
    name = "rpi5"
    description = "Raspberry Pi 5 (4x Cortex-A76 @ 2.4 GHz): roofline estimate, or measured over SSH (PMIC rails)"
    profile_name = "rpi5"
    profile_dirs = [PROFILES]


@hookimpl
def harbench_register_hardware(register):
    register(RaspberryPi4)
    register(RaspberryPi5)
