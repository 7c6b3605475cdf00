"""What a label-free method receives: an unlabelled stream of the user's windows as a device records them.

A dataset hands the harness the adapt windows of a user as it pleases — often activity by activity, exactly k per
class, with recording ids numbered in class order. A label-free method that saw them so could read the labels
from the order (``arange(n) // k``) or from the ids. The device's view has neither:

* **time order**: the user's recordings (sessions) come in a seeded random order, as the activities of a day do,
  and the windows of one recording keep their time order;
* **no class-bearing ids**: every window belongs to one stream (``recording`` 0) and ``start`` is its position in
  that stream, in samples;
* **a window budget**: the first ``budget`` windows of that stream (default: all of them), not k per class.

Labelled methods keep the dataset's k windows per class, with labels.
"""

from __future__ import annotations

import torch

from ..api import Windows
from ..hashing import content_hash


def label_free_stream(adapt: Windows, seed: int, user: str, budget: int | None = None,
                      stride: int | None = None) -> Windows:
    """The device's unlabelled stream of ``adapt`` (deterministic per seed and user)."""
    recordings = sorted(set(adapt.recording.tolist()))
    g = torch.Generator().manual_seed(int(content_hash(["stream", seed, user], 12), 16))
    rank = {rec: int(r) for rec, r in zip(recordings, torch.randperm(len(recordings), generator=g).tolist())}
    order = sorted(range(len(adapt)), key=lambda i: (rank[int(adapt.recording[i])], int(adapt.start[i])))
    if budget is not None:
        order = order[:budget]
    stream = adapt.subset(order).without_labels()
    step = stride or int(stream.x.shape[-1])
    n = len(stream)
    stream.recording = torch.zeros(n, dtype=torch.long)
    stream.start = torch.arange(n, dtype=torch.long) * step
    return stream
