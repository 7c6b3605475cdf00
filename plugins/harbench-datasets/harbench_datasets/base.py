"""What every real-data dataset shares: parameters, folder resolution, a parse cache, describe() and load().

A concrete dataset only says where its files are (``_locate``), what a cheap look at them reveals (``_scan``) and
how to turn them into labelled continuous segments (``_parse``); windowing, splitting and normalisation are
common so that the five datasets behave alike.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from abc import abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

from harbench import ContextInfo, Dataset, DatasetInfo, Param, Splits

from .errors import LayoutError, OutsideFolderWarning
from .segments import Segment, labelled_seconds
from .splitting import build_splits, refused_targets
from .windowing import WindowTable, cut_windows

ENV_VAR = "HARBENCH_DATA"

# Knobs that only change how windows are cut or split; every other parameter changes what is parsed.
_SPLIT_ONLY = frozenset({"path", "window", "stride", "adapt_context", "population_contexts", "users", "k"})


def common_parameters(*, window: int, stride: int, rate_hz: float, adapt_context: str, k: int = 8) -> dict[str, Param]:
    return {
        "path": Param("", f"dataset folder, or its parent (default: ${ENV_VAR}/<the dataset's folder name>)"),
        "window": Param(window, "samples per window, at rate_hz", ge=8),
        "stride": Param(stride, "samples between consecutive window starts", ge=1),
        "rate_hz": Param(float(rate_hz), "every recording is resampled to this rate (Hz)", ge=1.0),
        "adapt_context": Param(adapt_context, "the context of the target users' personal (adapt) data; "
                               "empty = the dataset's first context"),
        "population_contexts": Param([], "contexts the population (generic training) uses; empty = all", type=list[str]),
        "users": Param([], "keep only these user ids (targets + population); empty = all", type=list[str]),
        "k": Param(k, "adapt windows per class (the user's earliest labelled data)", ge=1),
    }


@dataclass(frozen=True)
class Scan:
    """What a cheap look at the folder reveals, without parsing the signals."""

    users: tuple[str, ...]
    contexts: tuple[ContextInfo, ...]
    channels: tuple[str, ...]
    class_seconds: dict[str, float] | None = None  # None: only known once the data has been parsed
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    segments: list[Segment]
    report: dict[str, Any]  # JSON-able parse facts (skipped records, dropped segments, ...)


class _ParseCache:
    """Parsed segments of the most recent dataset, per process.

    The runner builds a fresh dataset instance for validation, for choosing targets and for every seed; parsing a
    real dataset takes seconds to a minute, so the parse is shared while the files and parse parameters are the
    same. One entry only: a parsed dataset can weigh hundreds of MB.
    """

    def __init__(self, size: int = 1):
        self.size = size
        self.entries: OrderedDict[tuple, Parsed] = OrderedDict()

    def get(self, key: tuple) -> Parsed | None:
        if key in self.entries:
            self.entries.move_to_end(key)
        return self.entries.get(key)

    def put(self, key: tuple, value: Parsed) -> None:
        self.entries[key] = value
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()


PARSE_CACHE = _ParseCache()


class RealDataset(Dataset):
    """Base of the real-data datasets. ``load`` ignores ``seed``: the splits of recorded data are fixed by time."""

    folder: ClassVar[str]  # default folder name under $HARBENCH_DATA
    layout: ClassVar[str]  # one line naming the expected layout, used in every layout error
    classes: ClassVar[tuple[str, ...]]
    class_mapping: ClassVar[dict[str, str]]  # source label -> class name (documentation, exported in describe())
    split_only: ClassVar[frozenset[str]] = _SPLIT_ONLY  # parameters that never change what is parsed

    # ------------------------------------------------------------------------------------- subclass API
    @abstractmethod
    def _locate(self, candidate: Path) -> Path | None:
        """The dataset root if ``candidate`` is it or holds it (e.g. the parent folder), else None."""

    @abstractmethod
    def _files(self, root: Path) -> list[Path]:
        """The files ``_parse`` reads; raise LayoutError when one is missing."""

    def _data_files(self, root: Path) -> list[Path]:
        """The files that must lie inside the data folder (default: every file ``_parse`` reads)."""
        return self._files(root)

    @abstractmethod
    def _scan(self, root: Path) -> Scan: ...

    @abstractmethod
    def _parse(self, root: Path) -> Parsed: ...

    # ------------------------------------------------------------------------------------- folder
    def fail(self, problem: str) -> LayoutError:
        return LayoutError(self.name, problem, self.layout)

    def root(self) -> Path:
        given = self.params.path or os.environ.get(ENV_VAR, "")
        if not given:
            raise self.fail(f"no data folder: set params.path or ${ENV_VAR} (harbench never downloads data)")
        base = Path(given).expanduser()
        candidates = [base, base / self.folder] if self.params.path else [base / self.folder, base]
        for candidate in candidates:
            if candidate.exists():
                found = self._locate(candidate)
                if found is not None:
                    return found
        where = " or ".join(f"'{c}'" for c in candidates)
        raise self.fail(f"no {self.folder!r} dataset found at {where}")

    # ------------------------------------------------------------------------------------- parsing
    def _parse_key(self, root: Path) -> tuple:
        self._warn_outside(root)
        stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in self._files(root))
        knobs = tuple(sorted((k, repr(v)) for k, v in self.params.items() if k not in self.split_only))
        return (type(self).__name__, str(root), stamp, knobs)

    def _warn_outside(self, root: Path) -> None:
        """Symbolic links are followed, but never silently out of the folder the user pointed us at."""
        inside = root.resolve()
        for f in self._data_files(root):
            target = f.resolve()
            if not target.is_relative_to(inside):
                warnings.warn(f"{self.name}: {f} is a link to {target}, outside the data folder {inside}",
                              OutsideFolderWarning, stacklevel=3)

    def parsed(self) -> Parsed:
        root = self.root()
        key = self._parse_key(root)
        hit = PARSE_CACHE.get(key)
        if hit is None:
            hit = self._parse(root)
            PARSE_CACHE.put(key, hit)
        return hit

    # ------------------------------------------------------------------------------------- harbench API
    def describe(self) -> DatasetInfo:
        root = self.root()
        scan = self._scan(root)
        users = self._select_users(scan.users)
        names = [c.name for c in scan.contexts]
        adapt_context = self.params.adapt_context or names[0]
        if adapt_context not in names:
            raise self.fail(f"adapt_context {adapt_context!r} is not a context of this dataset "
                            f"(contexts: {', '.join(names)})")
        unknown = [c for c in self.params.population_contexts if c not in names]
        if unknown:
            raise self.fail(f"population_contexts {unknown} are not contexts of this dataset ({', '.join(names)})")
        key = self._parse_key(root)
        parsed = PARSE_CACHE.get(key)
        balance = labelled_seconds(parsed.segments, self.classes) if parsed else scan.class_seconds
        extra: dict[str, Any] = {
            "root": str(root),
            # changes when a parsed file or a parse parameter changes: for cache keys that must notice new data
            "fingerprint": hashlib.sha256(repr(key).encode()).hexdigest()[:16],
            "channels": list(scan.channels),
            "class_mapping": dict(self.class_mapping),
            "class_balance_s": balance,
            "users_found": len(scan.users),
            "adapt_context": adapt_context,
            "stride": self.params.stride,  # samples between window starts: the rate a device classifies at
            **scan.extra,
        }
        if balance is None:
            extra["class_balance_note"] = "labelled seconds per class are counted when the data is first loaded"
        if parsed:
            extra["parse_report"] = parsed.report
        return DatasetInfo(name=self.name, channels=len(scan.channels), window=self.params.window,
                           rate_hz=self.params.rate_hz, classes=self.classes, users=users,
                           contexts=scan.contexts, extra=extra)

    def _select_users(self, found: tuple[str, ...]) -> tuple[str, ...]:
        if not found:
            raise self.fail("no users found")
        wanted = self.params.users
        if not wanted:
            return found
        missing = [u for u in wanted if u not in found]
        if missing:
            raise self.fail(f"params.users {missing} not found (found: {', '.join(found)})")
        return tuple(u for u in found if u in wanted)

    def _table(self, info: DatasetInfo) -> WindowTable:
        """Every user's windows, unnormalised (the population's statistics depend on who the targets are)."""
        return cut_windows(self.parsed().segments, info.users, tuple(c.name for c in info.contexts), info.channels,
                           info.rate_hz, self.params.window, self.params.stride)

    def check_targets(self, targets: Sequence[str]) -> str | None:
        """A target with fewer than ``k`` adapt windows of a class, or none left to test, is refused here, when the
        suite is validated (the data is parsed and windowed once more: seconds), instead of failing its jobs."""
        info = self.describe()
        return refused_targets(info, self._table(info), targets, info.extra["adapt_context"], self.params.k)

    def load(self, seed: int, targets: Sequence[str]) -> Splits:
        info = self.describe()
        return build_splits(info, self._table(info), targets, info.extra["adapt_context"],
                            self.params.population_contexts, self.params.k)
