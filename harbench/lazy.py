"""PEP 562 lazy exports: a package whose public names live in submodules imported on first use.

``import harbench`` (and ``import harbench_tbft``) must cost nothing, because the reading commands import them only
for a few names (a hook marker, a claim table's statistics) and loading torch would cost seconds. A package lists
where each public name lives; the first lookup of a name imports its submodule and keeps the value as a plain
module attribute, so later lookups cost nothing. ``from pkg import Name`` works as with an eager import.
Plugins use it through ``harbench.lazy_exports``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` (its ``__name__``), whose name ``N`` is found in the
    submodule ``where[N]`` (relative, e.g. ``".method"``). Assign them at module level:
    ``__getattr__, __dir__ = lazy_exports(__name__, {"TBFT": ".method"})``."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
