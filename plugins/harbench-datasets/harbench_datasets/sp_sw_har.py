"""sp-sw-har (Matey-Sanz, Casteleyn & Granell, Data in Brief 51, 2023; doi:10.5281/zenodo.8398688): 23 subjects
aged 23-66, a smartphone (trouser pocket) and a smartwatch recording the same 223 executions of a
seated -> stand up -> walk -> turn -> walk -> turn -> sit down sequence, 6-axis IMU at ~100 Hz.

``sXX/sXX_YY_sp.csv`` and ``sXX/sXX_YY_sw.csv`` (subject XX, execution YY; header
``x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label``, m/s^2 with gravity, rad/s, UNIX ms, a label per row),
``subjects_info.csv`` (age, gender, height, weight, dominant hand) and ``executions_info.csv`` (the phone's
orientation in the pocket, the direction of the turns).

* Context = device: ``phone``, ``watch`` (input-level drift: another body position and another sensor).
* Session = execution: each file is resampled on its own timestamps (the phone runs at ~102.5 Hz, the watch at
  ~104.4 Hz, never the nominal 100) to ``rate_hz`` (default 50 Hz, boxcar-averaged), and the splitter separates
  adapt and test by whole executions in time order.
* Windows: ``window`` samples (default 50 = 1 s) every ``stride`` (25); a window takes its majority label when
  that label covers at least ``min_purity`` of it (default 0.5, ties dropped); the others are dropped and
  counted (``describe().extra["windows_dropped"]`` and a warning line).
* Phone and watch share the wall clock (``source = user``): an unseen-device window recorded at the moment of an
  adapt window is excluded, and so are the adapt executions as a whole.
* ``targets`` / ``population``: conditions on subject attributes choosing who can be a target and who trains
  the generic model (e.g. ``targets: ['age>=50']``, ``population: ['age<40']``: a subpopulation shift).

Class mapping: SEATED -> seated, STANDING_UP -> standing_up, WALKING -> walking, TURNING -> turning,
SITTING_DOWN -> sitting_down.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from harbench import ContextInfo, DatasetInfo, Param

from .base import Parsed, Scan, common_parameters
from .segments import Segment
from .sessions import SessionDataset, session_parameters
from .timestamped import timestamped_segments

FOLDER = "sp-sw-har"
HEADER = ["x_acc", "y_acc", "z_acc", "x_gyro", "y_gyro", "z_gyro", "timestamp", "label"]
CHANNELS = tuple(HEADER[:6])
UNITS = ["m/s^2"] * 3 + ["rad/s"] * 3
LABELS = {"SEATED": "seated", "STANDING_UP": "standing_up", "WALKING": "walking", "TURNING": "turning",
          "SITTING_DOWN": "sitting_down"}
CLASSES = tuple(LABELS.values())
DEVICES = {"sp": "phone", "sw": "watch"}
CONTEXTS = (ContextInfo("phone", "input", "smartphone in the trouser pocket (orientation per execution)"),
            ContextInfo("watch", "input", "smartwatch on the wrist"))
SUBJECT_FIELDS = ("age", "gender", "height", "weight", "dominant_hand")
_FILE = re.compile(r"^(s\d+)_(\d+)_(sp|sw)\.csv$")


def read_execution(path: Path, fail) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seconds, (6, n) float32 values, (n,) class indices) of one file; ``fail(problem)`` makes the error."""
    import pandas as pd

    name = f"{path.parent.name}/{path.name}"
    try:
        frame = pd.read_csv(path, engine="c")
    except (ValueError, OSError) as exc:
        raise fail(f"cannot read '{name}': {' '.join(str(exc).split())[:120]}") from None
    if list(frame.columns) != HEADER:
        raise fail(f"'{name}' has columns {','.join(map(str, frame.columns))[:90]!r}, not {','.join(HEADER)!r}")
    try:
        numbers = frame.iloc[:, :7].to_numpy(np.float64)
    except (ValueError, TypeError):
        raise fail(f"'{name}': a sensor or timestamp value is not a number") from None
    t = numbers[:, 6] / 1e3
    back = np.flatnonzero(np.diff(t) < 0)
    if len(back):
        raise fail(f"'{name}': timestamps go backwards at row {int(back[0]) + 3}")
    values = numbers[:, :6].astype(np.float32).T
    missing = ~np.isfinite(numbers).all(axis=1)
    if missing.any():
        raise fail(f"'{name}': {int(missing.sum())} row(s) with missing values (first: row "
                   f"{int(np.flatnonzero(missing)[0]) + 2})")
    codes, names = pd.factorize(frame.iloc[:, 7].astype(str))
    unknown = sorted(set(names) - set(LABELS))
    if unknown:
        raise fail(f"'{name}': unknown label(s) {unknown}; known: {list(LABELS)}")
    lookup = np.array([list(LABELS).index(n) for n in names], dtype=np.int64)
    return t, np.ascontiguousarray(values), lookup[codes]


def _read_table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return [{k.strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def _typed(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


class SpSwHar(SessionDataset):
    name = "sp-sw-har"
    description = ("sp-sw-har: smartphone + smartwatch IMU of 23 subjects aged 23-66 (5 activities, ~2 min per "
                   "subject and device); context = device, sessions = executions, subject attributes")
    folder = FOLDER
    layout = (f"'{FOLDER}/sXX/sXX_YY_{{sp,sw}}.csv' (header {','.join(HEADER)}) with subjects_info.csv and "
              f"executions_info.csv beside the sXX folders (doi:10.5281/zenodo.8398688, folder DATA/)")
    classes = CLASSES
    class_mapping = dict(LABELS)
    parameters = {
        **common_parameters(window=50, stride=25, rate_hz=50.0, adapt_context="phone", k=6),
        **session_parameters(attributes=", ".join(SUBJECT_FIELDS)),
        "orientations": Param([], "keep only executions with these phone orientations (back, back_inv, front, "
                              "front_inv); empty = all", type=list[str]),
    }

    def __init__(self, **params):
        super().__init__(**params)
        bad = [o for o in self.params.orientations if o not in ("back", "back_inv", "front", "front_inv")]
        if bad:
            raise ValueError(f"{self.name}: params.orientations {bad} unknown; known: back, back_inv, front, "
                             f"front_inv")

    # ----------------------------------------------------------------------------------------- files
    def _locate(self, candidate: Path) -> Path | None:
        for folder in (candidate, candidate / "DATA"):
            if (folder / "subjects_info.csv").is_file() and any(folder.glob("s[0-9]*/s*_*_s[pw].csv")):
                return folder
        return None

    def _files(self, root: Path) -> list[Path]:
        files = sorted(f for f in root.glob("s[0-9]*/s*_*_s[pw].csv") if _FILE.match(f.name))
        for name in ("subjects_info.csv", "executions_info.csv"):
            if not (root / name).is_file():
                raise self.fail(f"missing '{name}' in '{root}'")
        return [root / "subjects_info.csv", root / "executions_info.csv", *files]

    def _executions(self, root: Path) -> dict[str, dict[str, str]]:
        return {r["execution_id"]: r for r in _read_table(root / "executions_info.csv")}

    def _subjects(self, root: Path) -> dict[str, dict[str, Any]]:
        rows = _read_table(root / "subjects_info.csv")
        if rows and not set(SUBJECT_FIELDS) | {"subject_id"} <= set(rows[0]):
            raise self.fail(f"'subjects_info.csv' lacks columns "
                            f"{sorted(set(SUBJECT_FIELDS) | {'subject_id'} - set(rows[0]))}")
        return {r["subject_id"]: {k: _typed(r[k]) for k in SUBJECT_FIELDS} for r in rows}

    def _scan(self, root: Path) -> Scan:
        files = self._files(root)[2:]
        users = tuple(sorted({_FILE.match(f.name).group(1) for f in files}))
        executions = self._executions(root)
        subjects = self._subjects(root)
        missing = [u for u in users if u not in subjects]
        if missing:
            raise self.fail(f"subjects {missing} have data files but no row in 'subjects_info.csv'")
        return Scan(users=users, contexts=CONTEXTS, channels=CHANNELS,
                    extra={"units": UNITS, "subjects": {u: subjects[u] for u in users},
                           "orientation": {e: r.get("orientation", "") for e, r in executions.items()},
                           "executions": len({f.name[:-7] for f in files}),
                           "labelling": f"majority label of each window, kept when it covers >= "
                                        f"{self.params.min_purity:g} of the window's samples (ties dropped)",
                           "resampling": f"each file on its own timestamps to {self.params.rate_hz:g} Hz "
                                         f"(boxcar mean over one output period)"})

    def _parse(self, root: Path) -> Parsed:
        segments = []
        report: dict[str, Any] = {"files": 0, "rows": 0, "rows_merged": 0, "gaps_cut": 0, "pieces_too_short": 0,
                                  "measured_rate_hz": {}}
        rates: dict[str, list[float]] = {"phone": [], "watch": []}
        wanted = set(self.params.users)
        for f in self._files(root)[2:]:
            user, number, device = _FILE.match(f.name).groups()
            if wanted and user not in wanted:
                continue  # params.users: only the chosen subjects' files are read
            t, values, labels = read_execution(f, self.fail)
            report["files"] += 1
            report["rows"] += len(t)
            if len(t) > 1 and t[-1] > t[0]:
                rates[DEVICES[device]].append((len(t) - 1) / (t[-1] - t[0]))
            segs, facts = timestamped_segments(user=user, context=DEVICES[device], session=f"{user}_{number}",
                                               source=f"user:{user}", t_s=t, values=values, labels=labels,
                                               rate_hz=self.params.rate_hz, max_gap_s=self.params.max_gap_s)
            for k, v in facts.items():
                report[k] += v
            segments += segs
        report["measured_rate_hz"] = {d: round(float(np.mean(r)), 2) for d, r in rates.items() if r}
        segments.sort(key=lambda s: (s.user, s.context, s.t0))
        report["segments"] = len(segments)
        return Parsed(segments, report)

    # ----------------------------------------------------------------------------------------- sessions
    def _attribute_names(self) -> tuple[str, ...]:
        return SUBJECT_FIELDS

    def _attributes(self, root: Path) -> dict[str, dict[str, Any]]:
        return self._subjects(root)

    def _segments(self, parsed: Parsed, info: DatasetInfo) -> list[Segment]:
        if not self.params.orientations:
            return parsed.segments
        keep, orientation = set(self.params.orientations), info.extra["orientation"]
        return [s for s in parsed.segments if orientation.get(s.session) in keep]
