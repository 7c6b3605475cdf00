"""One unit convention for every threshold a user types: ``--budget``, a suite's ``budgets:``, ``--where`` and
``compare --fail-on``.

Accuracy-like metrics (unit ``fraction``: stored in [0, 1], shown in points) take their amount with a unit, because a
bare number has two readings and each option used to pick a different one (``--budget acc_seen>=0.9`` was 0.9 %,
``--fail-on acc_seen:-1`` a 100-point drop):

* ``90pt`` / ``90pts`` / ``90%``: points (stored as 0.90); in ``--fail-on``, ``-1pt`` is a one-point drop;
* ``0.9frac``: a fraction, written explicitly;
* ``0`` alone needs no unit (both readings agree);
* any other bare number is refused with one line that shows both readings.

Every other metric takes its bound in its own unit (``latency_ms_p50<=5`` is 5 ms); ``pt``/``frac`` there are refused.
In ``--fail-on`` a trailing ``%`` on a cost is a change relative to the base value (``adapt_j:+10%``); on an
accuracy-like metric ``%`` would be ambiguous (points or relative), so ``--fail-on`` asks for ``pt`` or ``frac``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

FRACTION = "fraction"  # the unit a metric declares when it is stored in [0, 1] and shown in points (× 100)

_AMOUNT = re.compile(r"^\s*([+-]?)\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(pts?|%|frac)?\s*$")


@dataclass(frozen=True)
class Amount:
    """A typed amount in the metric's stored unit. ``relative``: a fraction of the base value (``--fail-on`` only)."""

    value: float
    sign: str  # "+", "-" or "" as typed
    relative: bool = False


def parse_amount(raw: str, metric: str, *, fraction: bool, option: str, clause: str, delta: bool = False) -> Amount:
    """Read ``raw`` (the part after the operator or colon) for ``metric`` under the convention above.

    ``delta``: the amount is a change (``--fail-on``), where ``%`` on a cost means relative to the base value.
    Raises ValueError with one line naming ``option`` and ``clause`` and the spellings that would be accepted."""
    m = _AMOUNT.match(raw)
    if not m:
        raise ValueError(f"{option} {clause!r}: {raw.strip()!r} is not a number"
                         + (" with a unit (pt, %, frac)" if fraction else ""))
    sign, digits, unit = m.groups()
    number = float(digits)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{option} {clause!r}: {raw.strip()!r} is not a finite number")
    if not fraction:
        if unit in ("pt", "pts", "frac"):
            raise ValueError(f"{option} {clause!r}: {metric} is not accuracy-like; write the amount in its own unit "
                             f"without {unit!r}")
        if unit == "%":
            if not delta:
                raise ValueError(f"{option} {clause!r}: '%' is for accuracy-like metrics and for relative changes in "
                                 f"--fail-on; write {metric}'s bound in its own unit")
            return Amount(number / 100.0, sign, relative=True)
        return Amount(number, sign)
    if unit in ("pt", "pts") or (unit == "%" and not delta):
        return Amount(number / 100.0, sign)
    if unit == "frac":
        if number > 1.0:
            raise ValueError(f"{option} {clause!r}: a fraction of {metric} is in [0, 1]; {digits}frac is not "
                             f"(did you mean {digits}pt?)")
        return Amount(number, sign)
    if unit == "%":  # --fail-on on an accuracy-like metric
        raise ValueError(f"{option} {clause!r}: '%' on {metric} could mean points or a change relative to the base; "
                         f"write {sign}{digits}pt for {digits} points")
    if number == 0.0:
        return Amount(0.0, sign)
    as_fraction = (f"the fraction {digits} = {100 * number:g} points (write {sign}{digits}frac)" if number <= 1.0
                   else f"a fraction, which {digits} cannot be (it is outside [0, 1])")
    raise ValueError(f"{option} {clause!r}: {metric} is accuracy-like and a bare {digits} has two readings: "
                     f"{digits} points (write {sign}{digits}pt) or {as_fraction}")
