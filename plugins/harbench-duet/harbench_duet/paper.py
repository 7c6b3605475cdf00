"""DUET's claims as data: the sign harbench judges today **and** the size the paper claims, with a declared
no-effect margin, so the core's verdicts on direction, size and no-effect (and a Holm family) can be wired to them.

Accuracy values are fractions (the summary prints points); ratios are plain numbers. The paper reports AUC on
recommendation data, not HAR accuracy: its sizes are the WWW 2023 Fig. 1(d) figures (DUET AUC 0.9230 vs
fine-tuning 0.9080; 0.34 ms vs 60,000 ms). Where the paper gives no size in our unit the claim's ``claimed`` is
None and only its sign (or margin) can be judged. No-effect margins are harbench's declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PaperClaim:
    key: str  # the summary row's quantity
    claim: str
    direction: Literal[">", "<"]  # the sign judged today: mean (direction) threshold
    threshold: float  # the sign threshold (0, a non-inferiority margin, or a ratio)
    claimed: float | None  # the paper's size, in ``unit``; None where the paper gives none in that unit
    no_effect: float  # |effect| below this counts as no effect (harbench's declaration)
    unit: str
    family: str  # the Holm family the claim belongs to
    source: str


FAMILY = "duet"
CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim("duet − generic", "DUET beats the generic model", ">", 0.0, None, 0.01, "fraction", FAMILY,
               "Lv et al. 2023 (abstract): generalises without tuning; no HAR-accuracy size"),
    PaperClaim("duet − universal head (delta_scale=0)", "the generated head beats its own universal head", ">", 0.0,
               None, 0.01, "fraction", FAMILY, "Lv et al. 2023, Fig. 2: PPG on top of the UMN"),
    PaperClaim("duet − finetune-last", "fine-tuning-level accuracy (non-inferior by 2 points)", ">", -0.02, 0.015,
               0.01, "fraction", FAMILY, "Lv et al. 2023, Fig. 1(d): AUC 0.9230 (DUET) vs 0.9080 (fine-tuning)"),
    PaperClaim("finetune adapt time / duet", "adaptation orders of magnitude cheaper than fine-tuning", ">", 100.0,
               60000 / 0.34, 10.0, "ratio", FAMILY, "Lv et al. 2023, Fig. 1(d): 60,000 ms vs 0.34 ms"),
)
