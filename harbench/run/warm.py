"""A warm run without torch: the plan's job keys are remembered, so a run whose every job is cached loads no plugin.

A job's cache key needs the plugins — their code, the datasets' and targets' ``describe()`` — and loading them
imports torch, which alone takes longer than the whole warm run should. So after keying a plan, the driver writes a
*plan memo* into the results folder's cache (``cache/plan-<key>.json``, digest-checked like every entry): the run's
identity, its environment and every job with its key. The memo's own key is everything those keys were computed
from that can change without the suite changing:

* the registry snapshot key (:func:`harbench.registry_snapshot.key`): the Python, every ``harbench`` entry point
  with its version, ``HARBENCH_PLUGINS``/``HARBENCH_LOAD_PLUGINS`` and the Python source of the core and of every
  plugin package;
* the suite's path and its text after ``--set`` overrides;
* every ``HARBENCH_*`` environment variable (data folders, profile folders, ...) but the cache folder's;
* this host as the ``cpu`` target describes it (processor, memory, cores, RAPL folders, codecarbon's version) and
  the files of the user's harbench configuration folder (device profiles dropped into
  ``$HARBENCH_PROFILE_DIR`` / ``~/.config/harbench``).

A memo is written only where that list is complete: never for a dataset whose ``describe()`` carries a
``fingerprint`` (file-backed data, whose files may change between runs), nor for a target that is measured
somewhere other than this host (a remote device is probed by ``describe()``), nor under a registry a caller built
instead of the environment's, nor when a plugin implements ``harbench_job_finished`` or ``harbench_run_finished``
(the warm run would not call it). ``--resume``, ``--remeasure`` and ``HARBENCH_NO_PLAN_MEMO=1`` never use one. A
memo whose jobs are not all cached is ignored: the full run computes what is missing.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import socket
import time
from pathlib import Path
from typing import Any

from ..hashing import canonical, content_hash
from ..machine import memory_gb, processor
from ..records import JobRecord, JobSpec, RunSummary
from .cache import WeightCache

FORMAT = 1
KIND = "plan"
RUN_HOOKS = ("harbench_job_finished", "harbench_run_finished")


# ----------------------------------------------------------------------------------------- the memo's key
def _host() -> list[Any]:
    """What the ``cpu`` target's description (and so its jobs' keys) depends on, read without starting anything."""
    rapl: list[list[str] | None] = []
    for base in ("/sys/class/powercap", "/sys/devices/virtual/powercap"):
        try:
            rapl.append(sorted(os.listdir(base)))
        except OSError:
            rapl.append(None)
    try:
        codecarbon = md.version("codecarbon")
    except md.PackageNotFoundError:
        codecarbon = None
    return [socket.gethostname(), platform.platform(), os.cpu_count(), processor(), memory_gb(), rapl, codecarbon]


def _user_config() -> list[Any]:
    """(name, size, mtime) of the files in the user's harbench configuration folders (device profiles)."""
    folders = [os.environ.get("HARBENCH_PROFILE_DIR") or "",
               str(Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "harbench")]
    out = []
    for folder in folders:
        if folder and os.path.isdir(folder):
            for root, _dirs, files in os.walk(folder):
                for name in sorted(files):
                    try:
                        st = os.stat(os.path.join(root, name))
                    except OSError:
                        continue
                    out.append([os.path.join(root, name), st.st_size, st.st_mtime_ns])
    return out


def memo_key(source: str, text: str) -> str:
    from ..registry_snapshot import key as registry_key

    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith("HARBENCH_") and k != "HARBENCH_CACHE_DIR"}
    return content_hash([FORMAT, registry_key(), os.path.abspath(source), text, env, _host(), _user_config()])


def disabled() -> bool:
    return os.environ.get("HARBENCH_NO_PLAN_MEMO", "") not in ("", "0")


# ------------------------------------------------------------------------------------------ one cached job
def served_record(cache: WeightCache, job: JobSpec, key: str) -> JobRecord | None:
    """The record of a job whose outputs are cached, with the cache entry named in its provenance; None if the
    entry is missing or damaged. The driver and the warm run serve jobs through this one function."""
    data = cache.get_json("job", key)
    if data is None:
        return None
    facts = data["facts"]
    facts["_provenance"]["cache"] = {"key": key, "run_id": data["run_id"], "finished": data["finished"],
                                     "seconds": data["seconds"]}
    return JobRecord(job, "ok", mode=data["mode"], metrics=data["metrics"], facts=facts, seconds=0.0)


# ------------------------------------------------------------------------------------------------ writing
def write(cache: WeightCache, suite: Any, shash: str, env: dict[str, Any], jobs: list[JobSpec],
          keys: dict[str, str]) -> bool:
    """Remember ``jobs`` with their keys (``keys``: JobSpec.key -> job node key); False if a job has no key."""
    if disabled() or any(j.key not in keys for j in jobs):
        return False
    key = memo_key(suite.source, suite.text)
    if cache.has_json(KIND, key):
        return True  # the same inputs: the same jobs and keys
    tables: dict[str, dict[str, int]] = {"d": {}, "m": {}, "h": {}}
    entries: dict[str, list[Any]] = {"d": [], "m": [], "h": []}

    def index(table: str, value: list[Any]) -> int:
        text = canonical(value)
        if text not in tables[table]:
            tables[table][text] = len(entries[table])
            entries[table].append(value)
        return tables[table][text]

    rows = [[index("d", [j.dataset, j.dataset_params]), index("m", [j.method, j.method_params, j.variant]),
             index("h", [j.hardware, j.hardware_params]), j.seed, j.user, keys[j.key]] for j in jobs]
    cache.put_json(KIND, key, {
        "format": FORMAT, "suite": {"name": suite.name, "source": suite.source, "text": suite.text, "hash": shash},
        "env": env, "datasets": entries["d"], "methods": entries["m"], "hardware": entries["h"], "jobs": rows})
    return True


# ------------------------------------------------------------------------------------------------ reading
def _jobs(memo: dict[str, Any]) -> list[tuple[JobSpec, str]]:
    d, m, h = memo["datasets"], memo["methods"], memo["hardware"]
    return [(JobSpec(d[di][0], d[di][1], m[mi][0], m[mi][1], m[mi][2], h[hi][0], h[hi][1], seed, user), key)
            for di, mi, hi, seed, user, key in memo["jobs"]]


def _environment(memo_env: dict[str, Any], versions: dict[str, str]) -> dict[str, Any]:
    """The run's environment as the full run records it; what may differ from the memo's is read again."""
    from .environment import describe_environment

    try:
        torch_version: str | None = md.version("torch")
    except md.PackageNotFoundError:
        torch_version = memo_env.get("torch")
    env = describe_environment(versions, torch_version, memo_env.get("torch_threads"))
    for k in ("hardware", "jobs_planned"):
        env[k] = memo_env[k]
    return env


def serve(store: Any, source: str, text: str) -> RunSummary | None:
    """Run ``text`` (the suite at ``source``) from its plan memo if every job is cached; None: run it in full.

    Nothing is written unless every job's record was read, so a memo that does not serve leaves no trace."""
    from ..registry_snapshot import load_saved

    t0 = time.perf_counter()
    if disabled():
        return None
    snapshot = load_saved()
    if snapshot is None or any(set(RUN_HOOKS) & set(p.get("hooks") or ()) for p in snapshot["plugins"]
                               if p.get("status") == "loaded"):
        return None
    cache = WeightCache(store.folder / "cache")
    memo = cache.get_json(KIND, memo_key(source, text)) if store.folder.exists() else None
    if memo is None or memo.get("format") != FORMAT:
        return None
    records = []
    for job, key in _jobs(memo):
        if not cache.has_json("job", key):
            return None
        rec = served_record(cache, job, key)
        if rec is None:  # damaged: discarded (and said); the full run recomputes it
            return None
        records.append(rec)
    store.check()
    cache.clean()
    versions = {p["distribution"]: p["version"] for p in snapshot["plugins"] if p.get("status") == "loaded"}
    s = memo["suite"]
    run_id = store.start_run(s["name"], s["source"], s["text"], s["hash"], _environment(memo["env"], versions))
    store.add_jobs(run_id, [(rec, rec.facts.pop("_provenance", {}), rec.facts.pop("_samples", {})) for rec in records])
    store.finish_run(run_id, "complete")
    n = len(records)
    return RunSummary(run_id, s["name"], n, n, 0, 0, wall_s=time.perf_counter() - t0, cached=n,
                      results=str(store.folder))

