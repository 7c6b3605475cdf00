"""The device boundary: no plugin code runs beside the data or other jobs' state.

Why processes: a method handed a shared generic model can change it in place, a method running in the harness's
process can reach the test splits through the garbage collector or its callers' frames, and a global change (a
forward hook, a monkeypatched ``torch.relu``, the default dtype, the thread count) would reach every later job.

* ``prepare`` runs in a fresh **job process** holding a copy of the generic weights and the population; its state
  comes back as tensors and JSON (:mod:`.wire`), never as pickled objects.
* ``adapt`` runs in a fresh job process holding the generic weights, the state and one user's adapt windows. The
  model it returns **stays there**: the hardware target runs beside it (an estimating target traces it; a
  host-measuring one times it while the host meters energy), and it is evaluated there on the test *inputs* only,
  twice (another batch order and size: predictions that depend on the batch fail the job, see :mod:`.checks`).
  The host gets logits, costs and facts as data and computes every metric itself from the labels it kept.
* Job processes are forked from a **zygote** forked from a **root** forked before the host loaded any data
  (:mod:`.zygote`); the zygote and the root are subreapers, so nothing a job starts outlives it (:mod:`.reaper`),
  and a zygote killed by a job is replaced from the root.
* Each job process digests the generic model and the prepared state before and after ``adapt`` and reports any
  change, so the job fails with the reason; everything a plugin reports is checked at the boundary (:mod:`.checks`).

``isolation: inline`` (for debugging with pdb) runs the same commands and messages in-process: no boundary. Fork
is POSIX-only; on other platforms inline is the only mode.
"""

from __future__ import annotations

from .checks import check_inference_cost, check_metric, check_model_stats, check_phase_cost, transductive
from .digests import model_digest, state_digest, weights_bytes
from .host import Sandbox, Session
from .messages import (
                       AdaptFailed,
                       AdaptRequest,
                       LoadRequest,
                       ModelSpec,
                       OutputRejected,
                       PrepareRequest,
                       SandboxDied,
                       Verdict,
)
from .reaper import die_with_parent
from .wire import Message

__all__ = ["AdaptFailed", "AdaptRequest", "LoadRequest", "Message", "ModelSpec", "OutputRejected", "PrepareRequest",
           "Sandbox", "SandboxDied", "Session", "Verdict", "check_inference_cost", "check_metric",
           "check_model_stats", "check_phase_cost", "die_with_parent", "model_digest", "state_digest",
           "transductive", "weights_bytes"]
