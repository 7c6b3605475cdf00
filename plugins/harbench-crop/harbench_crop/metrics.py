"""Balanced accuracy on the seen and unseen contexts: the score the authors give ΔP and ΔG.

The ExtraSensory script scores every model with ``sklearn.metrics.balanced_accuracy_score`` (``test()`` returns
accuracy, balanced accuracy and F1; the tables report balanced accuracy), so the plugin registers the two columns
its summary computes ΔP and ΔG from: ``bacc_seen`` and ``bacc_unseen`` (mean recall over the classes present in
the split, :func:`harbench_crop.scores.balanced_accuracy`). A suite that lists ``metrics:`` must name them.
"""

from __future__ import annotations

from harbench import JobOutputs, Metric

from .scores import balanced_accuracy


class BalancedAccuracySeen(Metric):
    name = "bacc_seen"
    unit = "fraction"
    higher_is_better = True
    description = "balanced accuracy (mean per-class recall) on the adapt context's test windows (CRoP's score)"

    def compute(self, out: JobOutputs) -> float | None:
        return balanced_accuracy(out.y_seen, out.pred_seen) if len(out.y_seen) else None


class BalancedAccuracyUnseen(Metric):
    name = "bacc_unseen"
    unit = "fraction"
    higher_is_better = True
    description = "balanced accuracy (mean per-class recall) on the unseen contexts (CRoP's score)"

    def compute(self, out: JobOutputs) -> float | None:
        return balanced_accuracy(out.y_unseen, out.pred_unseen) if len(out.y_unseen) else None
