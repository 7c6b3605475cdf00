"""Content hashes for cache keys and job identities: canonical JSON, so key order never matters."""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(obj: Any, length: int = 20) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:length]


@functools.cache
def code_version(module_name: str) -> str:
    """A hash of the Python source of the top-level package that defines ``module_name``.

    Cache keys include it, so editing a plugin's code (without bumping its version) re-runs only its nodes.
    """
    package = sys.modules.get(module_name.split(".")[0])
    if package is None or not (getattr(package, "__path__", None) or getattr(package, "__file__", None)):
        return "unknown"  # defined outside any importable package (e.g. built in a test)
    digest = hashlib.sha256()
    if not getattr(package, "__path__", None):  # a single-file module: its own source, not its folder's
        digest.update(Path(package.__file__).read_bytes())
        return digest.hexdigest()[:16]
    for root in (Path(p) for p in package.__path__):
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
