"""What the session-based datasets (``sp-sw-har``, ``recordings``) share: files of timestamped recordings with a
label per sample, windows labelled by the majority rule, splits by whole sessions, and the choice of targets and
population by subject attribute."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, ClassVar, Sequence

from harbench import DatasetInfo, Param, Splits

from .attributes import matches, order_users, parse_conditions
from .base import _SPLIT_ONLY, Parsed, RealDataset
from .segments import Segment
from .splitting import build_splits
from .windowing import WindowTable, cut_windows

_WINDOW_COUNTS: dict[tuple, dict] = {}  # parse key + windowing knobs -> what the labelling rule dropped


def session_parameters(*, min_purity: float = 0.5, max_gap_s: float = 0.5, attributes: str = "") -> dict[str, Param]:
    return {
        "min_purity": Param(min_purity, "a window takes its majority label if that label covers at least this "
                            "share of its samples (ties are dropped); other windows are dropped and counted",
                            ge=0.0, le=1.0),
        "max_gap_s": Param(max_gap_s, "a timestamp gap longer than this cuts a recording in two", ge=0.0),
        "targets": Param([], "conditions on subject attributes a target must meet, e.g. ['age>=50']"
                         f"{f' (attributes: {attributes})' if attributes else ''}; empty = anyone", type=list[str]),
        "population": Param([], "conditions a population (generic training) subject must meet, e.g. ['age<40']; "
                            "empty = every non-target", type=list[str]),
        "groups": Param([], "a crossed subpopulation split, e.g. ['age<40', 'age>=50']: a target may be anyone in a "
                        "group, and the generic model trains on every other group (all of a run's targets in one "
                        "group); both directions then share one scenario, told apart by target_users. Not with "
                        "targets/population", type=list[str]),
    }


class SessionDataset(RealDataset):
    """A real dataset whose parse yields multi-label, per-session segments (see :mod:`.timestamped`)."""

    # ``users`` is a parse knob here: only the chosen subjects' files are read (fast small runs and tests)
    split_only: ClassVar[frozenset[str]] = (_SPLIT_ONLY - {"users"}) | {"min_purity", "targets", "population",
                                                                        "groups", "orientations"}

    def _attribute_names(self) -> tuple[str, ...]:
        """Subject attributes the ``targets``/``population`` conditions may name (checked at describe())."""
        return ()

    def _attributes(self, root: Path) -> dict[str, dict[str, Any]]:
        return {}

    def _segments(self, parsed: Parsed, info: DatasetInfo) -> list[Segment]:
        return parsed.segments

    def _window_key(self, root: Path) -> tuple:
        return (self._parse_key(root), self.params.window, self.params.stride, self.params.min_purity,
                tuple(self.params.get("orientations", ()) or ()))

    def describe(self) -> DatasetInfo:
        info = super().describe()
        names = self._attribute_names()
        targets = parse_conditions(self.params.targets, names, f"{self.name}: params.targets")
        population = parse_conditions(self.params.population, names, f"{self.name}: params.population")
        groups = [parse_conditions([g], names, f"{self.name}: params.groups") for g in self.params.groups]
        if groups and (targets or population):
            raise ValueError(f"{self.name}: params.groups replaces params.targets and params.population; give one "
                             "or the other")
        root = Path(info.extra["root"])
        attrs = self._attributes(root) if (targets or population or groups) else {}
        members = [tuple(u for u in info.users if matches(attrs.get(u, {}), g)) for g in groups]
        if groups:  # every group member can be a target; the population is chosen per run in load()
            for text, group in zip(self.params.groups, members):
                if not group:
                    raise ValueError(f"{self.name}: no subject is in params.groups entry {text!r}")
            both = sorted(set(members[0]).intersection(*members[1:])) if len(members) > 1 else []
            if len(members) < 2 or both:
                raise ValueError(f"{self.name}: params.groups needs two or more disjoint groups"
                                 + (f" ({', '.join(both)} in several)" if both else ""))
            users = candidates = pop = tuple(dict.fromkeys(u for g in members for u in g))
        else:
            users, candidates, pop = order_users(info.users, attrs, targets, population)
        if not candidates:
            raise ValueError(f"{self.name}: no subject meets params.targets {self.params.targets}")
        if not [u for u in pop if u != candidates[0]]:
            raise ValueError(f"{self.name}: no subject besides the first target meets params.population "
                             f"{self.params.population}")
        extra = dict(info.extra, target_candidates=list(candidates), population_candidates=list(pop))
        if groups:
            extra["groups"] = {text: list(g) for text, g in zip(self.params.groups, members)}
        counts = _WINDOW_COUNTS.get(self._window_key(root))
        if counts is not None:
            extra["windows_dropped"] = counts
        return dataclasses.replace(info, users=users, extra=extra)

    def check_targets(self, targets: Sequence[str]) -> str | None:
        """With params.groups every target must be in one group (the population is the other groups); and every
        target must have ``k`` adapt windows per class and some left to test (the base class's check)."""
        groups = self.describe().extra.get("groups")
        why = _targets_group(groups, targets)[1] if groups else None
        return why or super().check_targets(targets)

    def _table(self, info: DatasetInfo) -> WindowTable:
        table = cut_windows(self._segments(self.parsed(), info), info.users, tuple(c.name for c in info.contexts),
                            info.channels, info.rate_hz, self.params.window, self.params.stride,
                            self.params.min_purity, info.classes)
        key = self._window_key(Path(info.extra["root"]))
        if key not in _WINDOW_COUNTS:  # said once per process and data: validation and load both window it
            d = table.dropped
            by_class = ", ".join(f"{k} {v}" for k, v in sorted(d["by_majority_class"].items())) or "none"
            warnings.warn(f"{self.name}: the majority rule (min_purity {self.params.min_purity:g}) dropped "
                          f"{d['windows']} of {d['windows'] + d['kept']} windows ({by_class})", UserWarning,
                          stacklevel=3)
            _WINDOW_COUNTS[key] = d
        return table

    def load(self, seed: int, targets: Sequence[str]) -> Splits:
        info = self.describe()
        candidates = info.extra["target_candidates"]
        refused = [t for t in targets if t not in candidates]
        if refused:
            raise ValueError(f"{self.name}: target users {refused} do not meet params.targets "
                             f"{self.params.targets} (candidates: {', '.join(candidates)})")
        table = self._table(info)
        info = self.describe()  # now with the windows the majority rule dropped
        population = [u for u in info.extra["population_candidates"] if u not in targets]
        if self.params.groups:
            groups = info.extra["groups"]
            group, why = _targets_group(groups, targets)
            if why:
                raise ValueError(f"{self.name}: {why}")
            population = [u for text, members in groups.items() if text != group for u in members]
        return build_splits(info, table, targets, info.extra["adapt_context"], self.params.population_contexts,
                            self.params.k, population_users=population)


def _targets_group(groups: dict[str, list[str]], targets: Sequence[str]) -> tuple[str | None, str | None]:
    """params.groups: (the one group every target is in, None), or (None, why the targets are not in one)."""
    hit = [text for text, members in groups.items() if set(targets) & set(members)]
    if len(hit) == 1:
        return hit[0], None
    return None, (f"target users {list(targets)} must all be in one of params.groups (they are in "
                  f"{', '.join(hit) or 'none'})")
