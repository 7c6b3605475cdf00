"""MotionSense (Malekzadeh et al.): 24 subjects, iPhone 6s in the front trouser pocket, device motion at 50 Hz.

``A_DeviceMotion_data/<activity>_<trial>/sub_<n>.csv`` (the Kaggle copy nests a second ``A_DeviceMotion_data/``),
header ``,attitude.roll,attitude.pitch,attitude.yaw,gravity.x,...,userAcceleration.z`` (first column an index).

Context = trial. Each trial folder holds one activity, so a context made of one folder would give a target user
adapt data of a single class; the trials are therefore grouped the way they were recorded: ``long`` = trials
1-9 (the first, long recordings of every activity) and ``short`` = trials 11-16 (the second, short recordings).
Both contexts contain all six activities, which makes "adapt on the long trials, test on the short ones" an
unseen-context evaluation. Each CSV is one continuous segment; trials are taken in trial-number order.

Class mapping (folder prefix -> class): dws -> downstairs, ups -> upstairs, wlk -> walking, jog -> jogging,
sit -> sitting, std -> standing.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from harbench import ContextInfo, Param

from .base import Parsed, RealDataset, Scan, common_parameters
from .segments import Segment

FOLDER = "A_DeviceMotion_data"
RATE_HZ = 50.0
PREFIXES = {"dws": "downstairs", "ups": "upstairs", "wlk": "walking", "jog": "jogging", "sit": "sitting",
            "std": "standing"}
CLASSES = tuple(PREFIXES.values())
GROUPS = ("attitude", "gravity", "rotationRate", "userAcceleration")
AXES = {"attitude": ("roll", "pitch", "yaw"), "gravity": "xyz", "rotationRate": "xyz", "userAcceleration": "xyz"}
HEADER = [""] + [f"{g}.{a}" for g in GROUPS for a in AXES[g]]
UNITS = {"attitude": "rad", "gravity": "g", "rotationRate": "rad/s", "userAcceleration": "g"}
LONG_TRIALS = range(1, 10)
CONTEXTS = (ContextInfo("long", None, "trials 1-9: the first, long recording of each activity"),
            ContextInfo("short", None, "trials 11-16: the second, short recording of each activity"))
_TRIAL = re.compile(r"^(dws|ups|wlk|jog|sit|std)_(\d+)$")
_SUBJECT = re.compile(r"^sub_(\d+)\.csv$")


def trial_folders(root: Path) -> list[tuple[int, str, Path]]:
    """(trial number, activity prefix, folder), sorted by trial number."""
    found = []
    for d in root.iterdir():
        m = _TRIAL.match(d.name)
        if m and d.is_dir():
            found.append((int(m.group(2)), m.group(1), d))
    return sorted(found)


def context_of(trial: int) -> str:
    return "long" if trial in LONG_TRIALS else "short"


def user_id(subject: int) -> str:
    return f"sub{subject:02d}"


class MotionSense(RealDataset):
    name = "motionsense"
    description = "MotionSense device motion (24 subjects, pocket iPhone, 50 Hz, 6 activities); context = trial group"
    folder = FOLDER
    layout = f"'{FOLDER}/<dws|ups|wlk|jog|sit|std>_<trial>/sub_<n>.csv' (device-motion CSVs with a header row)"
    classes = CLASSES
    class_mapping = dict(PREFIXES)
    parameters = {
        **common_parameters(window=128, stride=64, rate_hz=RATE_HZ, adapt_context="long"),
        "signals": Param(["userAcceleration", "rotationRate", "gravity"],
                         f"signal groups, 3 channels each ({', '.join(GROUPS)})", type=list[str]),
    }

    def __init__(self, **params):
        super().__init__(**params)
        bad = [s for s in self.params.signals if s not in GROUPS]
        if bad or not self.params.signals:
            raise ValueError(f"motionsense: signals must be a non-empty subset of {list(GROUPS)}, got {bad or '[]'}")

    def _locate(self, candidate: Path) -> Path | None:
        for folder in (candidate, candidate / FOLDER, candidate / FOLDER / FOLDER):
            if folder.is_dir() and trial_folders(folder):
                return folder
        return None

    def _files(self, root: Path) -> list[Path]:
        files = [f for _, _, d in trial_folders(root) for f in sorted(d.iterdir()) if _SUBJECT.match(f.name)]
        if not files:
            raise self.fail(f"no sub_<n>.csv in the trial folders of '{root}'")
        return files

    def _scan(self, root: Path) -> Scan:
        subjects = {int(_SUBJECT.match(f.name).group(1)) for f in self._files(root)}
        channels = tuple(f"{g}_{a}" for g in self.params.signals for a in AXES[g])
        trials = [d.name for _, _, d in trial_folders(root)]
        return Scan(users=tuple(user_id(s) for s in sorted(subjects)), contexts=CONTEXTS, channels=channels,
                    extra={"units": [UNITS[g] for g in self.params.signals for _ in range(3)], "trials": trials})

    def _columns(self) -> list[int]:
        return [HEADER.index(f"{g}.{a}") for g in self.params.signals for a in AXES[g]]

    def _parse(self, root: Path) -> Parsed:
        segments = []
        columns = self._columns()
        for trial, prefix, folder in trial_folders(root):
            for f in sorted(folder.iterdir(), key=lambda p: p.name):
                m = _SUBJECT.match(f.name)
                if not m:
                    continue
                with f.open() as fh:
                    header = [h.strip().strip('"') for h in fh.readline().strip().split(",")]
                if header[1:] != HEADER[1:]:  # the index column's name varies between copies
                    raise self.fail(f"'{folder.name}/{f.name}' header {','.join(header)[:80]!r} is not the "
                                    f"device-motion header")
                data = np.loadtxt(f, delimiter=",", skiprows=1, usecols=columns, dtype=np.float32, ndmin=2)
                segments.append(Segment(user=user_id(int(m.group(1))), context=context_of(trial),
                                        label=CLASSES.index(PREFIXES[prefix]), signal=np.ascontiguousarray(data.T),
                                        rate_hz=RATE_HZ, source=f"{folder.name}/{f.name}"))
        return Parsed(segments, {"segments": len(segments)})
