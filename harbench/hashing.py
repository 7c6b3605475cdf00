"""Content hashes for cache keys and job identities: canonical JSON, so key order never matters."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(obj: Any, length: int = 20) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:length]
