"""Tiny fabricated copies of the real datasets, in exactly their on-disk layouts (with their known defects).

Used by the tests, and handy for trying ``suites/real-data.yaml`` without the real data: point ``path`` at the
folder a function returns. Signals are deterministic: a per-activity oscillation plus a per-user offset and
noise, so a model can learn from them but nothing about real performance should be read into it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _signal(rng: np.random.Generator, activity: int, user: int, channels: int, n: int, rate: float) -> np.ndarray:
    t = np.arange(n) / rate
    freq = 0.5 + 0.4 * activity
    phase = rng.uniform(0, 2 * np.pi, channels)[:, None]
    base = np.sin(2 * np.pi * freq * t[None, :] + phase) * (1 + 0.2 * activity)
    return (base + 0.1 * user + rng.normal(0, 0.1, (channels, n))).astype(np.float64)


def _e3(v: float) -> str:
    """UCI-HAR's number format: 7 decimals and a three-digit exponent, e.g. 2.8858451e-001."""
    mantissa, exponent = f"{v:.7e}".split("e")
    return f"{mantissa}e{int(exponent):+04d}"


# ------------------------------------------------------------------------------------------------ UCI-HAR
UCI_ORDER = (5, 4, 6, 1, 3, 2)  # the protocol order of the real files: standing, sitting, laying, walking, ...


def uci_har(parent: Path, subjects: dict[str, list[int]] | None = None, rows_per_run: int = 5, sessions: int = 2,
            broken: tuple[str, int] | None = None) -> Path:
    """Write ``UCI HAR Dataset/`` with 9 inertial files per split. Each subject performs every activity
    ``sessions`` times, each run ``rows_per_run`` published windows (128 samples, 50 % overlap). ``broken`` =
    (split, row): that row does not continue the previous one (a discontinuity the loader must detect)."""
    subjects = subjects or {"train": [1, 3], "test": [2]}
    root = parent / "UCI HAR Dataset"
    rng = np.random.default_rng(0)
    signals = [f"{s}_{a}" for s in ("body_acc", "body_gyro", "total_acc") for a in "xyz"]
    for split, ids in subjects.items():
        rows, ys, subs = [], [], []
        for subject in ids:
            for _ in range(sessions):
                for label in UCI_ORDER:
                    n = 128 + 64 * (rows_per_run - 1)
                    sig = _signal(rng, label, subject, 9, n, 50.0)
                    for r in range(rows_per_run):
                        rows.append(sig[:, 64 * r: 64 * r + 128])
                        ys.append(label)
                        subs.append(subject)
        if broken and broken[0] == split:
            rows[broken[1]] = rows[broken[1]] + 5.0
        folder = root / split / "Inertial Signals"
        folder.mkdir(parents=True, exist_ok=True)
        for c, name in enumerate(signals):
            lines = ["  " + "  ".join(_e3(v) for v in row[c]) for row in rows]
            (folder / f"{name}_{split}.txt").write_text("\n".join(lines) + "\n")
        (root / split / f"y_{split}.txt").write_text("".join(f"{y}\n" for y in ys))
        (root / split / f"subject_{split}.txt").write_text("".join(f"{s}\n" for s in subs))
        (root / split / f"X_{split}.txt").write_text("".join("  " + _e3(0.1) + "\n" for _ in ys))
    (root / "activity_labels.txt").write_text(
        "1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n6 LAYING\n")
    return root


# ------------------------------------------------------------------------------------------------ WISDM
WISDM_ACTIVITIES = ("Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing")


def wisdm(parent: Path, users: tuple[int, ...] = (1, 2, 3), records_per_activity: int = 200,
          defects: bool = True) -> tuple[Path, int]:
    """Write ``WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt``; return (folder, number of malformed records written).

    Defects (as in the real file): every record ends in ';', a line that holds two records, a record broken
    across two lines (repairable), a record with an empty z (``...,;``) and a truncated record (both skipped).
    """
    root = parent / "WISDM_ar_v1.1"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    lines: list[str] = []
    malformed = 0
    t = 49105962326000
    for user in users:
        for a, activity in enumerate(WISDM_ACTIVITIES):
            sig = _signal(rng, a, user, 3, records_per_activity, 20.0) * 4 + np.array([[0.0], [9.8], [0.0]])
            records = [f"{user},{activity},{t + i * 50_000_000},{x:.8g},{y:.8g},{z:.8g}"
                       for i, (x, y, z) in enumerate(sig.T)]
            t += records_per_activity * 50_000_000 + 10**12  # the next activity starts later
            if defects and user == users[0] and a == 0:
                lines.append(records[0] + ";" + records[1] + ";")  # two records on one line
                cut = len(records[2]) - 4
                lines += [records[2][:cut], records[2][cut:] + ";"]  # one record broken across lines
                lines.append(records[3].rsplit(",", 1)[0] + ",;")  # empty z
                lines.append(f"{user},{activity},;")  # truncated
                malformed += 2
                records = records[4:]
            lines += [r + ";" for r in records]
    (root / "WISDM_ar_v1.1_raw.txt").write_text("\n".join(lines) + "\n")
    (root / "readme.txt").write_text("WISDM v1.1 (fabricated)\n")
    return root, malformed


# ------------------------------------------------------------------------------------------------ PAMAP2
PAMAP2_PROTOCOL = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)


def pamap2(parent: Path, subjects: tuple[int, ...] = (101, 102, 103), seconds_per_activity: float = 4.0,
           activities: tuple[int, ...] = (1, 4, 12), nan_dropouts: bool = True) -> Path:
    """Write ``PAMAP2_Dataset/Protocol/subject1NN.dat``: 54 space-separated columns at 100 Hz, transient
    activity 0 between activities, heart rate mostly NaN, and short NaN dropouts in the IMU channels."""
    root = parent / "PAMAP2_Dataset"
    (root / "Protocol").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for subject in subjects:
        blocks, t0 = [], 5.0
        for activity in (0,) + tuple(x for a in activities for x in (a, 0)):
            n = int((1.0 if activity == 0 else seconds_per_activity) * 100)
            rows = np.full((n, 54), np.nan)
            rows[:, 0] = t0 + np.arange(n) / 100.0
            rows[:, 1] = activity
            rows[::11, 2] = 100 + activity  # heart rate at ~9 Hz
            for base in (3, 20, 37):  # hand, chest, ankle
                imu = _signal(rng, activity, subject - 100, 13, n, 100.0)
                rows[:, base] = 32.0
                rows[:, base + 1: base + 14] = imu.T * (1 + base / 37)
                rows[:, base + 13: base + 17] = (1.0, 0.0, 0.0, 0.0)  # orientation (invalid)
            if nan_dropouts and activity:
                rows[n // 2: n // 2 + 3, 3 + 1: 3 + 13] = np.nan  # a 30 ms dropout of the hand IMU
            blocks.append(rows)
            t0 = rows[-1, 0] + 0.01
        data = np.concatenate(blocks)
        text = "\n".join(" ".join("NaN" if np.isnan(v) else f"{v:.6g}" for v in row) for row in data)
        (root / "Protocol" / f"subject{subject}.dat").write_text(text + "\n")
    return root


# ------------------------------------------------------------------------------------------------ HHAR
HHAR_HEADER = "Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt"
HHAR_PHONES = {"nexus4_1": ("nexus4", 100.0), "s3_1": ("s3", 75.0), "s3mini_1": ("s3mini", 60.0),
               "samsungold_1": ("samsungold", 50.0)}
HHAR_WATCHES = {"gear_1": ("gear", 80.0), "lgwatch_1": ("lgwatch", 100.0)}


def hhar(parent: Path, users: tuple[str, ...] = ("a", "b", "c"), seconds_per_activity: float = 6.0,
         activities: tuple[str, ...] = ("stand", "walk", "bike"), malformed_rows: int = 1,
         separate_sensor_clocks: bool = False) -> Path:
    """Write ``Activity recognition exp/{Phones,Watch}_{accelerometer,gyroscope}.csv``: every device of a user
    records at once, each model at its own rate, with its own sensor clock (Creation_Time ns from a per-device
    epoch) and the shared Arrival_Time (ms). 'null' rows separate activities; ``malformed_rows`` rows per file
    are broken. ``separate_sensor_clocks`` gives a device's gyroscope another epoch than its accelerometer."""
    root = parent / "Activity recognition exp"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for family, devices in (("Phones", HHAR_PHONES), ("Watch", HHAR_WATCHES)):
        for sensor in ("accelerometer", "gyroscope"):
            lines, index = [HHAR_HEADER], 0
            for u, user in enumerate(users):
                wall0 = 1424696633908 + u * 10**7  # ms
                for device, (model, rate) in devices.items():
                    # device-specific sensor clock (ns), shared by its two sensors unless asked otherwise
                    clock_seed = [u, list(devices).index(device)] + ([sensor == "gyroscope"] if separate_sensor_clocks else [])
                    epoch = int(np.random.default_rng(clock_seed).integers(10**12, 10**15))
                    wall = float(wall0)
                    for activity in tuple(x for a in activities for x in ("null", a)):
                        seconds = 1.0 if activity == "null" else seconds_per_activity
                        n = int(seconds * rate)
                        label = 0 if activity == "null" else 1 + activities.index(activity)
                        sig = _signal(rng, label, u, 3, n, rate)
                        for i in range(n):
                            t_ms = wall + 1000.0 * i / rate
                            creation = epoch + int(round((t_ms - wall0) * 1e6)) + (0 if sensor[0] == "a" else 1000)
                            arrival = int(t_ms + rng.integers(0, 20))
                            x, y, z = sig[:, i]
                            lines.append(f"{index},{arrival},{creation},{x:.6f},{y:.6f},{z:.6f},{user},{model},"
                                         f"{device},{activity}")
                            index += 1
                        wall += 1000.0 * seconds
            for k in range(malformed_rows):
                lines.insert(5 + k, f"{index + k},1424696633908,,1.0,2.0,a,nexus4")
            (root / f"{family}_{sensor}.csv").write_text("\n".join(lines) + "\n")
    return root


# ------------------------------------------------------------------------------------------------ MotionSense
MOTIONSENSE_TRIALS = ("dws_1", "dws_2", "dws_11", "ups_3", "ups_4", "ups_12", "wlk_7", "wlk_8", "wlk_15", "jog_9",
                      "jog_16", "sit_5", "sit_13", "std_6", "std_14")
MOTIONSENSE_HEADER = (",attitude.roll,attitude.pitch,attitude.yaw,gravity.x,gravity.y,gravity.z,rotationRate.x,"
                      "rotationRate.y,rotationRate.z,userAcceleration.x,userAcceleration.y,userAcceleration.z")


def motionsense(parent: Path, subjects: tuple[int, ...] = (1, 2, 3), seconds: float = 6.0,
                trials: tuple[str, ...] = MOTIONSENSE_TRIALS, kaggle: bool = False) -> Path:
    """Write ``A_DeviceMotion_data/<activity>_<trial>/sub_<n>.csv`` (``kaggle``: nested one level deeper)."""
    root = parent / "A_DeviceMotion_data"
    data = root / "A_DeviceMotion_data" if kaggle else root
    rng = np.random.default_rng(4)
    prefixes = ("dws", "ups", "wlk", "jog", "sit", "std")
    for trial in trials:
        folder = data / trial
        folder.mkdir(parents=True, exist_ok=True)
        activity = prefixes.index(trial.split("_")[0])
        for s in subjects:
            n = int(seconds * 50)
            sig = _signal(rng, activity, s, 12, n, 50.0)
            rows = [MOTIONSENSE_HEADER] + [f"{i}," + ",".join(f"{v:.6f}" for v in sig[:, i]) for i in range(n)]
            (folder / f"sub_{s}.csv").write_text("\n".join(rows) + "\n")
    return root


# ------------------------------------------------------------------------------------------------ sp-sw-har
SP_SW_HAR_SEQUENCE = (("SEATED", 2.0), ("STANDING_UP", 1.5), ("WALKING", 2.5), ("TURNING", 1.2), ("WALKING", 2.5),
                      ("TURNING", 1.2), ("SITTING_DOWN", 1.5))
SP_SW_HAR_RATES = {"sp": 102.5, "sw": 104.4}  # the real devices' measured rates, never the nominal 100 Hz


def sp_sw_har(parent: Path, subjects: dict[str, int] | None = None, executions: int = 4,
              sine_hz: float | None = None, orientations: tuple[str, ...] = ("back", "front")) -> Path:
    """Write ``sp-sw-har/`` as the real deposit lays it out: ``sXX/sXX_YY_{sp,sw}.csv`` (m/s^2, rad/s, UNIX ms
    timestamps with the real files' jitter and repeated milliseconds, a label per row), ``subjects_info.csv``
    (``subjects``: id -> age) and ``executions_info.csv``. Each execution is the protocol's sequence
    (:data:`SP_SW_HAR_SEQUENCE`, 12.4 s). ``sine_hz``: channel 0 is exactly sin(2 pi f t) at each row's true time
    (to check resampling on the timestamps)."""
    subjects = subjects or {"s01": 25, "s02": 35, "s03": 52, "s04": 61}
    root = parent / "sp-sw-har"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["subject_id,age,gender,height,weight,dominant_hand,executions"]
    exec_rows = ["execution_id,orientation,first_turn,second_turn"]
    duration = sum(d for _, d in SP_SW_HAR_SEQUENCE)
    for u, (subject, age) in enumerate(subjects.items()):
        rows.append(f"{subject},{age},{'MF'[u % 2]},{160 + u},{60 + u},{'RL'[u % 3 == 2]},{executions}")
        (root / subject).mkdir(exist_ok=True)
        for e in range(1, executions + 1):
            exec_rows.append(f"{subject}_{e:02d},{orientations[e % len(orientations)]},l,r")
            start = 1_657_533_977.0 + 3600.0 * u + 60.0 * e
            for device, rate in SP_SW_HAR_RATES.items():
                n = int(duration * rate)
                t = start + (0.003 if device == "sw" else 0.0) + np.arange(n) / rate
                stamps = np.floor((t + rng.uniform(-0.0015, 0.0015, n)) * 1e3)
                stamps[20::20] = stamps[19:-1:20]  # rows delivered in a burst repeat a millisecond, as in the real files
                stamps = np.maximum.accumulate(stamps).astype(np.int64)  # jittery, repeated, never backwards
                bounds = np.cumsum([0.0] + [d for _, d in SP_SW_HAR_SEQUENCE]) + start
                which = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(SP_SW_HAR_SEQUENCE) - 1)
                lines = ["x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label"]
                values = np.zeros((n, 6))
                for a, (label, _) in enumerate(SP_SW_HAR_SEQUENCE):
                    idx = np.flatnonzero(which == a)
                    activity = ("SEATED", "STANDING_UP", "WALKING", "TURNING", "SITTING_DOWN").index(label)
                    values[idx] = _signal(rng, activity, u, 6, len(idx), rate).T * (9.81 if device == "sp" else 5.0)
                if sine_hz is not None:
                    values[:, 0] = np.sin(2 * np.pi * sine_hz * (t - start))
                for i in range(n):
                    v = values[i]
                    lines.append(",".join(f"{x:.6f}" for x in v) + f",{stamps[i]},{SP_SW_HAR_SEQUENCE[which[i]][0]}")
                (root / subject / f"{subject}_{e:02d}_{device}.csv").write_text("\n".join(lines) + "\n")
    (root / "subjects_info.csv").write_text("\n".join(rows) + "\n")
    (root / "executions_info.csv").write_text("\n".join(exec_rows) + "\n")
    (root / "README.md").write_text("fabricated by harbench_datasets.fabricate.sp_sw_har: not real data\n")
    return root
