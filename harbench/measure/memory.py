"""Memory a forward or backward pass holds, traced operator by operator (not read off the allocator), so the
figure is the same on every machine and independent of what ran before in the process. Used by the measured
``cpu`` target and, through ``harbench.LiveBytes``, by device plugins' estimates."""

from __future__ import annotations

import weakref
from typing import Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """The bytes of tensor storage that operators allocate and that are still referenced, and their peak.

    Every operator's outputs are counted from the moment they exist until the last tensor that views their storage
    is freed (a weak reference per tensor), so the peak is the largest live set of activations one forward holds,
    independent of the allocator's caching and of what ran before in the process."""

    def __init__(self, held: Iterable[torch.Tensor | int] = ()) -> None:
        """``held``: tensors (or their storages' addresses) counted apart, e.g. the weights and the input."""
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage address -> [bytes, tensors viewing it]
        self._held = {h if isinstance(h, int) else h.untyped_storage().data_ptr() for h in held}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if not key or key in self._held:
            return
        ref = self._refs.get(key)
        if ref is None:
            ref = self._refs[key] = [storage.nbytes(), 0]
            self.live += ref[0]
            self.peak = max(self.peak, self.live)
        ref[1] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        ref = self._refs.get(key)
        if ref is not None:
            ref[1] -= 1
            if ref[1] <= 0:
                self.live -= ref[0]
                del self._refs[key]
