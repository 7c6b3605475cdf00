"""harbench dataset plugins that read public human-sensing datasets from a folder the user already has.

Nothing here downloads anything: each dataset resolves ``params.path`` (or ``$HARBENCH_DATA/<its folder>``),
checks the on-disk layout, parses it into labelled continuous segments, and hands those to one shared pipeline
(resampling, windowing, population-only normalisation, time-ordered per-user splits).
"""

from .errors import LayoutError, MalformedRecordsWarning
from .hhar import HHAR
from .motionsense import MotionSense
from .pamap2 import PAMAP2
from .recordings import Recordings
from .sp_sw_har import SpSwHar
from .uci_har import UCIHAR
from .wisdm import WISDM

DATASETS = (UCIHAR, WISDM, PAMAP2, HHAR, MotionSense, SpSwHar, Recordings)

__all__ = ["DATASETS", "HHAR", "LayoutError", "MalformedRecordsWarning", "MotionSense", "PAMAP2", "Recordings", "SpSwHar", "UCIHAR", "WISDM"]
