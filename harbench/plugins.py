"""The one plugin manager: loads the ``harbench`` entry-point group one entry at a time and builds the registry.

pluggy's ``load_setuptools_entrypoints`` stops at the first import error, so entry points are loaded one by one:
a broken plugin is recorded with its reason (``harbench plugins`` shows it) and the others still load.
``HARBENCH_LOAD_PLUGINS`` (a comma-separated list of distribution names; empty = built-ins only) pins which
third-party plugins load, for tests and reproducible runs. The core distribution's own entry points always load.
``HARBENCH_PLUGINS`` (comma-separated importable module names, like pytest's ``PYTEST_PLUGINS``) registers plugin
modules that are not installed as distributions, e.g. a plugin under development; worker processes inherit it.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import pluggy

from . import hookspecs

if TYPE_CHECKING:
    from .api import Plugin

GROUP = "harbench"
CORE_DIST = "harbench"
KIND_NAMES = ("dataset", "method", "hardware", "metric")


def plugin_bases() -> dict[str, type[Plugin]]:
    """Each kind's base class (imports ``harbench.api``, hence torch: only a registry that loads plugins needs it)."""
    from .api import Dataset, Hardware, Method, Metric

    return {"dataset": Dataset, "method": Method, "hardware": Hardware, "metric": Metric}


def __getattr__(name: str) -> Any:
    if name == "KINDS":  # ``KINDS`` (kind -> base class) for code that imported it; built on first use
        return plugin_bases()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_HOOKS = {
    "dataset": "harbench_register_datasets",
    "method": "harbench_register_methods",
    "hardware": "harbench_register_hardware",
    "metric": "harbench_register_metrics",
}


class PluginError(RuntimeError):
    pass


@dataclass(frozen=True)
class Registered:
    kind: str
    name: str
    cls: type[Plugin]
    distribution: str
    version: str


@dataclass
class LoadedPlugin:
    entry_point: str
    distribution: str
    version: str
    status: str  # loaded | broken
    reason: str = ""
    hooks: list[str] = field(default_factory=list)


class Registry:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Registered]] = {k: {} for k in KIND_NAMES}
        self.plugins: list[LoadedPlugin] = []
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._dist_of: dict[int, tuple[str, str]] = {}
        self.from_environment = False  # loaded by get_registry() and unchanged since (see run/warm.py)

    # ------------------------------------------------------------------------------------------ loading
    def add_plugin(self, module: Any, distribution: str, version: str, entry_point: str | None = None,
                   collect: bool = True) -> None:
        """Register a plugin module (or object) as coming from ``distribution``; used for entry points and tests.
        ``collect=False`` registers its hook implementations only: its registration hooks are not called."""
        self.from_environment = False  # a plugin added to a loaded registry: no longer what the snapshot says
        name = entry_point or getattr(module, "__name__", repr(module))
        if self.pm.is_registered(module):
            return
        self.pm.register(module, name=f"{distribution}:{name}")
        self._check_own_hooks(module, name)
        self._dist_of[id(module)] = (distribution, version)
        hooks = [h.name for h in self.pm.get_hookcallers(module) or []]
        self.plugins.append(LoadedPlugin(name, distribution, version, "loaded", hooks=sorted(hooks)))
        if collect:
            before = {kind: set(items) for kind, items in self.items.items()}
            try:
                self._collect(module, distribution, version)
            except BaseException:  # e.g. a method's import failing in its hook: the plugin is wholly broken,
                self.pm.unregister(module)  # never half-registered (the caller records it as broken)
                self.plugins.pop()
                self._dist_of.pop(id(module), None)
                for kind, items in self.items.items():
                    for added in set(items) - before[kind]:
                        del items[added]
                raise

    def _check_own_hooks(self, module: Any, name: str) -> None:
        """This plugin's hook implementations must all match a spec (pluggy's ``check_pending`` checks every
        plugin at once, so one misspelt hook would mark every plugin loaded after it broken). A plugin that
        fails is unregistered again, so it contributes nothing."""
        unknown = sorted(
            caller.name for caller in self.pm.get_hookcallers(module) or []
            if caller.spec is None
            and not all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is module)
        )
        if unknown:
            self.pm.unregister(module)
            raise pluggy.PluginValidationError(
                module, f"plugin {name!r}: unknown hook(s) {', '.join(unknown)}; known: "
                        f"{', '.join(sorted(n for n in dir(hookspecs) if n.startswith('harbench_')))}")

    def load_entry_points(self, allowed: Iterable[str] | None) -> None:
        allowed_set = None if allowed is None else {a.strip().lower() for a in allowed if a.strip()}
        for ep in sorted(md.entry_points(group=GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name)):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if dist != CORE_DIST and allowed_set is not None and dist.lower() not in allowed_set:
                continue
            self.load_one(ep.load, ep.name, dist, version)

    def load_modules(self, names: Iterable[str]) -> None:
        """Register plugin modules by import name (``HARBENCH_PLUGINS``); each counts as its own distribution."""
        import importlib

        for name in (n.strip() for n in names):
            if name:
                self.load_one(lambda name=name: importlib.import_module(name), name, name, "0+local")

    def load_one(self, load: Callable[[], Any], name: str, dist: str, version: str, collect: bool = True) -> None:
        """Import one plugin module with ``load`` and register it. A plugin that fails to import or register is
        recorded as broken, with the reason, and the others still load; a :class:`PluginError` (two plugins
        registering one name) stops the load."""
        try:
            self.add_plugin(load(), dist, version, entry_point=name, collect=collect)
        except PluginError:
            raise
        except pluggy.PluginValidationError as exc:
            self._broken(name, dist, version, f"invalid hook implementation: {exc}")
        except Exception as exc:  # a broken third-party plugin must not take the others down
            self._broken(name, dist, version, f"{type(exc).__name__}: {exc}")

    def _broken(self, name: str, dist: str, version: str, reason: str) -> None:
        self.plugins.append(LoadedPlugin(name, dist, version, "broken", reason))

    def _collect(self, module: Any, distribution: str, version: str) -> None:
        for kind, hook in _HOOKS.items():
            impl = getattr(module, hook, None)
            if impl is None:
                continue

            def register(cls: type[Plugin], _kind: str = kind) -> None:
                self._register(_kind, cls, distribution, version)

            impl(register=register)

    def _register(self, kind: str, cls: type[Plugin], distribution: str, version: str) -> None:
        self.from_environment = False
        base = plugin_bases()[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"plugin {distribution!r} registered {cls!r} as a {kind}, but it is not a harbench.{base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {distribution!r} registered {cls.__name__} without a `name`")
        existing = self.items[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by {existing.distribution!r} and by {distribution!r}; "
                f"uninstall one or pin plugins with HARBENCH_LOAD_PLUGINS"
            )
        self.items[kind][name] = Registered(kind, name, cls, distribution, version)

    # ------------------------------------------------------------------------------------------ lookups
    def backbone(self, method: str) -> str:
        """The backbone a method's generic model is (``Method.backbone``)."""
        cls = self.get("method", method).cls
        return str(getattr(cls, "backbone"))

    def get(self, kind: str, name: str) -> Registered:
        try:
            return self.items[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.items[kind])) or "none"
            raise PluginError(f"unknown {kind} {name!r}; available: {known}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def versions(self) -> dict[str, str]:
        return {p.distribution: p.version for p in self.plugins if p.status == "loaded"}

    @property
    def hook(self) -> Any:
        return self.pm.hook


def hooks_only(loaded: Iterable[LoadedPlugin]) -> Registry:
    """A registry of these plugins' hook implementations alone, registered in the given order (pluggy calls them
    in reverse, as in the full registry): no registration hook is called, so no plugin class is imported.

    A reading view that needs one hook of a few plugins (``harbench_report_summary``) loads this instead of the
    full registry, once a registry snapshot (``registry_snapshot``) has said which plugins implement it: importing
    a paper plugin's entry-point module costs milliseconds, registering its methods imports torch (seconds).
    ``loaded`` are records of a full registry in this environment (an entry point, or a ``HARBENCH_PLUGINS``
    module); one that no longer imports is recorded as broken, as a full load would."""
    import importlib

    entry_points = {(ep.dist.name if ep.dist else "?", ep.name): ep for ep in md.entry_points(group=GROUP)}
    registry = Registry()
    for record in loaded:
        ep = entry_points.get((record.distribution, record.entry_point))
        load = ep.load if ep is not None else lambda name=record.entry_point: importlib.import_module(name)
        registry.load_one(load, record.entry_point, record.distribution, record.version, collect=False)
    return registry


def allowed_from_env() -> list[str] | None:
    value = os.environ.get("HARBENCH_LOAD_PLUGINS")
    return None if value is None else value.split(",")


_registry: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None or refresh:
        reg = Registry()
        reg.load_entry_points(allowed_from_env())
        reg.load_modules(os.environ.get("HARBENCH_PLUGINS", "").split(","))
        reg.from_environment = True  # what the registry snapshot (and a warm run's plan memo) describe
        _registry = reg
    return _registry
