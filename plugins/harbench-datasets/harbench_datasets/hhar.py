"""HHAR, Heterogeneity Activity Recognition (Stisen et al., SenSys 2015; UCI #344): 9 users carrying 8 phones
(4 models) and 4 watches (2 models) at once, each sampling at its own rate.

``Activity recognition exp/{Phones,Watch}_{accelerometer,gyroscope}.csv`` with header
``Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt``. Context = device *model* (input-level drift:
the same movement seen by different hardware). Per (user, device) the accelerometer and gyroscope streams are
put on one clock and linearly resampled onto a uniform ``rate_hz`` grid; the grid stops wherever a stream has a
gap longer than ``max_gap_s``. ``Creation_Time`` (sensor ns) is the clock unless its spacing is implausible for a
device (then ``Arrival_Time`` ms is); ``Arrival_Time`` also maps every device onto the shared wall clock, which
keeps a target's unseen-device test windows out of the time span of its adapt windows (all devices were worn
together). Rows labelled ``null`` are dropped; malformed rows are skipped with a count in a warning.

Class mapping: stand -> standing, sit -> sitting, walk -> walking, stairsup -> upstairs, stairsdown -> downstairs,
bike -> biking.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harbench import ContextInfo, Param

from .base import Parsed, RealDataset, Scan, common_parameters
from .errors import MalformedRecordsWarning
from .segments import Segment, runs
from .signal import covered, interpolate, true_runs

FOLDER = "Activity recognition exp"
HEADER = "Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt"
FILES = {("phones", "acc"): "Phones_accelerometer.csv", ("phones", "gyro"): "Phones_gyroscope.csv",
         ("watches", "acc"): "Watch_accelerometer.csv", ("watches", "gyro"): "Watch_gyroscope.csv"}
MODELS = {"phones": ("nexus4", "s3", "s3mini", "samsungold"), "watches": ("gear", "lgwatch")}
USERS = tuple("abcdefghi")
GT = {"stand": "standing", "sit": "sitting", "walk": "walking", "stairsup": "upstairs", "stairsdown": "downstairs",
      "bike": "biking"}
CLASSES = tuple(GT.values())
_LABEL = {g: i for i, g in enumerate(GT)}
_NULL = -1
_CHUNK = 500_000
_NAME = "S24"  # user, model, device, gt: short ASCII names (the longest, 'samsungold_2', has 12 characters)


@dataclass
class SensorRows:
    """The well-formed rows of one CSV file. ``key`` indexes ``devices``, the distinct (user, model, device)."""

    arrival_s: np.ndarray  # float64
    creation_s: np.ndarray  # float64 (ns / 1e9)
    xyz: np.ndarray  # (n, 3) float32
    key: np.ndarray  # int64 index into ``devices``
    devices: list[tuple[str, str, str]]
    label: np.ndarray  # int64 index into CLASSES, _NULL for null or unknown
    malformed: int

    def rows_of(self) -> dict[tuple[str, str, str], np.ndarray]:
        order = np.argsort(self.key, kind="stable")
        bounds = np.searchsorted(self.key[order], np.arange(len(self.devices) + 1))
        return {d: order[bounds[i]:bounds[i + 1]] for i, d in enumerate(self.devices)}


def _parse_lines_slowly(lines: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """The fallback for a chunk with defects: keep the rows that have 10 fields, numbers and names."""
    good, bad = [], 0
    for line in lines:
        parts = line.strip().split(",")
        try:
            if len(parts) != 10 or not all(parts[6:9]) or not all(p.isascii() and len(p) <= 24 for p in parts[6:]):
                raise ValueError
            numbers = [float(v) for v in parts[1:6]]
            if not np.isfinite(numbers).all():
                raise ValueError
        except ValueError:
            bad += 1
            continue
        good.append(parts)
    if not good:
        return np.zeros((0, 5)), np.zeros((0, 4), dtype=str), bad
    arr = np.array(good, dtype=str)
    return arr[:, 1:6].astype(np.float64), arr[:, 6:10], bad


def _chunk_columns(lines: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """(numbers (n, 5): arrival, creation, x, y, z; strings (n, 4): user, model, device, gt; malformed rows)."""
    try:
        nums = np.loadtxt(lines, delimiter=",", usecols=(1, 2, 3, 4, 5), dtype=np.float64, ndmin=2)
        strs = np.loadtxt(lines, delimiter=",", usecols=(6, 7, 8, 9), dtype=_NAME, ndmin=2)
        if np.isfinite(nums).all() and (np.char.str_len(strs[:, :3]) > 0).all():
            return nums, strs, 0
    except ValueError:
        pass
    nums, strs, bad = _parse_lines_slowly(lines)
    return nums, strs.astype(_NAME), bad


def distinct_rows(strs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each row's distinct value, the distinct rows) of a fixed-width (n, m) bytes array.

    The columns hold a few hundred distinct combinations over millions of rows: hashing each row's bytes to
    64 bits and de-duplicating the integers is much faster than sorting strings. The result is verified, and a
    (never yet seen) hash collision falls back to the exact sort.
    """
    n = len(strs)
    words = np.ascontiguousarray(strs).view(np.uint64).reshape(n, -1)  # S24 = 3 words per field
    h = np.zeros(n, dtype=np.uint64)
    for column in words.T:
        h = h * np.uint64(1_000_003) + column  # wraps modulo 2**64
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    distinct = strs[first]
    if (distinct[inverse] == strs).all():
        return inverse.reshape(-1), distinct
    joined = np.array([b"\x1f".join(row) for row in strs.tolist()])
    _, first, inverse = np.unique(joined, return_index=True, return_inverse=True)
    return inverse.reshape(-1), strs[first]


def read_sensor_csv(path: Path) -> SensorRows:
    """Read in chunks with numpy's C parser: the phone files hold ~13 M rows each."""
    nums_parts, key_parts, label_parts, malformed = [], [], [], 0
    devices: dict[tuple[str, str, str], int] = {}
    with path.open() as f:
        f.readline()  # the header, checked by the dataset
        while True:
            chunk = list(itertools.islice(f, _CHUNK))
            if not chunk:
                break
            lines = [line for line in chunk if line.strip()]
            if not lines:
                continue
            nums, strs, bad = _chunk_columns(lines)
            malformed += bad
            if not len(nums):
                continue
            inverse, distinct = distinct_rows(strs)
            rows = [[v.decode("ascii") for v in row] for row in distinct.tolist()]
            key = np.array([devices.setdefault((u, m, d), len(devices)) for u, m, d, _ in rows], dtype=np.int64)
            label = np.array([_LABEL.get(g, _NULL) for *_, g in rows], dtype=np.int64)
            nums_parts.append(nums)
            key_parts.append(key[inverse])
            label_parts.append(label[inverse])
    nums = np.concatenate(nums_parts) if nums_parts else np.zeros((0, 5))
    return SensorRows(arrival_s=nums[:, 0] / 1e3, creation_s=nums[:, 1] / 1e9, xyz=nums[:, 2:5].astype(np.float32),
                      key=np.concatenate(key_parts) if key_parts else np.zeros(0, np.int64), devices=list(devices),
                      label=np.concatenate(label_parts) if label_parts else np.zeros(0, np.int64),
                      malformed=malformed)


@dataclass
class Stream:
    """One sensor of one device: sorted, de-duplicated times on the device's own clock."""

    t: np.ndarray
    values: np.ndarray  # (3, n)
    label: np.ndarray
    wall_offset: float  # add to ``t`` for the shared wall clock
    clock: str  # "creation" or "arrival"


def make_stream(rows: SensorRows, index: np.ndarray, clock: str) -> Stream:
    t = rows.creation_s[index] if clock == "creation" else rows.arrival_s[index]
    order = np.argsort(t, kind="stable")
    t, first = np.unique(t[order], return_index=True)
    keep = index[order][first]
    offset = float(np.median(rows.arrival_s[keep] - t))
    return Stream(t=t, values=rows.xyz[keep].T, label=rows.label[keep], wall_offset=offset, clock=clock)


def plausible_clock(t: np.ndarray) -> bool:
    """Sensor timestamps whose median spacing means 1-1000 Hz; otherwise the device's epoch/units are broken."""
    dt = np.diff(np.sort(t))
    dt = dt[dt > 0]
    return bool(len(dt)) and 1e-3 <= float(np.median(dt)) <= 1.0


def align_clocks(streams: list[Stream], tolerance_s: float = 1.0) -> list[Stream]:
    """Put every stream on the first one's clock. Sensors of one device normally share it (their offsets to the
    wall clock agree up to arrival jitter, and nothing moves); a stream whose offset differs by more than
    ``tolerance_s`` has its own epoch and is shifted through the wall clock."""
    ref = streams[0].wall_offset
    return [s if abs(s.wall_offset - ref) <= tolerance_s else
            Stream(s.t + (s.wall_offset - ref), s.values, s.label, ref, s.clock) for s in streams]


def device_segments(streams: list[Stream], rate_hz: float, max_gap_s: float) -> list[tuple[int, float, np.ndarray]]:
    """(label, wall-clock start, (3 * len(streams), n) signal) per labelled stretch every stream covers."""
    primary = streams[0]
    out = []
    for a, b in runs(primary.label):
        if primary.label[a] == _NULL or b - a < 2:
            continue
        t_a, t_b = primary.t[a], primary.t[b - 1]
        grid = t_a + np.arange(int(np.floor((t_b - t_a) * rate_hz)) + 1) / rate_hz
        ok = np.ones(len(grid), dtype=bool)
        for s in streams:
            ok &= covered(s.t, grid, max_gap_s)
        for i, j in true_runs(ok):
            if j - i < 2:
                continue
            part = grid[i:j]
            signal = np.concatenate([interpolate(s.t, s.values, part) for s in streams])
            out.append((int(primary.label[a]), float(part[0] + primary.wall_offset), signal))
    return out


class HHAR(RealDataset):
    name = "hhar"
    description = "HHAR activity recognition (9 users, phones/watches of 6 models, 6 activities); context = device model"
    folder = FOLDER
    layout = f"'{FOLDER}/{{Phones,Watch}}_{{accelerometer,gyroscope}}.csv' with header '{HEADER}'"
    classes = CLASSES
    class_mapping = dict(GT)
    parameters = {
        **common_parameters(window=128, stride=64, rate_hz=50.0, adapt_context="nexus4"),
        "devices": Param("phones", "which devices: phones (4 models), watches (2 models) or all",
                         choices=("phones", "watches", "all")),
        "sensors": Param(["acc", "gyro"], "sensors merged per device, 3 channels each (acc, gyro)", type=list[str]),
        "max_gap_s": Param(1.0, "a stream gap longer than this interrupts the resampled grid", ge=0.0),
    }

    def __init__(self, **params):
        super().__init__(**params)
        if not self.params.sensors or any(s not in ("acc", "gyro") for s in self.params.sensors):
            raise ValueError(f"hhar: sensors must be a non-empty subset of ['acc', 'gyro'], got {self.params.sensors}")

    def _families(self) -> list[str]:
        return ["phones", "watches"] if self.params.devices == "all" else [self.params.devices]

    def _locate(self, candidate: Path) -> Path | None:
        return candidate if any((candidate / f).is_file() for f in FILES.values()) else None

    def _files(self, root: Path) -> list[Path]:
        files = [root / FILES[(fam, s)] for fam in self._families() for s in self.params.sensors]
        for f in files:
            if not f.is_file():
                raise self.fail(f"missing '{f.name}' in '{root}'")
        return files

    def _scan(self, root: Path) -> Scan:
        for f in self._files(root):
            with f.open() as fh:
                header = fh.readline().strip()
            if header != HEADER:
                raise self.fail(f"'{f.name}' starts with {header[:80]!r}, not the HHAR header")
        users = USERS  # the user ids live in every row of GBs of CSV: describe() names the documented nine
        models = [m for fam in self._families() for m in MODELS[fam]]
        contexts = tuple(ContextInfo(m, "input", f"{'watch' if m in MODELS['watches'] else 'phone'} model {m}")
                         for m in models)
        channels = tuple(f"{s}_{a}" for s in self.params.sensors for a in "xyz")
        return Scan(users=users, contexts=contexts, channels=channels,
                    extra={"units": [{"acc": "m/s^2", "gyro": "rad/s"}[s] for s in self.params.sensors for _ in "xyz"]})

    def _parse(self, root: Path) -> Parsed:
        segments: list[Segment] = []
        report: dict = {"malformed_rows": 0, "arrival_clock_devices": []}
        for family in self._families():
            tables = [read_sensor_csv(root / FILES[(family, s)]) for s in self.params.sensors]
            report["malformed_rows"] += sum(t.malformed for t in tables)
            groups = [t.rows_of() for t in tables]
            empty = np.zeros(0, dtype=np.int64)
            for user, model, device in sorted({d for g in groups for d in g}):
                index = [g.get((user, model, device), empty) for g in groups]
                if any(len(i) < 2 for i in index) or model not in MODELS[family]:
                    continue
                use_creation = all(plausible_clock(t.creation_s[i]) for t, i in zip(tables, index))
                if not use_creation:
                    report["arrival_clock_devices"].append(f"{user}:{device}")
                clock = "creation" if use_creation else "arrival"
                streams = align_clocks([make_stream(t, i, clock) for t, i in zip(tables, index)])
                for label, wall_t0, signal in device_segments(streams, self.params.rate_hz, self.params.max_gap_s):
                    segments.append(Segment(user=str(user), context=str(model), label=label, signal=signal,
                                            rate_hz=self.params.rate_hz, source=f"user:{user}", t0=wall_t0))
        if report["malformed_rows"]:
            warnings.warn(f"hhar: skipped {report['malformed_rows']} malformed row(s) in '{root}'",
                          MalformedRecordsWarning, stacklevel=2)
        segments.sort(key=lambda s: (s.user, s.context, s.t0))
        report["segments"] = len(segments)
        return Parsed(segments, report)
