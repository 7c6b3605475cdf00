"""Rendered views cached by what they are computed from: the same rows, settings, code and plugins give the same
text, so a warm run prints its answer without recomputing it (nor importing scipy for its bootstrap intervals).

The key is a digest of the rows without what differs between two runs of the same results (run and row ids,
finish times, the cache block of a row's provenance), the view's settings, the core's source and the registry
snapshot key (plugins' versions and source); the entry lives in the results folder's cache, digest-checked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Sequence

from ..hashing import code_version, content_hash

KIND = "view"


def rows_digest(rows: Sequence[dict[str, Any]]) -> str:
    def clean(r: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in r.items() if k not in ("run_id", "id", "finished")}
        if isinstance(out.get("provenance"), dict):
            out["provenance"] = {k: v for k, v in out["provenance"].items() if k != "cache"}
        return out

    text = json.dumps([clean(r) for r in rows], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_text(folder: Path | str, view: str, rows: Sequence[dict[str, Any]], settings: Any,
                compute: Callable[[], str]) -> str:
    """``compute()``'s text, from ``folder``'s cache when these rows and settings were rendered before."""
    from ..registry_snapshot import key as registry_key
    from ..run.cache import WeightCache

    cache = WeightCache(Path(folder) / "cache")
    key = content_hash([view, rows_digest(rows), repr(settings), code_version(__name__), registry_key()])
    hit = cache.get_json(KIND, key)
    if isinstance(hit, dict) and isinstance(hit.get("text"), str):
        return hit["text"]
    text = compute()
    try:
        cache.put_json(KIND, key, {"view": view, "text": text})
    except OSError:  # a read-only results folder still gets its view
        pass
    return text
