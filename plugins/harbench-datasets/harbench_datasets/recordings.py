"""``recordings``: bring your own data without writing a plugin. A folder of CSV or Parquet files and a small YAML
manifest saying which files, which columns, which units and labels.

Two layouts:

* ``files: "{user}/{user}_{session}_{context}.csv"`` — a glob whose ``{user}``, ``{context}`` and ``{session}``
  fields are read from each file's path relative to the data folder (a field used twice must match itself;
  ``{context}`` and ``{session}`` are optional, ``{user}`` is required; any other ``{name}`` matches anything);
* ``table: all.parquet`` — one long table with ``columns.user`` (and optionally ``columns.context``,
  ``columns.session``) naming the columns that say whose rows they are.

Every recording (a file, or a (user, context, session) group of the table) goes through the same pipeline as
``sp-sw-har``: timestamps converted to seconds (``timestamp_unit``), rows with equal timestamps averaged, cuts at
gaps over ``max_gap_s``, resampling on the timestamps to ``rate_hz``, majority-labelled windows, splits by whole
sessions when there are sessions. Problems are one line each, naming the file and the manifest field: a missing
column, timestamps going backwards, an unknown label, NaN rows (dropped and counted in a warning and in
``describe().extra["parse_report"]``, or refused with ``nan_rows: error``).
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path
from typing import Any, Literal, Optional, Union

import numpy as np
import pydantic
import yaml

from harbench import ContextInfo, DatasetInfo, Param

from .base import Parsed, Scan, common_parameters
from .errors import LayoutError, MalformedRecordsWarning
from .sessions import SessionDataset, session_parameters
from .timestamped import timestamped_segments

_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Columns(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    channels: list[str] = pydantic.Field(min_length=1, description="sensor columns, in channel order")
    timestamp: str = pydantic.Field(description="the timestamp column (numbers, in timestamp_unit)")
    label: str = pydantic.Field(description="the per-row label column")
    user: Optional[str] = pydantic.Field(None, description="table layout: the user column")
    context: Optional[str] = pydantic.Field(None, description="table layout: the context column")
    session: Optional[str] = pydantic.Field(None, description="table layout: the session column")


class Manifest(pydantic.BaseModel):
    """The manifest file, validated strictly: an unknown key is an error (a typo must not be ignored)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    name: str = "recordings"
    description: str = ""
    root: Optional[str] = pydantic.Field(None, description="data folder, relative to the manifest (default: the "
                                         "manifest's folder)")
    files: Optional[str] = None
    table: Optional[str] = None
    format: Optional[Literal["csv", "parquet"]] = None
    columns: Columns
    timestamp_unit: Literal["s", "ms", "us", "ns"] = "s"
    rate_hz: float = pydantic.Field(gt=0, description="nominal sampling rate (documentation; resampling uses the "
                                    "timestamps)")
    units: Union[list[str], dict[str, str]] = pydantic.Field(default_factory=list)
    labels: Union[dict[str, str], list[str]] = pydantic.Field(description="source label -> class name, or the "
                                                               "class names when the file holds them as is")
    ignore_labels: list[str] = pydantic.Field(default_factory=list, description="source labels kept as "
                                              "unlabelled samples (they count against a window's purity)")
    contexts: Union[dict[str, str], list[str], None] = None
    default_context: str = "default"
    simultaneous: bool = pydantic.Field(False, description="a user's contexts were recorded at the same time on "
                                        "one clock (e.g. two devices worn together)")
    nan_rows: Literal["drop", "error"] = "drop"
    subjects: Optional[str] = pydantic.Field(None, description="CSV of subject attributes (relative to root)")
    subject_id_column: str = "subject_id"

    @pydantic.model_validator(mode="after")
    def _layout(self) -> "Manifest":
        if (self.files is None) == (self.table is None):
            raise ValueError("give exactly one of 'files' (a glob with {user}/{context}/{session} fields) or "
                             "'table' (one long table)")
        if self.files is not None and "{user}" not in self.files:
            raise ValueError("'files' must contain a {user} field")
        if self.table is not None and self.columns.user is None:
            raise ValueError("a 'table' layout needs columns.user")
        if isinstance(self.units, list) and self.units and len(self.units) != len(self.columns.channels):
            raise ValueError(f"units: {len(self.units)} entries for {len(self.columns.channels)} channels")
        return self

    def class_map(self) -> dict[str, str]:
        return {v: v for v in self.labels} if isinstance(self.labels, list) else dict(self.labels)

    def classes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.class_map().values()))

    def context_name(self, value: str) -> str:
        return self.contexts.get(value, value) if isinstance(self.contexts, dict) else value

    def unit_list(self) -> list[str]:
        if isinstance(self.units, dict):
            return [self.units.get(c, "") for c in self.columns.channels]
        return list(self.units) or [""] * len(self.columns.channels)


def read_manifest(path: Path) -> Manifest:
    """One line per problem, naming the manifest file and the field."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"recordings: cannot read manifest '{path}': {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ValueError(f"recordings: manifest '{path}' must be a mapping (columns:, labels:, files: or table:)")
    try:
        return Manifest.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"recordings: manifest '{path}': {problems}") from None


def pattern_regex(pattern: str) -> tuple[str, re.Pattern]:
    """(glob, regex with named groups) of a ``files`` pattern; a repeated field must repeat its value."""
    seen: set[str] = set()
    parts, last = [], 0
    for m in _FIELD.finditer(pattern):
        parts.append(re.escape(pattern[last:m.start()]))
        name = m.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>[^/]+?)")
        seen.add(name)
        last = m.end()
    parts.append(re.escape(pattern[last:]))
    return _FIELD.sub("*", pattern), re.compile("^" + "".join(parts) + "$")


def _read_frame(path: Path, fmt: str | None):
    import pandas as pd

    fmt = fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, engine="c")


class Recordings(SessionDataset):
    name = "recordings"
    description = "your own recordings: a folder of CSV/Parquet files described by a YAML manifest (no plugin to write)"
    folder = ""
    layout = ("a manifest (params.manifest) naming 'files: {user}/..._{context}.csv' or 'table: <file>', the "
              "columns (channels, timestamp, label), timestamp_unit, rate_hz and labels")
    classes = ()
    class_mapping = {}
    parameters = {
        "manifest": Param("", "the manifest YAML (relative paths: to the current folder, then to $HARBENCH_DATA)"),
        **common_parameters(window=50, stride=25, rate_hz=50.0, adapt_context=""),
        **session_parameters(),
        "path": Param("", "the data folder (default: the manifest's root:, else the manifest's own folder)"),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self._manifest: Manifest | None = None

    # ----------------------------------------------------------------------------------------- manifest
    def manifest_path(self) -> Path:
        import os

        given = self.params.manifest
        if not given:
            raise LayoutError(self.name, "no manifest: set params.manifest to a YAML file", self.layout)
        path = Path(given).expanduser()
        if not path.is_absolute() and not path.exists() and os.environ.get("HARBENCH_DATA"):
            path = Path(os.environ["HARBENCH_DATA"]).expanduser() / path
        if not path.is_file():
            raise LayoutError(self.name, f"manifest '{given}' not found", self.layout)
        return path

    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = read_manifest(self.manifest_path())
            self.classes = self._manifest.classes()
            self.class_mapping = self._manifest.class_map()
            if len(self.classes) < 2:
                raise self.fail(f"manifest labels name {len(self.classes)} class(es); at least 2 are needed")
        return self._manifest

    def fail(self, problem: str) -> LayoutError:
        return LayoutError(self.name, problem, f"as the manifest says ({self.params.manifest})")

    def root(self) -> Path:
        m = self.manifest()
        if self.params.path:
            root = Path(self.params.path).expanduser()
        else:
            root = (self.manifest_path().parent / (m.root or ".")).resolve()
        if not root.is_dir():
            raise self.fail(f"data folder '{root}' not found")
        return root

    def _locate(self, candidate: Path) -> Path | None:
        return candidate

    def _data_files(self, root: Path) -> list[Path]:
        manifest = self.manifest_path()  # the manifest may live anywhere
        return [f for f in self._files(root) if f != manifest]

    # ----------------------------------------------------------------------------------------- files
    def _matched(self, root: Path) -> list[tuple[Path, dict[str, str]]]:
        m = self.manifest()
        glob, regex = pattern_regex(m.files)
        found = []
        for f in sorted(root.glob(glob)):
            hit = regex.match(f.relative_to(root).as_posix())
            if hit and f.is_file():
                found.append((f, hit.groupdict()))
        if not found:
            raise self.fail(f"no file under '{root}' matches files: {m.files!r}")
        return found

    def _files(self, root: Path) -> list[Path]:
        m = self.manifest()
        files = [self.manifest_path()]
        if m.subjects:
            files.append(root / m.subjects)
        if m.table is not None:
            table = root / m.table
            if not table.is_file():
                raise self.fail(f"table '{table}' not found (manifest field 'table')")
            return files + [table]
        return files + [f for f, _ in self._matched(root)]

    def _contexts(self, values: set[str]) -> tuple[ContextInfo, ...]:
        m = self.manifest()
        if isinstance(m.contexts, list):
            order = list(m.contexts)
        elif isinstance(m.contexts, dict):
            order = [m.contexts[v] for v in m.contexts if v in values] + sorted(
                {m.context_name(v) for v in values} - set(m.contexts.values()))
        else:
            order = sorted(values)
        named = {m.context_name(v) for v in values}
        return tuple(ContextInfo(c) for c in order if c in named)

    def _scan(self, root: Path) -> Scan:
        m = self.manifest()
        if m.table is not None:
            parsed = self.parsed()  # the users and contexts are only known from the table's rows
            users = sorted({s.user for s in parsed.segments})
            contexts = parsed.report["contexts"]
        else:
            matched = self._matched(root)
            self._check_header(matched[0][0], matched[0][0].relative_to(root).as_posix())  # a misspelt column fails `validate`, not every job
            fields = [f for _, f in matched]
            users = sorted({f["user"] for f in fields})
            contexts = sorted({f.get("context") or m.default_context for f in fields})
        extra = {"units": m.unit_list(), "manifest": str(self.manifest_path()), "nominal_rate_hz": m.rate_hz,
                 "labelling": f"majority label of each window, kept when it covers >= {self.params.min_purity:g} "
                              f"of the window's samples (ties dropped)"}
        if m.subjects:
            extra["subjects"] = self._attributes(root)
        return Scan(users=tuple(users), contexts=self._contexts(set(contexts)), channels=tuple(m.columns.channels),
                    extra=extra)

    def describe(self) -> DatasetInfo:
        self.manifest()
        return super().describe()

    # ----------------------------------------------------------------------------------------- attributes
    def _attributes(self, root: Path) -> dict[str, dict[str, Any]]:
        m = self.manifest()
        if not m.subjects:
            return {}
        path = root / m.subjects
        try:
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError:
            raise self.fail(f"subjects file '{path}' not found (manifest field 'subjects')") from None
        if rows and m.subject_id_column not in rows[0]:
            raise self.fail(f"'{path.name}' has no column {m.subject_id_column!r} (manifest field "
                            f"'subject_id_column')")
        out = {}
        for r in rows:
            out[r[m.subject_id_column].strip()] = {k.strip(): _typed(v) for k, v in r.items()
                                                  if k != m.subject_id_column}
        return out

    def _attribute_names(self) -> tuple[str, ...]:
        m = self.manifest()
        if not m.subjects:
            return ()
        attrs = self._attributes(self.root())
        return tuple(dict.fromkeys(k for a in attrs.values() for k in a))

    # ----------------------------------------------------------------------------------------- parsing
    def _parse(self, root: Path) -> Parsed:
        m = self.manifest()
        report: dict[str, Any] = {"recordings": 0, "rows": 0, "nan_rows": 0, "unlabelled_rows": 0,
                                  "rows_merged": 0, "gaps_cut": 0, "pieces_too_short": 0}
        first_nan: list[str] = []
        segments = []
        groups = self._groups(root)
        contexts = set()
        for where, user, context, session, frame in groups:
            contexts.add(context)
            t, values, labels = self._columns(where, frame, report, first_nan)
            source = f"user:{user}" if m.simultaneous else f"{where}:{context}:{session}"
            segs, facts = timestamped_segments(user=user, context=m.context_name(context), session=session,
                                               source=source, t_s=t, values=values, labels=labels,
                                               rate_hz=self.params.rate_hz, max_gap_s=self.params.max_gap_s)
            for k, v in facts.items():
                report[k] += v
            report["recordings"] += 1
            segments += segs
        if report["nan_rows"]:
            warnings.warn(f"{self.name}: dropped {report['nan_rows']} row(s) with NaN in a channel, timestamp or "
                          f"label (first: {first_nan[0]}); set nan_rows: error in the manifest to refuse them",
                          MalformedRecordsWarning, stacklevel=2)
        segments.sort(key=lambda s: (s.user, s.context, s.t0))
        report["segments"] = len(segments)
        report["contexts"] = sorted(contexts)
        return Parsed(segments, report)

    def _groups(self, root: Path):
        """(where, user, context value, session, frame) per recording, in file order."""
        m = self.manifest()
        if m.table is None:
            wanted = set(self.params.users)
            for f, fields in self._matched(root):
                if wanted and fields["user"] not in wanted:
                    continue  # params.users: only the chosen subjects' files are read
                frame = self._frame(f)
                yield (f.relative_to(root).as_posix(), fields["user"], fields.get("context") or m.default_context,
                       fields.get("session"), frame)
            return
        path = root / m.table
        frame = self._frame(path)
        keys = [c for c in (m.columns.user, m.columns.context, m.columns.session) if c]
        self._require(path.name, frame, keys, "columns.user/context/session")
        frame = frame.dropna(subset=keys)  # rows without an owner cannot be placed (counted below as NaN rows)
        for key, part in frame.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            values = dict(zip(keys, map(str, key)))
            user = values[m.columns.user]
            context = values.get(m.columns.context, m.default_context) if m.columns.context else m.default_context
            session = values.get(m.columns.session) if m.columns.session else None
            yield f"{path.name}[{user}/{context}/{session or '-'}]", user, context, session, part

    def _frame(self, path: Path):
        try:
            return _read_frame(path, self.manifest().format)
        except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types; the message is what matters
            raise self.fail(f"cannot read '{path}': {' '.join(str(exc).split())[:160]}") from None

    def _check_header(self, path: Path, where: str) -> None:
        """The manifest's columns against one file's header (no rows read): the files share one layout."""
        import pandas as pd

        m = self.manifest()
        try:
            if (m.format or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")) == "parquet":
                import pyarrow.parquet as pq

                header = pd.DataFrame(columns=pq.read_schema(path).names)
            else:
                header = pd.read_csv(path, nrows=0)
        except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types; the message is what matters
            raise self.fail(f"cannot read '{path}': {' '.join(str(exc).split())[:160]}") from None
        c = m.columns
        self._require(where, header, c.channels, "columns.channels")
        self._require(where, header, [c.timestamp], "columns.timestamp")
        self._require(where, header, [c.label], "columns.label")

    def _require(self, where: str, frame, columns: list[str], field: str) -> None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise self.fail(f"'{where}' has no column(s) {missing} (manifest {field}); it has "
                            f"{list(map(str, frame.columns))[:12]}")

    def _columns(self, where: str, frame, report: dict, first_nan: list[str]):
        import pandas as pd

        m = self.manifest()
        c = m.columns
        self._require(where, frame, c.channels, "columns.channels")
        self._require(where, frame, [c.timestamp], "columns.timestamp")
        self._require(where, frame, [c.label], "columns.label")
        try:
            numbers = frame[c.channels + [c.timestamp]].apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
        except (ValueError, TypeError) as exc:
            raise self.fail(f"'{where}': a channel or timestamp value is not a number "
                            f"({' '.join(str(exc).split())[:100]})") from None
        label_text = frame[c.label]
        bad = ~np.isfinite(numbers).all(axis=1) | label_text.isna().to_numpy()
        report["rows"] += len(frame)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            location = f"'{where}' row {row + 2 if m.table is None else frame.index[row] + 2}"
            if m.nan_rows == "error":
                raise self.fail(f"{location}: {int(bad.sum())} row(s) with NaN in a channel, timestamp or label "
                                f"(manifest nan_rows: error)")
            report["nan_rows"] += int(bad.sum())
            first_nan.append(location)
            numbers, label_text = numbers[~bad], label_text[~bad]
        t = numbers[:, -1] / _PER_SECOND[m.timestamp_unit]
        back = np.flatnonzero(np.diff(t) < 0)
        if len(back):
            raise self.fail(f"'{where}': timestamps go backwards at row {int(back[0]) + 3} "
                            f"(column {c.timestamp!r}; sort the file or split it into sessions)")
        codes, names = pd.factorize(label_text.astype(str))
        class_map = m.class_map()
        unknown = sorted(set(names) - set(class_map) - set(m.ignore_labels))
        if unknown:
            raise self.fail(f"'{where}': unknown label(s) {unknown[:8]} in column {c.label!r}; the manifest's "
                            f"labels are {list(class_map)[:12]} (add them to labels: or ignore_labels:)")
        classes = self.classes
        lookup = np.array([classes.index(class_map[n]) if n in class_map else -1 for n in names], dtype=np.int64)
        labels = lookup[codes] if len(codes) else np.zeros(0, dtype=np.int64)
        report["unlabelled_rows"] += int((labels < 0).sum())
        return t, np.ascontiguousarray(numbers[:, :-1].T.astype(np.float32)), labels


def _typed(value: str) -> Any:
    value = (value or "").strip()
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
