"""UCI-HAR ("Human Activity Recognition Using Smartphones", UCI #240): 30 subjects, waist-worn phone, 50 Hz.

Only the raw inertial signals are used (``<split>/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_<split>
.txt``, one 128-sample window per line), with ``y_<split>.txt`` (labels 1-6) and ``subject_<split>.txt``. The
published windows overlap by 50 %; consecutive rows of one subject and activity whose overlapping halves agree are
stitched back into the continuous recording, so that window length and stride are free parameters and the
adapt/test split is by time. Train and test subjects are merged: harbench chooses its own target users.

Contexts: the files carry none. ``context_by: none`` (default) gives one context, ``waist``, so ``test_unseen`` is
empty (acc_unseen = NaN). ``context_by: session`` is a documented heuristic: every subject performed the protocol
twice (phone fixed on the left of the belt, then placed as the subject preferred), so the first run of each
activity of a subject in file order is ``session1`` and any later run ``session2``.

Class mapping: 1 WALKING -> walking, 2 WALKING_UPSTAIRS -> upstairs, 3 WALKING_DOWNSTAIRS -> downstairs,
4 SITTING -> sitting, 5 STANDING -> standing, 6 LAYING -> lying.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harbench import ContextInfo, Param

from .base import Parsed, RealDataset, Scan, common_parameters
from .segments import Segment, runs

FOLDER = "UCI HAR Dataset"
SPLITS = ("train", "test")
SIGNALS = ("body_acc", "body_gyro", "total_acc")
ROW = 128  # samples per published window
HOP = 64  # published windows overlap by 50 %
RATE_HZ = 50.0
LABELS = {1: "WALKING", 2: "WALKING_UPSTAIRS", 3: "WALKING_DOWNSTAIRS", 4: "SITTING", 5: "STANDING", 6: "LAYING"}
CLASSES = ("walking", "upstairs", "downstairs", "sitting", "standing", "lying")
CONTEXTS = {
    "none": (ContextInfo("waist", None, "phone at the waist; UCI-HAR records no context"),),
    "session": (
        ContextInfo("session1", None, "first run of each activity (phone fixed on the left of the belt)"),
        ContextInfo("session2", "input", "second run of each activity (phone placed as the subject preferred)"),
    ),
}
UNITS = {"body_acc": "g", "body_gyro": "rad/s", "total_acc": "g"}


def inertial_file(root: Path, split: str, signal: str, axis: str) -> Path:
    return root / split / "Inertial Signals" / f"{signal}_{axis}_{split}.txt"


def read_ints(path: Path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.int64, ndmin=1)


def stitch_runs(rows: np.ndarray, subjects: np.ndarray, labels: np.ndarray) -> list[tuple[int, int]]:
    """Ranges of consecutive rows that are one continuous recording: same subject and label, and each row's first
    half equals the previous row's second half (the published 50 % overlap)."""
    out = []
    for a, b in runs(np.stack([subjects, labels], axis=1)):
        start = a
        for i in range(a + 1, b):
            if not np.allclose(rows[i - 1][:, HOP:], rows[i][:, : ROW - HOP], rtol=1e-4, atol=1e-6):
                out.append((start, i))
                start = i
        out.append((start, b))
    return out


def session_of_runs(subjects: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row: 0 for the first run of (subject, activity) in file order, 1 for any later run."""
    session = np.zeros(len(labels), dtype=np.int64)
    seen: set[tuple[int, int]] = set()
    for a, b in runs(np.stack([subjects, labels], axis=1)):
        key = (int(subjects[a]), int(labels[a]))
        session[a:b] = 1 if key in seen else 0
        seen.add(key)
    return session


def user_id(subject: int) -> str:
    return f"s{subject:02d}"


class UCIHAR(RealDataset):
    name = "uci-har"
    description = "UCI-HAR raw inertial signals (30 subjects, waist phone, 50 Hz, 6 activities) from a local folder"
    folder = FOLDER
    layout = ("'UCI HAR Dataset/{train,test}/y_<split>.txt, subject_<split>.txt and Inertial Signals/"
              "{body_acc,body_gyro,total_acc}_{x,y,z}_<split>.txt' (128 values per line)")
    classes = CLASSES
    class_mapping = {f"{k} {v}": CLASSES[k - 1] for k, v in LABELS.items()}
    parameters = {
        **common_parameters(window=128, stride=64, rate_hz=RATE_HZ, adapt_context=""),
        "signals": Param(list(SIGNALS), "inertial signal groups, 3 channels each", type=list[str]),
        "context_by": Param("none", "none: one context 'waist'; session: first/second run of each activity",
                            choices=("none", "session")),
    }

    def __init__(self, **params):
        super().__init__(**params)
        bad = [s for s in self.params.signals if s not in SIGNALS]
        if bad or not self.params.signals:
            raise ValueError(f"uci-har: signals must be a non-empty subset of {list(SIGNALS)}, got {bad or '[]'}")

    def _locate(self, candidate: Path) -> Path | None:
        return candidate if any((candidate / s).is_dir() for s in SPLITS) else None

    def _splits(self, root: Path) -> list[str]:
        return [s for s in SPLITS if (root / s).is_dir()]

    def _files(self, root: Path) -> list[Path]:
        files = []
        for split in self._splits(root):
            files += [root / split / f"y_{split}.txt", root / split / f"subject_{split}.txt"]
            files += [inertial_file(root, split, s, a) for s in self.params.signals for a in "xyz"]
        missing = [str(f.relative_to(root)) for f in files if not f.is_file()]
        if missing:
            raise self.fail(f"missing {len(missing)} file(s) under '{root}', first '{missing[0]}'")
        return files

    def _labels(self, root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        y, subjects = read_ints(root / split / f"y_{split}.txt"), read_ints(root / split / f"subject_{split}.txt")
        if len(y) != len(subjects):
            raise self.fail(f"{split}: y_{split}.txt has {len(y)} rows but subject_{split}.txt has {len(subjects)}")
        bad = sorted(set(y.tolist()) - set(LABELS))
        if bad:
            raise self.fail(f"{split}: y_{split}.txt holds labels {bad[:5]} outside 1-6")
        return y, subjects

    def _scan(self, root: Path) -> Scan:
        self._files(root)
        subjects, seconds = set(), dict.fromkeys(CLASSES, 0.0)
        for split in self._splits(root):
            y, s = self._labels(root, split)
            subjects |= set(s.tolist())
            for label, count in zip(*np.unique(y, return_counts=True)):
                seconds[CLASSES[label - 1]] += float(count) * HOP / RATE_HZ
        channels = tuple(f"{s}_{a}" for s in self.params.signals for a in "xyz")
        return Scan(users=tuple(user_id(s) for s in sorted(subjects)), contexts=CONTEXTS[self.params.context_by],
                    channels=channels, class_seconds={c: round(v, 1) for c, v in seconds.items()},
                    extra={"units": [UNITS[s] for s in self.params.signals for _ in "xyz"],
                           "context_by": self.params.context_by})

    def _parse(self, root: Path) -> Parsed:
        segments: list[Segment] = []
        breaks = 0
        for split in self._splits(root):
            y, subjects = self._labels(root, split)
            channels = []
            for s in self.params.signals:
                for a in "xyz":
                    values = np.loadtxt(inertial_file(root, split, s, a), dtype=np.float32, ndmin=2)
                    if values.shape != (len(y), ROW):
                        raise self.fail(f"'{inertial_file(root, split, s, a).relative_to(root)}' has shape "
                                        f"{values.shape}, expected ({len(y)}, {ROW})")
                    channels.append(values)
            rows = np.stack(channels, axis=1)  # (n, C, 128)
            session = session_of_runs(subjects, y)
            label_runs = runs(np.stack([subjects, y], axis=1))
            # a pseudo-clock per subject: rows of one activity run are 1.28 s apart (the published hop), and a
            # full window separates runs, which were recorded apart (nothing overlaps across an activity change)
            run_index = np.repeat(np.arange(len(label_runs)), [b - a for a, b in label_runs])
            clock = (np.arange(len(y)) * HOP + run_index * ROW) / RATE_HZ
            stitched = stitch_runs(rows, subjects, y)
            breaks += len(stitched) - len(label_runs)
            for a, b in stitched:
                signal = np.concatenate([rows[a]] + [rows[i][:, ROW - HOP:] for i in range(a + 1, b)], axis=1)
                context = "waist" if self.params.context_by == "none" else f"session{session[a] + 1}"
                segments.append(Segment(user=user_id(int(subjects[a])), context=context, label=int(y[a]) - 1,
                                        signal=signal, rate_hz=RATE_HZ, source=f"{split}:{subjects[a]}",
                                        t0=float(clock[a])))
        return Parsed(segments, {"segments": len(segments), "discontinuities_within_runs": breaks})
