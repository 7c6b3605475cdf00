"""SMLDist's claims as data: the sign (or threshold) harbench judges today **and** the size the paper claims, with a
declared no-effect margin: the one home of these numbers, from which the summary builds its ``harbench.Claim``s
(direction, size, no effect by TOST within the margin, Holm over the family ``FAMILY``).

Accuracy differences are fractions (the summary prints points); "smaller" is the student's saving against the
teacher, 1 − student/teacher, a fraction. Sizes: the abstracts of arXiv 2107.07331 v4/v5 ("a teacher-based
approach that achieves a 40 %–50 % reduction in operational expenditure"); the numeric tables could not be
retrieved, so the accuracy claims carry only their sign or margin. No-effect margins are harbench's declarations.
"""

from __future__ import annotations

from harbench import PaperClaim

FAMILY = "smldist"
SMALLER_LOW, SMALLER_HIGH = 0.40, 0.50  # "a 40 %–50 % reduction in operational expenditure"
CLAIMS: tuple[PaperClaim, ...] = (
    *(PaperClaim(f"smaller:{what}", f"the student saves ≥ 40 % of the teacher's {what}", ">", SMALLER_LOW,
                 (SMALLER_LOW + SMALLER_HIGH) / 2, 0.05, "fraction", FAMILY,
                 "arXiv 2107.07331 v4/v5 abstract: 40 %–50 % lower operational expenditure", null=0.0)
      for what in ("parameters", "FLOPs", "p50 latency")),
    PaperClaim("close-to-teacher", "smldist within 2 pts of the teacher (acc, macro-F1)", ">", -0.02, None, 0.01,
               "fraction", FAMILY, "abstract: accurate light-weight student (no size retrieved)"),
    PaperClaim("beats-scratch", "smldist beats the same student trained from scratch", ">", 0.0, None, 0.01,
               "fraction", FAMILY, "abstract: distillation helps"),
    PaperClaim("beats-hinton", "smldist at least as good as Hinton KD (margin 1 pt)", ">", -0.01, None, 0.01,
               "fraction", FAMILY, "abstract: beats other advanced KD methods"),
    PaperClaim("stage-helps", "stage distillation helps (matched-epoch control)", ">", 0.0, None, 0.01, "fraction",
               FAMILY, "v4/v5: stage (multi-level) distillation"),
    PaperClaim("memory-helps", "memory distillation helps", ">", 0.0, None, 0.01, "fraction", FAMILY,
               "v4/v5: the teacher's memory of logits (ablation)"),
    PaperClaim("conditional-helps", "the conditional rule helps", ">", 0.0, None, 0.01, "fraction", FAMILY,
               "v4/v5: conditional distillation (ablation)"),
)
BY_KEY = {c.key: c for c in CLAIMS}
