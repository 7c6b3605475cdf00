"""Suites: a YAML file validated by pydantic, resolved against the plugin registry, and expanded into a grid.

Every error carries the file and the YAML path of the offending field (``methods[2].params.lr``), so a bad suite
is rejected before anything runs or touches the store.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import pydantic
import yaml

from .params import Param, ParamError, ParamValues
from .plugins import PluginError, Registry


class SuiteError(ValueError):
    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}" for loc, msg in problems))


# ------------------------------------------------------------------------------------------------- schema

_Strict = pydantic.ConfigDict(extra="forbid")


class PluginRef(pydantic.BaseModel):
    model_config = _Strict
    name: str
    params: dict[str, Any] = {}


Ref = Union[str, PluginRef]


class GenericRecipe(pydantic.BaseModel):
    """How the harness trains the generic (population) model for each backbone."""

    model_config = _Strict
    epochs: int = pydantic.Field(8, ge=1)
    lr: float = pydantic.Field(3e-3, gt=0)
    batch_size: int = pydantic.Field(64, ge=2)


class SuiteModel(pydantic.BaseModel):
    model_config = _Strict
    name: str = pydantic.Field(min_length=1)
    description: str = ""
    datasets: list[Ref] = pydantic.Field(min_length=1)
    methods: list[Ref] = pydantic.Field(min_length=1)
    hardware: list[Ref] = pydantic.Field(min_length=1)
    metrics: list[str] | None = None
    seeds: list[int] = pydantic.Field([0], min_length=1)
    target_users: Union[int, list[str]] = 4
    workers: pydantic.PositiveInt = 1
    executor: Literal["local", "ray"] = "local"
    timeout_s: pydantic.PositiveFloat | None = None
    generic: GenericRecipe = GenericRecipe()
    # torch threads in every process (training, adapt, measurement): numerics do not depend on how a run is
    # scheduled, and one thread per process is also the fastest on small models (no oversubscription)
    threads: pydantic.PositiveInt = 1
    # process: each adapt runs in a fresh process holding only its inputs (the default, and the guarantee);
    # inline: in the host process (for debugging; fresh copies and integrity checks, no boundary);
    # strict: process, and the job processes cannot read the data folders or the results folder (Linux Landlock)
    isolation: Literal["process", "inline", "strict"] = "process"
    label_free_windows: pydantic.PositiveInt | None = None  # window budget of label-free methods' stream (None: all)
    # a job whose adapt peak memory exceeds the target's usable memory: skipped (with "needs N MB, device has M
    # MB"), or kept with that warning in its facts and the report's notes
    memory_check: Literal["skip", "warn"] = "skip"
    # refused before anything runs, in one line saying what to lower (a plan or data that would eat the machine)
    max_jobs: pydantic.PositiveInt = 1_000_000
    max_memory_gb: pydantic.PositiveFloat | None = None  # default: half of this machine's memory
    # the decision view's budgets (``latency_ms_p50<=5``; a fraction metric's bound in points): presentation only,
    # never part of a job's identity; ``--budget`` on run/report replaces them
    budgets: list[str] = []

    @pydantic.field_validator("target_users", mode="before")
    @classmethod
    def _some_target_users(cls, value: Any) -> Any:
        """One line for every wrong form (a union type gave one message per branch, contradicting each other), and
        no empty list: a run with no target user stored an empty "complete" run."""
        number = isinstance(value, int) and not isinstance(value, bool)
        if not (number and value >= 1 or isinstance(value, list) and value):
            raise ValueError(f"expected a positive number of target users or a non-empty list of user ids, "
                             f"got {value!r}")
        if isinstance(value, list) and not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            raise ValueError(f"expected user ids (strings), got {value!r}")
        return [str(v) for v in value] if isinstance(value, list) else value


# ------------------------------------------------------------------------------------------ resolved suite


@dataclass(frozen=True, eq=False)  # identity hash: one instance per grid point
class Resolved:
    """A plugin with one point of its parameter grid, fully resolved (defaults filled in)."""

    kind: str
    name: str
    params: dict[str, Any]
    variant: str
    distribution: str
    version: str

    def instance(self, registry: Registry):
        return registry.get(self.kind, self.name).cls(**self.params)


@dataclass
class Suite:
    source: str
    text: str
    model: SuiteModel
    datasets: list[Resolved]
    methods: list[Resolved]
    hardware: list[Resolved]
    metrics: list[str]
    targets: dict[int, list[str]] = field(default_factory=dict)  # dataset index -> target user ids

    @property
    def name(self) -> str:
        return self.model.name


def _loc(parts: tuple) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p in ("str", "PluginRef", "list[str]", "int", "constrained-int") or "function-" in str(p):
            continue
        else:
            out += f".{p}" if out else str(p)
    return out


MAX_SUITE_BYTES = 1 << 20  # a suite is a page of YAML; the store keeps its text with every run


def load_suite(path: str | Path, registry: Registry) -> Suite:
    source = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_SUITE_BYTES:
            raise SuiteError(source, [("", f"the file is {size / 2**20:.1f} MiB; a suite is at most "
                                           f"{MAX_SUITE_BYTES >> 20} MiB of YAML")])
        text = Path(path).read_text()
    except OSError as exc:
        raise SuiteError(source, [("", f"cannot read suite: {exc.strerror or exc}")]) from None
    return parse_suite(text, source, registry)


def parse_suite(text: str, source: str, registry: Registry) -> Suite:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f"line {where.line + 1}" if where is not None else ""
        raise SuiteError(source, [(at, f"invalid YAML: {getattr(exc, 'problem', None) or exc}")]) from None
    if not isinstance(doc, dict):
        raise SuiteError(source, [("", "a suite must be a YAML mapping with name, datasets, methods, hardware")])
    try:
        model = SuiteModel.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise SuiteError(source, [(_loc(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]) from None

    problems: list[tuple[str, str]] = []
    datasets = _resolve_all("dataset", "datasets", model.datasets, registry, problems)
    methods = _resolve_all("method", "methods", model.methods, registry, problems)
    hardware = _resolve_all("hardware", "hardware", model.hardware, registry, problems)
    metrics = model.metrics if model.metrics is not None else registry.names("metric")
    for i, m in enumerate(metrics):
        if m not in registry.items["metric"]:
            problems.append((f"metrics[{i}]", f"unknown metric {m!r}; available: {', '.join(registry.names('metric'))}"))
    _check_budgets(model.budgets, registry, problems)
    for kind, items in (("datasets", datasets), ("methods", methods), ("hardware", hardware)):
        seen: set[tuple] = set()
        for r in items:
            key = (r.name, tuple(sorted((k, repr(v)) for k, v in r.params.items())))
            if key in seen:
                problems.append((kind, f"{r.name!r} appears twice with the same parameters"))
            seen.add(key)
    if len(set(model.seeds)) != len(model.seeds):
        problems.append(("seeds", "seeds must be distinct"))
    suite = Suite(source, text, model, datasets, methods, hardware, metrics)
    if not problems:
        _resolve_targets(suite, registry, problems)
    if not problems:
        _check_size(suite, registry, problems)
    if problems:
        raise SuiteError(source, problems)
    return suite


def _check_budgets(budgets: list[str], registry: Registry, problems: list) -> None:
    from .results.report import parse_budgets
    from .results.tables import metric_columns

    declared = metric_columns((), registry)
    for i, text in enumerate(budgets):
        try:
            parse_budgets([text], declared)
        except ValueError as exc:
            problems.append((f"budgets[{i}]", str(exc)))


def _machine_memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return math.inf


def _check_size(suite: "Suite", registry: Registry, problems: list) -> None:
    """The plan's size and each dataset's memory, estimated before anything runs (O(1) in the grid)."""
    m = suite.model
    jobs = sum(len(t) for t in suite.targets.values()) * len(m.seeds) * len(suite.methods) * len(suite.hardware)
    if jobs > m.max_jobs:
        problems.append(("", f"the plan has {jobs:,} jobs, over max_jobs ({m.max_jobs:,}): lower seeds, target_users, "
                             "methods' grids or hardware (or raise max_jobs)"))
    limit = m.max_memory_gb if m.max_memory_gb is not None else _machine_memory_gb() / 2
    for i, d in enumerate(suite.datasets):
        instance = d.instance(registry)
        hint = instance.size_hint()
        if not hint:
            continue
        info = instance.describe()
        need_gb = hint * info.channels * info.window * 4 / 2**30
        if need_gb > limit:
            problems.append((f"datasets[{i}].params", f"dataset {d.name!r} would hold ~{need_gb:,.1f} GB of windows "
                             f"(~{hint:,} windows x {info.channels} channels x {info.window} samples x 4 B), over "
                             f"{limit:,.1f} GB (max_memory_gb): lower its users, windows, unseen_windows or sessions"))


def _resolve_all(kind: str, key: str, refs: list, registry: Registry, problems: list) -> list[Resolved]:
    out: list[Resolved] = []
    for i, ref in enumerate(refs):
        ref = PluginRef(name=ref) if isinstance(ref, str) else ref
        try:
            reg = registry.get(kind, ref.name)
        except PluginError as exc:
            problems.append((f"{key}[{i}].name", str(exc)))
            continue
        declared: dict[str, Param] = reg.cls.parameters
        points = expand_grid(ref.params, declared)
        if not points:
            empty = [k for k, v in ref.params.items() if v == []]
            problems.append((f"{key}[{i}].params", f"empty list for {', '.join(empty)}: the grid has no point"))
        swept = {k for k in ref.params if len({repr(p.get(k)) for p in points}) > 1}
        for j, point in enumerate(points):
            try:
                values = ParamValues.resolve(declared, point, owner=ref.name)
            except ParamError as exc:
                problems += [(f"{key}[{i}].params.{loc}", msg) for loc, msg in exc.errors]
                break
            try:
                instance = reg.cls(**values)
                if kind == "dataset":
                    instance.describe()  # datasets check their own parameters (paths, context names)
            except (ValueError, OSError) as exc:
                problems.append((f"{key}[{i}].params", str(exc)))
                break
            out.append(Resolved(kind, ref.name, dict(values), variant_label(values, declared, swept), reg.distribution,
                                reg.version))
    return out


def expand_grid(params: dict[str, Any], declared: dict[str, Param]) -> list[dict[str, Any]]:
    """A list value expands into a grid, except for list-typed parameters, where a list of lists does."""
    axes: list[list[tuple[str, Any]]] = []
    for name, value in params.items():
        list_typed = name in declared and isinstance(declared[name].default, (list, tuple))
        expands = isinstance(value, list) and (not list_typed or (value and all(isinstance(v, list) for v in value)))
        if expands and not value:
            axes.append([])
        else:
            axes.append([(name, v) for v in value] if expands else [(name, value)])
    return [dict(point) for point in itertools.product(*axes)]


def variant_label(values: dict[str, Any], declared: dict[str, Param], swept: set[str] = frozenset()) -> str:
    """A short label of the parameters that differ from their defaults or are swept by the grid (``block=fc``)."""
    diffs = []
    for name in sorted(values):
        default = declared[name].default if name in declared else None
        default = list(default) if isinstance(default, tuple) else default
        if values[name] != default or name in swept:
            v = values[name]
            diffs.append(f"{name}={','.join(map(str, v)) if isinstance(v, list) else v}")
    return " ".join(diffs)


def _resolve_targets(suite: Suite, registry: Registry, problems: list) -> None:
    wanted = suite.model.target_users
    for i, d in enumerate(suite.datasets):
        instance = d.instance(registry)
        users = list(instance.describe().users)
        if isinstance(wanted, int):
            if wanted >= len(users):
                problems.append(("target_users", f"{wanted} target users leave no population in dataset "
                                 f"{d.name!r} ({len(users)} users); use at most {len(users) - 1}"))
                continue
            suite.targets[i] = users[:wanted]
        else:
            unknown = [u for u in wanted if u not in users]
            if unknown:
                problems.append(("target_users", f"unknown users {unknown} in dataset {d.name!r}; known: {users}"))
                continue
            if len(set(wanted)) >= len(users):
                problems.append(("target_users", f"every user of {d.name!r} is a target; none is left for the population"))
                continue
            suite.targets[i] = list(dict.fromkeys(wanted))
        why = instance.check_targets(suite.targets[i]) if suite.targets.get(i) else None
        if why:
            problems.append(("target_users", f"dataset {d.name!r}: {why}"))
