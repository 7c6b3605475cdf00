"""``harbench new KIND NAME``: scaffold a ready-to-install plugin distribution.

The scaffold is the path a third party follows to publish: a pyproject with the entry point, a working minimal
implementation, tests that call the conformance suite, an example suite and a README. It never overwrites
anything: an existing target folder is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

KINDS = ("method", "dataset", "hardware", "metric")
_HOOK = {"method": "methods", "dataset": "datasets", "hardware": "hardware", "metric": "metrics"}
_NAME = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")
# what the generated README says the conformance tests check, per kind
EXTRA_CHECKS = {
    "method": "that it never modifies its inputs or uses data it must not see (other contexts, labels when "
              "label-free), that its prepared state survives the safetensors cache,",
    "dataset": "the leakage checks (no target user in the population, no time overlap between splits),",
    "hardware": "the cost contracts (named energy method, finite non-negative figures, one adapt call),",
    "metric": "that compute() returns a finite number, a label or None without modifying the outputs,",
}


def template(name: str) -> str:
    """A template file of this package (``templates/NAME.tmpl``, string.Template syntax: ``$name``)."""
    return files(__package__).joinpath("templates", f"{name}.tmpl").read_text()


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
            "extra_checks": EXTRA_CHECKS[kind]}


def scaffold(kind: str, name: str, folder: str | Path = ".") -> Scaffolded:
    """Write the plugin distribution into ``folder/harbench-NAME`` and return what was created."""
    values = names_for(kind, name)
    root = Path(folder) / values["dist"]
    if root.exists():
        raise ValueError(f"{root} already exists; choose another name or folder")
    package = root / values["package"]
    written = {
        root / "pyproject.toml": "pyproject.toml",
        root / "README.md": "README.md",
        root / "suite.yaml": f"suite-{kind}.yaml",
        package / "__init__.py": "__init__.py",
        package / "plugin.py": f"plugin-{kind}.py",
        root / "tests" / "test_conformance.py": f"test_conformance-{kind}.py",
    }
    for path, name in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template(name)).substitute(values))
    return Scaffolded(root, values["dist"], values["package"], values["cls"], tuple(written))
