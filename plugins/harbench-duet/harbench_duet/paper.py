"""DUET's claims as data: the sign harbench judges today **and** the size the paper claims, with a declared
no-effect margin: the one home of these numbers, from which the summary builds its ``harbench.Claim``s (direction,
size, no effect by TOST within the margin, Holm over the family ``FAMILY``).

Accuracy values are fractions (the summary prints points); ratios are plain numbers. The paper reports AUC on
recommendation data, not HAR accuracy: its sizes are the WWW 2023 Fig. 1(d) figures (DUET AUC 0.9230 vs
fine-tuning 0.9080; 0.34 ms vs 60,000 ms). Where the paper gives no size in our unit the claim's ``claimed`` is
None and only its sign (or margin) can be judged. No-effect margins are harbench's declarations; a ratio's margin
is in its own unit around the threshold (judged on the log scale).
"""

from __future__ import annotations

from harbench import PaperClaim

FAMILY = "duet"
CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim("duet − generic", "DUET beats the generic model", ">", 0.0, None, 0.01, "fraction", FAMILY,
               "Lv et al. 2023 (abstract): generalises without tuning; no HAR-accuracy size"),
    PaperClaim("duet − generic (acc_unseen)", "DUET beats the generic model on the unseen context", ">", 0.0, None,
               0.01, "fraction", FAMILY, "Lv et al. 2023 (abstract): generalises without tuning; no HAR size"),
    PaperClaim("duet − universal head (delta_scale=0)", "the generated head beats its own universal head", ">", 0.0,
               None, 0.01, "fraction", FAMILY, "Lv et al. 2023, Fig. 2: PPG on top of the UMN"),
    PaperClaim("duet − finetune-last", "fine-tuning-level accuracy (non-inferior by 2 points)", ">", -0.02, 0.015,
               0.01, "fraction", FAMILY, "Lv et al. 2023, Fig. 1(d): AUC 0.9230 (DUET) vs 0.9080 (fine-tuning)", null=0.0),
    PaperClaim("finetune adapt time / duet", "adaptation orders of magnitude cheaper than fine-tuning", ">", 100.0,
               60000 / 0.34, 10.0, "ratio", FAMILY, "Lv et al. 2023, Fig. 1(d): 60,000 ms vs 0.34 ms", scale="log", null=1.0),
    PaperClaim("finetune device energy / duet", "adaptation energy orders of magnitude below fine-tuning's", ">",
               100.0, None, 10.0, "ratio", FAMILY, "Lv et al. 2023: the time figure of Fig. 1(d); no energy figure",
               scale="log", null=1.0),
)
BY_KEY = {c.key: c for c in CLAIMS}
