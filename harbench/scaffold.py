"""``harbench new KIND NAME``: scaffold a ready-to-install plugin distribution.

The scaffold is the path a third party follows to publish: a pyproject with the entry point, a working minimal
implementation, tests that call the conformance suite, an example suite and a README. It never overwrites
anything: an existing target folder is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from . import scaffold_templates as T

KINDS = ("method", "dataset", "hardware", "metric")
_IMPLEMENTATION = {"method": T.METHOD, "dataset": T.DATASET, "hardware": T.HARDWARE, "metric": T.METRIC}
_HOOK = {"method": "methods", "dataset": "datasets", "hardware": "hardware", "metric": "metrics"}
_NAME = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class Scaffolded:
    root: Path
    dist: str
    package: str
    cls: str
    files: tuple[Path, ...]
    suite_name: str = "suite.yaml"


def names_for(kind: str, name: str) -> dict[str, str]:
    """``my-method`` → distribution ``harbench-my-method``, package ``harbench_my_method``, class ``MyMethod``."""
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; expected one of {', '.join(KINDS)}")
    name = name.removeprefix("harbench-")
    if not _NAME.match(name):
        raise ValueError(f"plugin name {name!r}: use lower-case letters, digits and single '-' or '_' "
                         "(e.g. my-method), starting with a letter")
    words = re.split(r"[-_]", name)
    cls = "".join(w.capitalize() for w in words)
    dist = f"harbench-{name.replace('_', '-')}"
    return {"name": name, "dist": dist, "package": dist.replace("-", "_"), "cls": cls, "kind": kind,
            "hook": _HOOK[kind], "summary": f"harbench {kind} plugin: {name}",
            "extra_checks": T.EXTRA_CHECKS[kind]}


def scaffold(kind: str, name: str, folder: str | Path = ".") -> Scaffolded:
    """Write the plugin distribution into ``folder/harbench-NAME`` and return what was created."""
    values = names_for(kind, name)
    root = Path(folder) / values["dist"]
    if root.exists():
        raise ValueError(f"{root} already exists; choose another name or folder")
    package = root / values["package"]
    files = {
        root / "pyproject.toml": T.PYPROJECT,
        root / "README.md": T.README,
        root / "suite.yaml": T.SUITES[kind],
        package / "__init__.py": T.INIT,
        package / "plugin.py": _IMPLEMENTATION[kind],
        root / "tests" / "test_conformance.py": T.TESTS[kind],
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
    return Scaffolded(root, values["dist"], values["package"], values["cls"], tuple(files))
