"""WISDM v1.1 (Kwapisz et al. 2010): 36 users, phone in the front pants pocket, accelerometer at 20 Hz.

``WISDM_ar_v1.1_raw.txt`` holds records ``user,activity,timestamp,x,y,z;`` with known defects: the trailing ``;``,
several records on one line, records broken across lines, empty fields. The parser splits the whole text on ``;``;
a chunk that spans lines is either several records (each line parses) or one broken record (the lines joined
parse); anything else is skipped and counted, and one :class:`MalformedRecordsWarning` says how many.

Records are in time order per user; a segment is a run of consecutive records of one user and activity, cut where
two non-zero timestamps (ns) jump backwards or by more than ``max_gap_s`` (some timestamps are 0; they never cut).

Contexts: none are recorded; one context, ``pocket``, so ``test_unseen`` is empty (acc_unseen = NaN).

Class mapping: Walking -> walking, Jogging -> jogging, Upstairs -> upstairs, Downstairs -> downstairs,
Sitting -> sitting, Standing -> standing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harbench import ContextInfo, Param

from .base import Parsed, RealDataset, Scan, common_parameters
from .errors import MalformedRecordsWarning
from .segments import Segment, runs

FOLDER = "WISDM_ar_v1.1"
RAW_FILE = "WISDM_ar_v1.1_raw.txt"
RATE_HZ = 20.0
ACTIVITIES = ("Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing")
CLASSES = tuple(a.lower() for a in ACTIVITIES)
_ACTIVITY_INDEX = {a: i for i, a in enumerate(ACTIVITIES)}


@dataclass
class Records:
    """The well-formed records of a raw file, in file order."""

    user: np.ndarray  # int64
    activity: np.ndarray  # int64 index into ACTIVITIES
    timestamp: np.ndarray  # int64 ns (0 when unknown)
    xyz: np.ndarray  # (n, 3) float32, m/s^2 with gravity
    malformed: int
    repaired: int
    example: str  # the first skipped record, for the warning


def _record(text: str) -> tuple[int, int, int, float, float, float] | None:
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != 6 or fields[1] not in _ACTIVITY_INDEX:
        return None
    try:
        user, timestamp = int(fields[0]), int(fields[2])
        x, y, z = float(fields[3]), float(fields[4]), float(fields[5])
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in (x, y, z)):
        return None
    return user, _ACTIVITY_INDEX[fields[1]], timestamp, x, y, z


def parse_raw(text: str) -> Records:
    good: list[tuple] = []
    malformed = repaired = 0
    example = ""
    for chunk in text.split(";"):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        parsed = [_record(line) for line in lines]
        if len(lines) > 1 and not all(parsed):
            joined = _record("".join(lines))
            if joined is not None:
                good.append(joined)
                repaired += 1
                continue
        for line, rec in zip(lines, parsed):
            if rec is None:
                malformed += 1
                example = example or line
            else:
                good.append(rec)
    arr = np.array(good, dtype=np.float64).reshape(-1, 6)
    return Records(user=arr[:, 0].astype(np.int64), activity=arr[:, 1].astype(np.int64),
                   timestamp=np.array([g[2] for g in good], dtype=np.int64),
                   xyz=arr[:, 3:].astype(np.float32), malformed=malformed, repaired=repaired, example=example)


def cut_points(timestamp: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Indices i where a new segment starts at record i because the clock jumped (0 = unknown, never cuts)."""
    if len(timestamp) < 2 or max_gap_s <= 0:
        return np.zeros(0, dtype=np.int64)
    prev, cur = timestamp[:-1], timestamp[1:]
    known = (prev != 0) & (cur != 0)
    dt = (cur - prev) / 1e9
    return np.flatnonzero(known & ((dt < 0) | (dt > max_gap_s))) + 1


def user_id(user: int) -> str:
    return f"u{user:02d}"


class WISDM(RealDataset):
    name = "wisdm"
    description = "WISDM v1.1 raw accelerometer (36 users, pocket phone, 20 Hz, 6 activities) from a local file"
    folder = FOLDER
    layout = f"'{FOLDER}/{RAW_FILE}' with records 'user,activity,timestamp,x,y,z;'"
    classes = CLASSES
    class_mapping = {a: a.lower() for a in ACTIVITIES}
    parameters = {
        **common_parameters(window=80, stride=40, rate_hz=RATE_HZ, adapt_context="pocket"),
        "max_gap_s": Param(1.0, "a timestamp jump larger than this (or backwards) starts a new segment; 0 = never",
                           ge=0.0),
    }

    def _locate(self, candidate: Path) -> Path | None:
        if candidate.is_file() and candidate.name == RAW_FILE:
            return candidate.parent
        return candidate if (candidate / RAW_FILE).is_file() else None

    def _files(self, root: Path) -> list[Path]:
        return [root / RAW_FILE]

    def _records(self, root: Path) -> Records:
        text = (root / RAW_FILE).read_text(encoding="utf-8", errors="replace")
        records = parse_raw(text)
        if not len(records.user):
            raise self.fail(f"'{root / RAW_FILE}' holds no well-formed record")
        if records.malformed:
            warnings.warn(f"wisdm: skipped {records.malformed} malformed record(s) in '{root / RAW_FILE}' "
                          f"(first: {records.example[:60]!r}); repaired {records.repaired} broken across lines",
                          MalformedRecordsWarning, stacklevel=2)
        return records

    def _scan(self, root: Path) -> Scan:
        # the user ids live inside the one file: the cheap look *is* the parse (a few seconds; cached)
        parsed = self.parsed()
        users = sorted({s.user for s in parsed.segments})
        return Scan(users=tuple(users), contexts=(ContextInfo("pocket", None, "front pants pocket; WISDM v1.1 "
                                                              "records no context"),),
                    channels=("acc_x", "acc_y", "acc_z"), extra={"units": ["m/s^2"] * 3})

    def _parse(self, root: Path) -> Parsed:
        r = self._records(root)
        keys = np.stack([r.user, r.activity], axis=1)
        bounds = sorted({b for ab in runs(keys) for b in ab} | set(cut_points(r.timestamp, self.params.max_gap_s)))
        segments = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            t0 = r.timestamp[a] / 1e9 if r.timestamp[a] else 0.0
            segments.append(Segment(user=user_id(int(r.user[a])), context="pocket", label=int(r.activity[a]),
                                    signal=np.ascontiguousarray(r.xyz[a:b].T), rate_hz=RATE_HZ,
                                    source=f"segment:{len(segments)}", t0=t0))
        report = {"records": int(len(r.user)), "malformed": r.malformed, "repaired": r.repaired,
                  "segments": len(segments)}
        return Parsed(segments, report)
