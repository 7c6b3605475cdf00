"""The suite's hardware targets: instantiated once per process, each described once.

``describe()`` may read files or probe sensors, so every layer that needs a target's mode (the plan's counts, the
cache's job keys, the jobs themselves) asks this one object. It must not start a meter: the plan, job keys and
``--dry-run`` describe every target, and a warm run measures nothing (the ``cpu`` target's idle power appears in
a job's provenance once its meter has run, see :meth:`Targets.measured_info`).
"""

from __future__ import annotations

from typing import Any

from ..api import Hardware, HardwareInfo
from ..plugins import Registry
from ..records import JobSpec
from ..suite import Suite


class Targets:
    def __init__(self, suite: Suite, registry: Registry):
        self.suite = suite
        self.instances: dict[Any, Hardware] = {h: h.instance(registry) for h in suite.hardware}
        self._info: dict[int, HardwareInfo] = {}
        self._of: dict[str, list[tuple[Any, Hardware]]] = {}  # target name -> its entries (usually one)

    def of(self, job: JobSpec) -> Hardware:
        by_params = self._of.get(job.hardware)
        if by_params is None:
            by_params = self._of[job.hardware] = [(h.params, hw) for h, hw in self.instances.items()
                                                  if h.name == job.hardware]
        return next(hw for params, hw in by_params if params == job.hardware_params)

    def describe(self, hw: Hardware) -> HardwareInfo:
        if id(hw) not in self._info:
            self._info[id(hw)] = hw.describe()
        return self._info[id(hw)]

    def measured_info(self, hw: Hardware) -> HardwareInfo:
        """The description a job's provenance records, after it was measured: a host target is described again
        (cheaply) since measuring started its meter (idle power, the meter's own energy method); others keep theirs."""
        return hw.describe() if hw.measures_host else self.describe(hw)

    def info(self, job: JobSpec) -> HardwareInfo:
        return self.describe(self.of(job))

    def measured(self, job: JobSpec) -> bool:
        return self.info(job).mode == "measured"


def info_dict(hw: Hardware, i: HardwareInfo) -> dict[str, Any]:
    """A target's description as stored with each run and each job."""
    return {"name": i.name, "processor": i.processor, "memory_gb": i.memory_gb, "mode": i.mode,
            "power": dict(i.power), "extra": dict(i.extra), "params": dict(hw.params)}
