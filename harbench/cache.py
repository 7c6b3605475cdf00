"""Trained weights cached by content hash as safetensors, job outputs as JSON: never pickled, so a cache file
cannot execute code.

Writes go to a temporary file renamed into place, so an interrupted run never leaves a half-written entry; failed
computations are never written at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


class WeightCache:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / f"{kind}-{key}.safetensors"

    def has(self, kind: str, key: str) -> bool:
        return self._path(kind, key).exists()

    def get(self, kind: str, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        path = self._path(kind, key)
        if not path.exists():
            self.misses += 1
            return None
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("harbench", "{}"))
        self.hits += 1
        return load_file(str(path)), meta

    def _json_path(self, kind: str, key: str) -> Path:
        return self.folder / f"{kind}-{key}.json"

    def has_json(self, kind: str, key: str) -> bool:
        return self._json_path(kind, key).exists()

    def get_json(self, kind: str, key: str) -> dict[str, Any] | None:
        path = self._json_path(kind, key)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # missing, unreadable or corrupt: recompute rather than fail the run
            return None

    def put_json(self, kind: str, key: str, obj: dict[str, Any]) -> None:
        self._write(self._json_path(kind, key), lambda tmp: Path(tmp).write_text(json.dumps(obj, default=str)))

    def put(self, kind: str, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        # safetensors refuses shared or non-contiguous storage; cache entries are independent copies
        clean = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
        self._write(self._path(kind, key),
                    lambda tmp: save_file(clean, tmp, metadata={"harbench": json.dumps(meta, default=str)}))

    def _write(self, path: Path, write) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
