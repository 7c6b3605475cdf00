"""PAMAP2 (UCI #231): 9 subjects, three 100 Hz IMUs (hand, chest, ankle), 12 protocol activities.

``Protocol/subject1NN.dat`` (and ``Optional/``) are space-separated, 54 columns, ``NaN`` for missing values:
timestamp (s), activityID, heart rate, then three 17-column IMU blocks (hand 4-20, chest 21-37, ankle 38-54):
temperature, acc +-16 g, acc +-6 g, gyroscope, magnetometer, orientation (invalid, never used).

Context = IMU position: every window is the 6 (by default) channels of one IMU, so the three positions of one
moment are three windows in three contexts on one shared clock (see ``segments.Segment``). Activity 0
(transient) and ids outside the class map are dropped. A segment is a run of one activity without a time gap
over ``max_gap_s``; NaN dropouts are interpolated per channel, and a segment whose channel is mostly NaN is
dropped and counted (``parse_report``). Signals are resampled from 100 Hz to ``rate_hz`` (50 by default).

Class mapping (activityID -> class): 1 lying, 2 sitting, 3 standing, 4 walking, 5 running, 6 cycling,
7 nordic_walking, 12 ascending_stairs, 13 descending_stairs, 16 vacuum_cleaning, 17 ironing, 24 rope_jumping;
with ``optional: true`` also 9 watching_tv, 10 computer_work, 11 car_driving, 18 folding_laundry,
19 house_cleaning, 20 playing_soccer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from harbench import ContextInfo, Param

from .base import Parsed, RealDataset, Scan, common_parameters
from .segments import Segment, runs
from .signal import fill_nan

FOLDER = "PAMAP2_Dataset"
COLUMNS = 54
RATE_HZ = 100.0
PROTOCOL = {1: "lying", 2: "sitting", 3: "standing", 4: "walking", 5: "running", 6: "cycling", 7: "nordic_walking",
            12: "ascending_stairs", 13: "descending_stairs", 16: "vacuum_cleaning", 17: "ironing", 24: "rope_jumping"}
OPTIONAL = {9: "watching_tv", 10: "computer_work", 11: "car_driving", 18: "folding_laundry", 19: "house_cleaning",
            20: "playing_soccer"}
POSITIONS = {"hand": 3, "chest": 20, "ankle": 37}  # 0-based first column (temperature) of each IMU block
SIGNALS = {"acc16": (1, 4), "acc6": (4, 7), "gyro": (7, 10), "mag": (10, 13)}  # offsets within a block
UNITS = {"acc16": "m/s^2", "acc6": "m/s^2", "gyro": "rad/s", "mag": "uT"}
_FILE = re.compile(r"^subject(1\d\d)\.dat$")


def class_ids(optional: bool) -> list[int]:
    return sorted(PROTOCOL) + (sorted(OPTIONAL) if optional else [])


def read_subject(path: Path, columns: list[int]) -> np.ndarray:
    """The given 0-based columns of one subject file (timestamp and activity first), NaN kept."""
    return np.loadtxt(path, dtype=np.float64, usecols=columns, ndmin=2)


def count_columns(path: Path) -> int:
    with path.open() as f:
        first = f.readline()
    return len(first.split())


class PAMAP2(RealDataset):
    name = "pamap2"
    description = "PAMAP2 protocol (9 subjects, hand/chest/ankle IMUs, 100 Hz, 12 activities); context = IMU position"
    folder = FOLDER
    layout = f"'{FOLDER}/Protocol/subject1NN.dat' (optionally Optional/), {COLUMNS} space-separated columns"
    parameters = {
        **common_parameters(window=128, stride=64, rate_hz=50.0, adapt_context="hand"),
        "positions": Param(list(POSITIONS), "IMU positions to use; each is a context", type=list[str]),
        "signals": Param(["acc16", "gyro"], f"per-IMU signal groups, 3 channels each ({', '.join(SIGNALS)})",
                         type=list[str]),
        "optional": Param(False, "also read Optional/ (6 more activities, classes grow to 18)"),
        "max_gap_s": Param(0.5, "a time gap longer than this ends a segment", ge=0.0),
        "max_nan_fraction": Param(0.5, "drop a segment whose channel is missing more than this fraction", ge=0.0,
                                  le=1.0),
    }
    classes = tuple(PROTOCOL.values())
    class_mapping = {str(k): v for k, v in PROTOCOL.items()}

    def __init__(self, **params):
        super().__init__(**params)
        for field, allowed in (("positions", POSITIONS), ("signals", SIGNALS)):
            bad = [v for v in self.params[field] if v not in allowed]
            if bad or not self.params[field]:
                raise ValueError(f"pamap2: {field} must be a non-empty subset of {list(allowed)}, got {bad or '[]'}")
        ids = class_ids(self.params.optional)
        names = {**PROTOCOL, **OPTIONAL}
        self.classes = tuple(names[i] for i in ids)  # instance attribute: depends on ``optional``
        self.class_mapping = {str(i): names[i] for i in ids}
        self._label_of = {i: n for n, i in enumerate(ids)}

    def _locate(self, candidate: Path) -> Path | None:
        return candidate if (candidate / "Protocol").is_dir() else None

    def _files(self, root: Path) -> list[Path]:
        folders = ["Protocol"] + (["Optional"] if self.params.optional else [])
        files = [f for d in folders if (root / d).is_dir() for f in sorted((root / d).iterdir()) if _FILE.match(f.name)]
        if not any(f.parent.name == "Protocol" for f in files):
            raise self.fail(f"no subject1NN.dat file in '{root / 'Protocol'}'")
        return files

    def _scan(self, root: Path) -> Scan:
        users = sorted({f"s{_FILE.match(f.name).group(1)}" for f in self._files(root)})
        contexts = tuple(ContextInfo(p, "input", f"the {p} IMU") for p in self.params.positions)
        channels = tuple(f"{s}_{a}" for s in self.params.signals for a in "xyz")
        return Scan(users=tuple(users), contexts=contexts, channels=channels,
                    extra={"units": [UNITS[s] for s in self.params.signals for _ in "xyz"]})

    def _columns(self) -> list[int]:
        cols = [0, 1]
        for p in self.params.positions:
            for s in self.params.signals:
                a, b = SIGNALS[s]
                cols += list(range(POSITIONS[p] + a, POSITIONS[p] + b))
        return cols

    def _parse(self, root: Path) -> Parsed:
        segments: list[Segment] = []
        report = {"transient_rows": 0, "other_activity_rows": 0, "dropped_segments_nan": 0, "files": 0}
        per_position = 3 * len(self.params.signals)
        for path in self._files(root):
            columns = count_columns(path)
            if columns != COLUMNS:
                raise self.fail(f"'{path.name}' has {columns} columns, expected {COLUMNS}")
            data = read_subject(path, self._columns())
            report["files"] += 1
            user = f"s{_FILE.match(path.name).group(1)}"
            t, activity = data[:, 0], np.nan_to_num(data[:, 1], nan=-1).astype(np.int64)
            report["transient_rows"] += int((activity == 0).sum())
            known = np.isin(activity, list(self._label_of))
            report["other_activity_rows"] += int((~known & (activity != 0)).sum())
            gap = np.concatenate([[0], np.cumsum(np.diff(t) > self.params.max_gap_s)])
            source = f"{user}:{path.parent.name}"
            for a, b in runs(np.stack([activity, gap], axis=1)):
                if not known[a]:
                    continue
                for pi, position in enumerate(self.params.positions):
                    block = data[a:b, 2 + pi * per_position: 2 + (pi + 1) * per_position].T
                    signal = fill_nan(block, self.params.max_nan_fraction)
                    if signal is None:
                        report["dropped_segments_nan"] += 1
                        continue
                    segments.append(Segment(user=user, context=position, label=self._label_of[int(activity[a])],
                                            signal=signal.astype(np.float32), rate_hz=RATE_HZ, source=source,
                                            t0=float(t[a])))
        report["segments"] = len(segments)
        return Parsed(segments, report)
