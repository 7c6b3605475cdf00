"""What DUET moves between device and cloud, and what moving it costs the device's radio.

The energy per byte comes from the hardware target when it models its radio (``ctx.radio_joules_per_byte``);
otherwise the method's own ``radio_j_per_byte`` parameter is used, whose default is the Wi-Fi transfer energy
measured on a phone by Balasubramanian, Balasubramanian and Venkataramani, "Energy consumption in mobile phones:
a measurement study and implications for network applications", IMC 2009: their Wi-Fi model is
E(x) = 0.007 J/KB * x + 5.9 J (x in KB), the 5.9 J being a one-off scan/association that an already connected
device does not pay, so only the per-KB term is charged. Their 3G figure (0.025 J/KB plus a 0.62 J/s tail) would
raise the cost about 4x; the cost stays small either way because a generated head is a few kilobytes.
"""

from __future__ import annotations

from dataclasses import dataclass

WIFI_J_PER_BYTE = 0.007 / 1024
WIFI_SOURCE = "Wi-Fi 0.007 J/KB (Balasubramanian et al., IMC 2009), one-off association energy excluded"
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class Communication:
    bytes_up: int  # device -> cloud: the buffer's embeddings or raw windows
    bytes_down: int  # cloud -> device: the generated head
    j_per_byte: float
    source: str

    @property
    def joules(self) -> float:
        return (self.bytes_up + self.bytes_down) * self.j_per_byte


def communication(
    bytes_up: int, bytes_down: int, hardware_j_per_byte: float | None, hardware_name: str | None,
    fallback_j_per_byte: float,
) -> Communication:
    """Prefer the hardware target's radio model; fall back to the method parameter (documented above)."""
    if hardware_j_per_byte is not None:
        return Communication(bytes_up, bytes_down, hardware_j_per_byte, f"hardware:{hardware_name or '?'}")
    source = WIFI_SOURCE if fallback_j_per_byte == WIFI_J_PER_BYTE else "method parameter radio_j_per_byte"
    return Communication(bytes_up, bytes_down, fallback_j_per_byte, source)
