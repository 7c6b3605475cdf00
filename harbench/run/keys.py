"""Content-hash keys of the plan's nodes: generic model → method prepare → adapt per user → job per target.

Each key chains from its parent's, so a change anywhere upstream (dataset parameters or files, recipe, a plugin's
version or source, the core's source) invalidates exactly the nodes below it. The driver computes every key
before anything runs: that is what lets a warm run, or ``--dry-run``, know what is cached without loading data.
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from .. import __version__
from ..api import DatasetInfo, HardwareInfo
from ..hashing import canonical, code_version, content_hash
from ..plugins import Registry
from ..records import JobSpec
from ..suite import Resolved, Suite

# describe() fields that vary between processes of one machine (the worker's thread share) or between runs
# (a freshly measured idle power): they do not change what a measurement means, so they stay out of job keys
_VOLATILE_EXTRA = {"torch_threads"}


def generic_key(d: Resolved, seed: int, targets: list[str], backbone: str, recipe: dict, info: DatasetInfo) -> str:
    """The dataset's ``fingerprint`` (in ``describe().extra``, for file-backed data) invalidates it when files change;
    prepare keys chain from this one."""
    fingerprint = info.extra.get("fingerprint")
    return content_hash(["generic", d.name, d.params, d.version, fingerprint, backbone, seed, sorted(targets), recipe,
                         __version__, code_version(__name__)])


def prepare_key(m: Resolved, gkey: str, seed: int, registry: Registry) -> str:
    """Includes the plugin's distribution, version and source hash: editing a method re-runs only its nodes."""
    code = code_version(registry.get("method", m.name).cls.__module__)
    return content_hash(["prepare", m.name, m.params, m.distribution, m.version, code, gkey, seed])


def adapt_key(pkey: str, user: str) -> str:
    """One user's adapted model; the seed and everything upstream are already in the prepare key.

    ``content_hash(["adapt", pkey, user])``; for a string user its canonical JSON is written directly (a JSON
    string is the same however the list around it is serialised), which is the same text, without building an
    encoder per key."""
    if type(user) is not str:
        return content_hash(["adapt", pkey, user])
    text = f'["adapt",{_json_string(pkey)},{_json_string(user)}]'
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def hardware_identity(info: HardwareInfo) -> dict[str, Any]:
    """What a target's numbers depend on: the device, its mode and settings, not this process's thread share."""
    return {"name": info.name, "processor": info.processor, "memory_gb": info.memory_gb, "mode": info.mode,
            "extra": {k: v for k, v in info.extra.items() if k not in _VOLATILE_EXTRA}}


class NodeKeys:
    """Memoised keys for one suite; ``describe()`` of datasets and targets runs once per object."""

    def __init__(self, suite: Suite, registry: Registry, hardware_info):
        self.suite = suite
        self.registry = registry
        self.hardware_info = hardware_info  # callable: JobSpec -> HardwareInfo (the runner's described targets)
        self._infos: dict[int, DatasetInfo] = {}
        self._pkeys: dict[tuple[int, int, int], str] = {}
        self._gkeys: dict[tuple[int, int, str], str] = {}
        self._akeys: dict[tuple[int, int, int, str], str] = {}
        # per target (its params object): the job key's canonical JSON after the adapt key
        self._job_tails: dict[tuple[str, int], tuple[Any, str]] = {}
        self._recipe = suite.model.generic.model_dump()
        self._metrics = [[name, self._plugin_code("metric", name)] for name in suite.metrics]

    def _plugin_code(self, kind: str, name: str) -> list[Any]:
        p = self.registry.get(kind, name)
        return [p.distribution, p.version, code_version(p.cls.__module__)]

    def info(self, di: int) -> DatasetInfo:
        if di not in self._infos:
            self._infos[di] = self.suite.datasets[di].instance(self.registry).describe()
        return self._infos[di]

    def generic(self, di: int, seed: int, backbone: str) -> str:
        key = (di, seed, backbone)
        if key not in self._gkeys:
            self._gkeys[key] = generic_key(self.suite.datasets[di], seed, self.suite.targets[di], backbone,
                                           self._recipe, self.info(di))
        return self._gkeys[key]

    def prepare(self, di: int, seed: int, mi: int) -> str:
        key = (di, seed, mi)
        if key not in self._pkeys:
            m = self.suite.methods[mi]
            backbone = self.registry.backbone(m.name)
            self._pkeys[key] = prepare_key(m, self.generic(di, seed, backbone), seed, self.registry)
        return self._pkeys[key]

    def adapt(self, di: int, seed: int, mi: int, user: str) -> str:
        key = (di, seed, mi, user)
        if key not in self._akeys:
            self._akeys[key] = adapt_key(self.prepare(di, seed, mi), user)
        return self._akeys[key]

    def job(self, di: int, seed: int, mi: int, job: JobSpec) -> str:
        """One job's outputs on one target: its metrics depend on the metric plugins' code too.

        The key is ``content_hash(["job", adapt key, hardware, hardware params, the hardware plugin's code, the
        target's identity, the metrics' code])``; everything after the adapt key is the same for every job on one
        target, so its canonical JSON is built once per target (a canonical list is its items' canonical JSON
        joined by commas) and a job costs one hash, not one serialisation of the metric list."""
        memo = self._job_tails.get((job.hardware, id(job.hardware_params)))
        if memo is None or memo[0] is not job.hardware_params:  # the plan shares one params object per target
            tail = ",".join(canonical(part) for part in (
                job.hardware, job.hardware_params, self._plugin_code("hardware", job.hardware),
                hardware_identity(self.hardware_info(job)), self._metrics))
            memo = self._job_tails[(job.hardware, id(job.hardware_params))] = (job.hardware_params, tail)
        text = f'["job","{self.adapt(di, seed, mi, job.user)}",{memo[1]}]'  # a hex key needs no escaping
        return hashlib.sha256(text.encode()).hexdigest()[:20]
