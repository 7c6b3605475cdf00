"""Trained weights cached by content hash as safetensors, job outputs as JSON: never pickled, so a cache file
cannot execute code.

The key names an entry's *inputs*; each entry also carries a digest of its own *content* (SHA-256 of the tensors'
names, dtypes, shapes and bytes, or of the canonical JSON), verified on every read. A damaged entry — a flipped
digit in a job record, a flipped exponent bit in a generic model, a truncated file — is reported in one line,
discarded and recomputed: never served, never fatal to a later run.

Writes go to a temporary file (named with the writer's pid) renamed into place, so an interrupted run never leaves
a half-written entry; a temporary file whose writer is gone is removed by the next run (:meth:`clean`). Failed
computations are never written at all.

Processes sharing a cache (two runs on one results folder, a pool's workers) never compute the same entry at once:
:meth:`WeightCache.computing` holds an exclusive ``flock`` on ``.locks/<kind>-<key>.lock``, and whoever waited
looks in the cache again and loads the first one's result. The kernel drops a lock when its holder dies, so a
killed run never leaves a key locked; the empty lock files stay (removing one would race with a waiter).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..hashing import canonical

if TYPE_CHECKING:
    import torch

# torch and safetensors are imported by the tensor methods only: a warm run reads JSON job nodes without torch

_DIGEST = "harbench_digest"


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensors[name].shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _json_digest(payload: Any) -> str:
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


def _entry(name: str) -> str:
    """A weights entry's file name, checked: it came from another process (kind, a hex key, .safetensors)."""
    kind, _, rest = name.partition("-")
    key, dot, ext = rest.partition(".")
    if kind not in ("generic", "prepare", "adapt") or not key or ext != "safetensors" or not dot \
            or any(c not in "0123456789abcdef" for c in key):
        raise ValueError(f"not a cache entry name: {name!r}")
    return name


def _report(message: str) -> None:
    print(f"harbench: {message}", file=sys.stderr)


class WeightCache:
    def __init__(self, folder: str | Path, on_damage: Callable[[str], None] = _report):
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0
        self.damaged = 0
        self.on_damage = on_damage
        self.written: list[str] | None = None  # when a list: the names of the weights entries put since

    @contextmanager
    def computing(self, kind: str, key: str) -> Iterator[None]:
        """Hold the entry's lock across other processes: look in the cache again once inside, compute on a miss."""
        locks = self.folder / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{kind}-{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @staticmethod
    def entry_name(kind: str, key: str, json: bool = False) -> str:
        """The file name of an entry in the cache folder (weights: safetensors; job outputs: JSON)."""
        return f"{kind}-{key}.json" if json else f"{kind}-{key}.safetensors"

    def listing(self) -> set[str]:
        """The names of every file in the cache folder, read once (one ``scandir``): ``entry_name(...) in listing``
        answers :meth:`has` for a whole plan without one ``stat`` per job. A snapshot: what is written later is
        not in it."""
        try:
            with os.scandir(self.folder) as entries:
                return {e.name for e in entries}
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / self.entry_name(kind, key)

    def has(self, kind: str, key: str) -> bool:
        return self._path(kind, key).exists()

    def get(self, kind: str, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = self._path(kind, key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
            meta = json.loads(header.get("harbench", "{}"))
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            self._discard(path, f"unreadable ({type(exc).__name__})")
            return None
        if header.get(_DIGEST) != tensors_digest(tensors):
            self._discard(path, "its content does not match its digest")
            return None
        self.hits += 1
        return tensors, meta

    def _json_path(self, kind: str, key: str) -> Path:
        return self.folder / self.entry_name(kind, key, json=True)

    def has_json(self, kind: str, key: str) -> bool:
        return self._json_path(kind, key).exists()

    def get_json(self, kind: str, key: str) -> dict[str, Any] | None:
        path = self._json_path(kind, key)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._discard(path, f"unreadable ({type(exc).__name__})")
            return None
        if not isinstance(doc, dict) or doc.get(_DIGEST) != _json_digest(doc.get("payload")):
            self._discard(path, "its content does not match its digest")
            return None
        return doc["payload"]

    def _discard(self, path: Path, why: str) -> None:
        self.damaged += 1
        self.misses += 1
        try:
            path.unlink()
        except OSError:
            pass
        self.on_damage(f"cache entry {path} is damaged ({why}): discarded, it will be recomputed")
        return None

    def put_json(self, kind: str, key: str, obj: dict[str, Any]) -> None:
        payload = json.loads(json.dumps(obj, default=str))  # the digest covers exactly what a reader will parse
        doc = {_DIGEST: _json_digest(payload), "payload": payload}
        self._write(self._json_path(kind, key), lambda tmp: Path(tmp).write_text(json.dumps(doc)))

    def put(self, kind: str, key: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        # safetensors refuses shared or non-contiguous storage; cache entries are independent copies
        clean = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
        header = {"harbench": json.dumps(meta, default=str), _DIGEST: tensors_digest(clean)}
        self._write(self._path(kind, key), lambda tmp: save_file(clean, tmp, metadata=header))
        if self.written is not None:
            self.written.append(self.entry_name(kind, key))

    # ------------------------------------------- whole entries, as bytes (Ray workers without the shared disk)
    def read_entry(self, name: str) -> bytes | None:
        """A weights entry's file as it is on disk (its digest inside), or None when this cache lacks it."""
        try:
            return (self.folder / _entry(name)).read_bytes()
        except FileNotFoundError:
            return None

    def write_entry(self, name: str, data: bytes) -> None:
        """Store an entry another cache wrote (atomically, like every write); its digest is checked when read."""
        self._write(self.folder / _entry(name), lambda tmp: Path(tmp).write_bytes(data))

    def _write(self, path: Path, write) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{os.getpid()}-", suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def clean(self) -> int:
        """Remove temporary files left by writers that are no longer running (a killed run); returns how many."""
        removed = 0
        for tmp in self.folder.glob(".*.tmp") if self.folder.is_dir() else ():
            try:
                pid = int(tmp.name[1:].split("-", 1)[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _alive(pid):
                try:
                    tmp.unlink()
                    removed += 1
                except OSError:
                    pass
        for tmp in self.folder.glob("*.tmp") if self.folder.is_dir() else ():  # the old naming, before pids
            if not tmp.name.startswith("."):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
