"""A registry snapshot, so that reading commands need neither torch nor the plugins.

Loading the registry imports every plugin, and every plugin imports torch (seconds). What ``report``, ``export``,
``compare``, ``list``, ``plugins`` and ``--help`` need from it is data: names, kinds, descriptions, parameters,
metric units and directions, the plugins' commands and which plugins implement ``harbench_report_summary``.
:func:`save` writes that data whenever the command line loads a full registry; :func:`reading_registry` returns
it while it is still valid, else loads the full registry (and writes a new snapshot).

Valid means: the same key, a hash of the Python version and prefix, ``HARBENCH_LOAD_PLUGINS`` and
``HARBENCH_PLUGINS``, every ``harbench`` entry point (distribution, version, target) and the Python source of the
core and of every plugin package (found with ``importlib.util.find_spec``, which imports nothing). Editing a
plugin, installing or removing one, or changing either variable makes a new key. Snapshots live in
``$HARBENCH_CACHE_DIR`` (default ``$XDG_CACHE_HOME/harbench``, i.e. ``~/.cache/harbench``), one file per key; a
folder that cannot be written only means the next command loads the plugins again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

FORMAT = 1
KEEP = 8  # snapshots kept (one per key: other environments, other HARBENCH_PLUGINS settings)
GROUP = "harbench"
SUMMARY_HOOK = "harbench_report_summary"
LISTED = ("dataset", "method", "hardware", "metric", "backbone")


def folder() -> Path:
    explicit = os.environ.get("HARBENCH_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harbench"


def _source_hash(module: str) -> str:
    """Hash of the Python source of ``module``'s top-level package, located without importing anything."""
    top = module.split(":")[0].split(".")[0].strip()
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return "missing"
    digest = hashlib.sha256()
    roots = list(spec.submodule_search_locations or [])
    files = [(Path(r), p) for r in roots for p in sorted(Path(r).rglob("*.py"))] if roots else []
    if not roots and spec.origin and os.path.isfile(spec.origin):
        files = [(Path(spec.origin).parent, Path(spec.origin))]
    for root, path in files:
        digest.update(str(path.relative_to(root)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()[:16]


_keys: dict[tuple[str | None, str], str] = {}


def key() -> str:
    """The identity of what a full registry load would produce in this environment (imports no plugin).

    Computed once per process and plugin settings (it reads every plugin's source): a process sees the plugins it
    started with, so a snapshot saved later in its life still describes the registry it loaded."""
    env = (os.environ.get("HARBENCH_LOAD_PLUGINS"), os.environ.get("HARBENCH_PLUGINS", ""))
    if env not in _keys:
        _keys[env] = _key()
    return _keys[env]


def _key() -> str:
    parts: list[Any] = [FORMAT, sys.version, sys.prefix, os.environ.get("HARBENCH_LOAD_PLUGINS"),
                        os.environ.get("HARBENCH_PLUGINS", ""), _source_hash("harbench")]
    for ep in sorted(md.entry_points(group=GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name, e.value)):
        parts.append([ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "?", ep.name, ep.value,
                      _source_hash(ep.value)])
    for name in os.environ.get("HARBENCH_PLUGINS", "").split(","):
        if name.strip():
            parts.append([name.strip(), _source_hash(name)])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def _path(k: str) -> Path:
    return folder() / f"registry-{k}.json"


# ------------------------------------------------------------------------------------------------ writing


def listing(registry: Any, kind: str) -> list[dict[str, Any]]:
    """``harbench list KIND`` as data: each registered plugin (or backbone) with its parameters and defaults."""
    if kind == "backbone":
        from .models import BACKBONES

        users: dict[str, list[str]] = {}
        for name in registry.names("method"):
            users.setdefault(str(getattr(registry.items["method"][name].cls, "backbone", "")), []).append(name)
        return [{"name": name, "builder": getattr(build, "__name__", str(build)),
                 "description": ((build.__doc__ or "").strip().splitlines() or [""])[0],
                 "methods": sorted(users.get(name, []))} for name, build in BACKBONES.items()]
    out = []
    for name in registry.names(kind):
        r = registry.items[kind][name]
        entry: dict[str, Any] = {"name": name, "distribution": r.distribution, "version": r.version,
                                 "description": r.cls.description}
        if kind == "metric":
            entry.update(unit=r.cls.unit, higher_is_better=r.cls.higher_is_better)
        entry["parameters"] = {p: {"type": v.describe_type(), "default": v.default, "help": v.help}
                               for p, v in r.cls.parameters.items()}
        out.append(entry)
    return out


def listing_lines(entries: list[dict[str, Any]], kind: str, fmt: str = "text") -> list[str]:
    """The lines ``harbench list`` prints: the entries as JSON, or one bold name per entry with its details."""
    import json

    import click

    if fmt == "json":
        return [json.dumps(entries, indent=2, default=repr)]
    lines = []
    for e in entries:
        origin = e["builder"] if kind == "backbone" else f"{e['distribution']} {e['version']}"
        lines.append(click.style(e["name"], bold=True) + f"  ({origin}) — {e['description']}")
        if kind == "backbone":
            lines.append(f"    methods: {', '.join(e['methods']) or '—'}")
        if kind == "metric":
            unit = f" [{e['unit']}]" if e["unit"] else ""
            better = {True: "higher is better", False: "lower is better", None: "label"}[e["higher_is_better"]]
            lines.append(f"    {better}{unit}")
        for pname, p in e.get("parameters", {}).items():
            lines.append(f"    {pname}: {p['type']} = {p['default']!r}  {p['help']}")
    return lines




def snapshot(registry: Any) -> dict[str, Any]:
    """The data of a loaded registry that reading commands use (JSON-serialisable)."""
    import click

    items: dict[str, list[dict[str, Any]]] = {}
    for kind, entries in registry.items.items():
        items[kind] = [{"name": r.name, "distribution": r.distribution, "version": r.version,
                        "description": str(getattr(r.cls, "description", "") or ""),
                        "unit": getattr(r.cls, "unit", None), "higher_is_better": getattr(r.cls, "higher_is_better", None),
                        "backbone": str(getattr(r.cls, "backbone", "") or "")} for r in entries.values()]
    listings = {kind: {fmt: listing_lines(listing(registry, kind), kind, fmt) for fmt in ("text", "json")}
                for kind in LISTED}
    collector = click.Group()
    commands: list[dict[str, str]] = []
    try:
        registry.hook.harbench_register_commands(cli=collector)
        commands = [{"name": name, "help": cmd.get_short_help_str(limit=10**6)}
                    for name, cmd in sorted(collector.commands.items())]
    except Exception:  # noqa: BLE001 -- the command line reports a plugin's failing command when it loads it
        commands = []
    return {"format": FORMAT, "items": items, "plugins": [asdict(p) for p in registry.plugins],
            "listings": listings, "commands": commands}


def save(registry: Any) -> Path | None:
    """Write ``registry``'s snapshot under the current key (atomically); None where the folder is not writable."""
    k = key()
    data = {"key": k, **snapshot(registry)}
    target = _path(k)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".registry-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, default=repr)
        os.replace(tmp, target)
        old = sorted(target.parent.glob("registry-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]
        for p in old:
            p.unlink(missing_ok=True)
    except OSError:
        return None
    return target


def load_saved() -> dict[str, Any] | None:
    """The snapshot of the current key, or None (missing, unreadable, another format)."""
    k = key()
    try:
        data = json.loads(_path(k).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == k and data.get("format") == FORMAT else None


# ------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Item:
    """What a snapshot knows of one registered plugin; ``cls`` carries the class attributes views read."""

    kind: str
    name: str
    cls: Any
    distribution: str
    version: str


class SnapshotRegistry:
    """Duck-types the parts of :class:`harbench.plugins.Registry` that reading views use; ``full()`` (and any hook
    call that needs plugin code) loads the real registry."""

    def __init__(self, data: dict[str, Any]) -> None:
        from .plugins import LoadedPlugin

        self.data = data
        self.items: dict[str, dict[str, Item]] = {
            kind: {e["name"]: Item(kind, e["name"], SimpleNamespace(**e), e["distribution"], e["version"])
                   for e in entries} for kind, entries in data["items"].items()}
        self.plugins = [LoadedPlugin(**p) for p in data["plugins"]]
        self.commands: list[dict[str, str]] = data["commands"]
        self._hooks: Any = None  # summary_hooks' registry, loaded on first use

    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def get(self, kind: str, name: str) -> Item:
        try:
            return self.items[kind][name]
        except KeyError:
            from .plugins import PluginError

            known = ", ".join(sorted(self.items[kind])) or "none"
            raise PluginError(f"unknown {kind} {name!r}; available: {known}") from None

    def backbone(self, method: str) -> str:
        return str(self.get("method", method).cls.backbone)

    def versions(self) -> dict[str, str]:
        return {p.distribution: p.version for p in self.plugins if p.status == "loaded"}

    def summary_needed(self, rows: list[dict[str, Any]]) -> bool:
        """Whether a plugin with a ``harbench_report_summary`` hook may answer for these rows: one registered a
        dataset, method or hardware target the rows use, or registers none at all (a summary-only plugin)."""
        with_hook = {p.distribution for p in self.plugins if p.status == "loaded" and SUMMARY_HOOK in p.hooks}
        if not with_hook:
            return False
        owners: dict[str, set[str]] = {}
        for kind, column in (("dataset", "dataset"), ("method", "method"), ("hardware", "hardware")):
            for name, item in self.items.get(kind, {}).items():
                owners.setdefault(item.distribution, set()).add(f"{column}={name}")
        used = {f"{c}={r.get(c)}" for r in rows for c in ("dataset", "method", "hardware")}
        return any(not owners.get(d) or owners[d] & used for d in with_hook)

    def summary_hooks(self) -> Any:
        """Every summary hook the full registry would call, without the rest of it: the entry-point modules of the
        plugins that implement ``harbench_report_summary`` (no method class, so no torch where a plugin keeps its
        summary torch-free). Where one of them no longer imports, the full registry is loaded instead, so that
        the failure is reported as a full load reports it, never silently left out of a cached summary."""
        from .plugins import hooks_only

        if self._hooks is None:
            self._hooks = hooks_only([p for p in self.plugins if p.status == "loaded" and SUMMARY_HOOK in p.hooks])
        if any(p.status != "loaded" for p in self._hooks.plugins):
            return self.full().hook
        return self._hooks.hook

    def full(self) -> Any:
        return full_registry()

    @property
    def hook(self) -> Any:
        return _Hooks(self)


class _Hooks:
    def __init__(self, snap: SnapshotRegistry) -> None:
        self._snap = snap

    def harbench_report_summary(self, rows: list[dict[str, Any]]) -> list[Any]:
        if not self._snap.summary_needed(rows):
            return []  # no plugin with a summary hook is concerned: the plugins (and torch) are not imported
        return list(self._snap.summary_hooks().harbench_report_summary(rows=rows))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._snap.full().hook, name)


def full_registry() -> Any:
    """The process-wide full registry; when this call loads it from the environment, its snapshot is saved."""
    from . import plugins

    fresh = plugins._registry is None  # a registry installed by a test is not the environment's: never saved
    registry = plugins.get_registry()
    if fresh:
        save(registry)
    return registry


_read: dict[tuple[str | None, str | None], SnapshotRegistry] = {}


def reading_registry() -> Any:
    """The registry a reading view uses: the loaded one if this process has it, else a valid snapshot (checked once
    per process and plugin settings), else the full registry (which saves a snapshot for the next command)."""
    from . import plugins

    if plugins._registry is not None:
        return plugins._registry
    env = (os.environ.get("HARBENCH_LOAD_PLUGINS"), os.environ.get("HARBENCH_PLUGINS"))
    if env in _read:
        return _read[env]
    data = load_saved()
    if data is not None:
        try:
            _read[env] = SnapshotRegistry(data)
            return _read[env]
        except (KeyError, TypeError):
            pass
    return full_registry()
