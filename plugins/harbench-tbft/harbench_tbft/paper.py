"""TBFT's claims as data: the sign (or threshold) harbench judges today **and** the size the paper claims, with a
declared no-effect margin: the one home of these numbers, from which the summary builds its ``harbench.Claim``s
(direction, size, no effect by TOST within the margin, Holm over the family ``FAMILY``).

Accuracy gaps are fractions (the summary prints points); savings are fractions of ``all``'s cost. Sizes are the
paper's (Huang et al., EuroMLSys '24, figures recomputed in our notes): the per-drift TBFT − Block Avg gaps are the
mean of the paper's three training sizes; the pooled +15.30 is the mean of its nine cells; the fc saving is the
lower of its two energy figures (67.92 %, 69.70 %) and Block Avg's the lower of 41.51 %, 41.63 %. FLOP savings are
judged against what the backbone can reach (:func:`harbench_tbft.summary.flop_bound`), not the Pi's energy figure.
No-effect margins are harbench's declarations.
"""

from __future__ import annotations

from harbench import PaperClaim

SINGLE_BLOCKS: tuple[str, ...] = ("front", "stage2", "stage3", "fc")
"""The four blocks of the paper on the core's 1-D ResNet: Block 1 (stem + stage 1), Block 2, Block 3, FC."""

BLOCK_CHOICES: tuple[str, ...] = (*SINGLE_BLOCKS, "all", "auto")

DRIFT_TO_BLOCK: dict[str, str] = {"input": "front", "feature": "stage3", "output": "fc"}
"""The paper's taxonomy: input-level -> Block 1; feature-level -> the last residual stage (its experiments' best
block for Living17, though the abstract says "middle"); output-level -> the classifier."""

FAMILY = "tbft"
CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim("best-block:input", "input drift: front beats every other single block", ">", 0.0, None, 0.01,
               "fraction", FAMILY, "Huang et al. 2024, CIFAR-10-C table: Block 1 best at 10/20/30 %"),
    PaperClaim("best-block:feature", "feature drift: stage3 beats every other single block", ">", 0.0, None, 0.01,
               "fraction", FAMILY, "Huang et al. 2024, Living17 table: Block 3 best at 10/20/30 %"),
    PaperClaim("best-block:output", "output drift: fc beats every other single block", ">", 0.0, None, 0.01,
               "fraction", FAMILY, "Huang et al. 2024, CIFAR-Flip table: FC best at 10/20/30 %"),
    PaperClaim("gap:input", "input: TBFT − Block Avg > 0", ">", 0.0, 0.0381, 0.01, "fraction", FAMILY,
               "CIFAR-10-C gaps 3.00, 3.88, 4.56 pts"),
    PaperClaim("gap:feature", "feature: TBFT − Block Avg > 0", ">", 0.0, 0.0966, 0.01, "fraction", FAMILY,
               "Living17 gaps 8.89, 9.95, 10.13 pts"),
    PaperClaim("gap:output", "output: TBFT − Block Avg > 0", ">", 0.0, 0.3245, 0.01, "fraction", FAMILY,
               "CIFAR-Flip gaps 38.35, 31.22, 27.77 pts"),
    PaperClaim("gap:pooled", "TBFT − Block Avg > 0, pooled", ">", 0.0, 0.1530, 0.01, "fraction", FAMILY,
               "abstract: +15.30 % (mean of nine cells)"),
    PaperClaim("saving:fc", "fc saves > 67.92 % of all's energy (one step, one sample)", ">", 0.6792, 0.6792, 0.02,
               "fraction", FAMILY, "Raspberry Pi table: 67.92 % (32 px), 69.70 % (128 px)", null=0.0),
    PaperClaim("saving:block-avg", "Block Avg saves > 41.51 % of all's energy", ">", 0.4151, 0.4157, 0.02,
               "fraction", FAMILY, "abstract: 41.57 % = mean of 41.51 %, 41.63 %", null=0.0),
)
BY_KEY = {c.key: c for c in CLAIMS}
