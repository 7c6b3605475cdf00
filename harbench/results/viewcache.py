"""Rendered views cached by what they are computed from: the same rows, settings, code and plugins give the same
text, so a warm run prints its answer without recomputing it (nor importing scipy for its bootstrap intervals).

The key is a digest of the rows (as a set) without what differs between two runs of the same results (run and row ids,
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
MAX_ROWS = 20_000  # above it, views are computed each time: the digest of the rows costs seconds


def rows_digest(rows: Sequence[dict[str, Any]]) -> str:
    def clean(r: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in r.items() if k not in ("run_id", "id", "finished")}
        if isinstance(out.get("provenance"), dict):
            out["provenance"] = {k: v for k, v in out["provenance"].items() if k != "cache"}
        return out

    # as a set: a cold run commits jobs in the order they finish, a warm run in the plan's order
    digest = hashlib.sha256()
    for text in sorted(json.dumps(clean(r), sort_keys=True, default=str) for r in rows):
        digest.update(text.encode() + b"\n")
    return digest.hexdigest()[:24]


def cached(folder: Path | str, view: str, rows: Sequence[dict[str, Any]], settings: Any,
           compute: Callable[[], Any], keep: int | None = None) -> Any:
    """``compute()``'s value (JSON-serialisable), from ``folder``'s cache when these rows and settings were seen
    before; ``keep``: at most that many entries stay in ``folder`` (the newest)."""
    from ..registry_snapshot import key as registry_key
    from ..run.cache import WeightCache

    if len(rows) > MAX_ROWS:
        return compute()  # digesting every row would cost as much as the view
    cache = WeightCache(Path(folder), on_damage=lambda message: None)  # unreadable or damaged: a miss, recomputed
    key = content_hash([view, rows_digest(rows), repr(settings), code_version(__name__), registry_key()])
    hit = cache.get_json(KIND, key)
    if isinstance(hit, dict) and hit.get("view") == view and "value" in hit:
        return hit["value"]
    value = compute()
    try:
        cache.put_json(KIND, key, {"view": view, "value": value})
        if keep is not None:
            entries = sorted(Path(folder).glob(f"{KIND}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in entries[keep:]:
                old.unlink(missing_ok=True)
    except OSError:  # a read-only folder still gets its view
        pass
    return value


def cached_text(folder: Path | str, view: str, rows: Sequence[dict[str, Any]], settings: Any,
                compute: Callable[[], str]) -> str:
    """A rendered view cached in the results folder's cache (``RESULTS/cache``)."""
    return str(cached(Path(folder) / "cache", view, rows, settings, compute))
