"""Measured latencies of NAS-Bench-201 architectures (``arch_index,arch,latency_ms``), read with one-line errors.

Any CSV of that form is accepted (other architectures of the space, other boards). Problems name the file, the
row (1 = the header) and the field, and nothing is half-read: the whole file is checked before it is used.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from .nasbench201 import ArchError, Genotype

COLUMNS = ("arch_index", "arch", "latency_ms")


class MeasurementError(ValueError):
    """A measurements file that cannot be used; the message is one line naming file, row and field."""


@dataclass(frozen=True)
class Measurement:
    row: int  # line in the file (the header is line 1)
    arch_index: int
    arch: str
    genotype: Genotype
    latency_ms: float


@dataclass(frozen=True)
class Measurements:
    path: Path
    sha256: str
    rows: tuple[Measurement, ...]

    def describe(self) -> str:
        return f"{self.path.name} ({len(self.rows)} rows, sha256 {self.sha256[:12]})"


def read_measurements(path: str | Path) -> Measurements:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MeasurementError(f"{path}: not UTF-8 text (expected a CSV with columns {','.join(COLUMNS)})") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise MeasurementError(f"{path}: row 1: missing column {', '.join(missing)} "
                               f"(expected the columns {','.join(COLUMNS)}; found {','.join(header) or 'none'})")
    rows = []
    for line, record in enumerate(reader, start=2):
        where = f"{path}: row {line}"
        try:
            index = int(str(record["arch_index"]).strip())
        except (TypeError, ValueError):
            raise MeasurementError(f"{where}: field arch_index: {record['arch_index']!r} is not an integer") from None
        arch = str(record["arch"] or "").strip()
        try:
            genotype = Genotype.parse(arch)
        except ArchError as exc:
            raise MeasurementError(f"{where}: field arch: {exc}") from None
        try:
            latency = float(str(record["latency_ms"]).strip())
        except (TypeError, ValueError):
            raise MeasurementError(f"{where}: field latency_ms: {record['latency_ms']!r} is not a number") from None
        if not math.isfinite(latency) or latency <= 0:
            raise MeasurementError(f"{where}: field latency_ms: {latency!r} is not a positive latency in ms")
        rows.append(Measurement(line, index, arch, genotype, latency))
    if not rows:
        raise MeasurementError(f"{path}: row 2: no measurements after the header")
    return Measurements(path, hashlib.sha256(data).hexdigest(), tuple(rows))


def require_rows(measurements: Measurements, shots: int, usable: int | None = None, held_out: int = 0) -> None:
    """Calibration needs ``shots`` usable rows, a check ``held_out`` more to score on."""
    have = len(measurements.rows) if usable is None else usable
    if shots < 1:
        raise MeasurementError(f"{measurements.path}: --shots must be at least 1, got {shots}")
    if have < shots + held_out:
        more = f" plus {held_out} to check on" if held_out else ""
        raise MeasurementError(f"{measurements.path}: row {len(measurements.rows) + 1}: field latency_ms: "
                               f"{have} usable rows (at or above --min-ms), fewer than --shots {shots}{more}")
