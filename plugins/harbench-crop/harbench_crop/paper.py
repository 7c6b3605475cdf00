"""CRoP's claims as data: the sign harbench judges today **and** the size the paper claims, with a declared
no-effect margin: the one home of these numbers, from which the summary builds its ``harbench.Claim``s
(direction, size, no effect by TOST within the margin, Holm over the family ``FAMILY``).

Values are percentage points of the score the summary uses (balanced accuracy by default), summed over the seen
and unseen context as the paper's ΔP and ΔG are. Claimed sizes are the paper's ExtraSensory rows (the HAR dataset;
Table 3, v2: ΔP 17.49 / 13.52, ΔG −0.46 / 8.17 for scenarios 1 / 2, here their mean) — the all-dataset averages
(ΔP 35.23, ΔG 7.78) are in ``note``. The premise's size is the paper's motivating WIDAR figure (Table 1: fine-tuning
loses 24.63 points on the unseen context). The no-effect margin (2 points of a two-context sum) is harbench's
declaration, not the paper's: a smaller effect is read as none.
"""

from __future__ import annotations

from harbench import PaperClaim

FAMILY = "crop"
CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim("delta_p", "ΔP > 0", ">", 0.0, 15.505, 2.0, "pts", FAMILY,
               "Kaur et al. 2025, Table 3 (v2), ExtraSensory scenarios 1/2: 17.49, 13.52",
               "all-dataset average 35.23"),
    PaperClaim("delta_g", "ΔG > 0", ">", 0.0, 3.855, 2.0, "pts", FAMILY,
               "Kaur et al. 2025, Table 3 (v2), ExtraSensory scenarios 1/2: −0.46, 8.17",
               "all-dataset average 7.78"),
    PaperClaim("premise", "FT − generic < 0 on the unseen context", "<", 0.0, -24.63, 2.0, "pts", FAMILY,
               "Kaur et al. 2025, Table 1, WIDAR (LeNet, C1 available): fine-tuning −24.63 on C2"),
)
BY_KEY = {c.key: c for c in CLAIMS}
