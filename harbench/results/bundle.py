"""Published result bundles: a folder anyone can open, and every view reads as it reads a results store.

``harbench publish RUN... -o DIR`` writes::

    DIR/manifest.json               what the bundle is: format, harbench and plugin versions, git commit, machine,
                                    the runs (suite text and hash, status, environment) and a digest of every file
    DIR/runs/<id>/jobs.parquet      one row per job: the export's columns, and ``metrics_json`` (the stored text)
    DIR/runs/<id>/jobs.csv          with --csv: the rows as ``harbench export --format csv`` writes them
    DIR/runs/<id>/samples.parquet   the raw samples (latency repeats, ...): kind, job identity, values

The Parquet files open in pandas, polars or DuckDB without harbench. :class:`Bundle` reads them back with the
store's reading interface (:class:`harbench.results.source.RunSource`): ``report``, ``compare``, ``plot`` and
``claims`` take ``--results DIR`` and never know which one they read.

Every file is checked against the manifest's SHA-256 before a row is read, and the manifest against its own digest:
a damaged or edited bundle is refused in one line, as is a bundle of a newer format or a missing file. The rows'
metrics come from ``metrics_json`` — the store's own text — so a metric that was absent stays absent and a label
stays a label (the expanded metric columns are for readers without harbench).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..machine import git_commit
from .store import Store, StoreError
from .tables import IDENTITY, TRAILER

FORMAT = 1  # the bundle layout this harbench writes and the newest it reads
MANIFEST = "manifest.json"
KIND = "harbench-bundle"
BASE_COLUMNS = ("run_id", "suite", "dataset", "dataset_params", "user", "method", "method_params", "variant",
                "hardware", "seed", "status", "mode", "error", "facts", "provenance")
JSON_COLUMNS = frozenset({"dataset_params", "method_params", "facts", "provenance"})
SAMPLE_COLUMNS = ("method", "variant", "hardware", "user", "seed")


class BundleError(StoreError):
    """A bundle that cannot be read as written: one line naming the file and what was expected."""


@dataclass(frozen=True)
class Published:
    """What :func:`publish` wrote: the bundle folder, its runs and how many jobs each holds."""

    folder: Path
    runs: dict[int, int]  # run id -> jobs


def is_bundle(path: str | Path) -> bool:
    """A bundle folder (it holds ``manifest.json``) or a bundle's manifest itself."""
    p = Path(path)
    return (p.is_dir() and (p / MANIFEST).is_file()) or (p.is_file() and p.name == MANIFEST)


# ----------------------------------------------------------------------------------------------------- writing


def publish(store: Store, refs: Sequence[str | int], out: str | Path, registry: Any = None,
            csv: bool = False, pool: bool = False) -> Published:
    """Write the runs ``refs`` (ids, suite names, ``latest``) of ``store`` as a bundle in ``out``.

    The bundle is written into a temporary folder beside ``out`` and renamed into place when complete: a failure
    (a damaged record met half-way) leaves no half-written bundle. An existing ``out`` is replaced only when it is
    a bundle (never some other folder). ``csv``: also each run's jobs as ``jobs.csv`` (several times the Parquet's
    size: the provenance column is JSON text in every row). ``pool``: the runs are folds of one study (their
    targets differ) and ``harbench claims`` judges them together (the manifest's ``pool``; claim_tables)."""
    from .export import export_row, run_columns, write_stream

    out = Path(out)
    if out.exists() and not is_bundle(out):
        if not out.is_dir() or any(out.iterdir()):
            raise BundleError(f"-o {out}: exists and is not a harbench bundle; choose a new folder")
    if not out.parent.is_dir():
        raise BundleError(f"-o {out}: the folder {out.parent} does not exist (create it first)")
    runs: list[dict[str, Any]] = []
    for ref in refs or ["latest"]:
        row = dict(store.resolve_run(ref))
        if all(r["id"] != row["id"] for r in runs):
            runs.append(row)
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    counts: dict[int, int] = {}
    from .pooling import PoolGuard

    guard = PoolGuard() if pool else None  # checked on the rows as they are written: a refused pool leaves no bundle
    try:
        for run in runs:
            run_id = int(run["id"])
            folder = partial / "runs" / str(run_id)
            folder.mkdir(parents=True)
            columns = run_columns(store, run_id, registry)
            metric_names = columns[len(IDENTITY):len(columns) - len(TRAILER)]

            def rows(run_id: int = run_id, metric_names: list[str] = metric_names) -> Iterator[dict[str, Any]]:
                for r in store.iter_job_rows(run_id):
                    if guard is not None:
                        guard.add(f"run {run_id}", r)
                    row = export_row(r, metric_names)
                    # the store's order of the metrics (views list them in the order rows first hold them)
                    row["metrics_json"] = json.dumps({k: v for k, v in r.items() if k not in BASE_COLUMNS})
                    yield row

            counts[run_id] = write_stream(rows, "parquet", folder / "jobs.parquet", [*columns, "metrics_json"])

            def plain(run_id: int = run_id, metric_names: list[str] = metric_names) -> Iterator[dict[str, Any]]:
                return (export_row(r, metric_names) for r in store.iter_job_rows(run_id))

            if csv:  # for a spreadsheet: harbench export's CSV
                write_stream(plain, "csv", folder / "jobs.csv", columns)
            _write_samples(store, run_id, folder / "samples.parquet")
        manifest = _manifest(partial, runs, counts, pool)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return Published(out, counts)


def _write_samples(store: Store, run_id: int, path: Path) -> None:
    """Every raw sample list of the run: one row per (job, kind), the values as a list of doubles."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("kind", pa.string()), ("method", pa.string()), ("variant", pa.string()),
                        ("hardware", pa.string()), ("user", pa.string()), ("seed", pa.int64()),
                        ("values", pa.list_(pa.float64()))])
    with pq.ParquetWriter(str(path), schema) as writer:
        for kind in store.sample_kinds(run_id):
            chunk: list[dict[str, Any]] = []
            for ident, values in store.samples(run_id, kind):
                chunk.append({"kind": kind, **ident, "values": values if isinstance(values, list) else None})
                if len(chunk) == 10_000:
                    writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                    chunk = []
            if chunk:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
        writer.write_table(schema.empty_table())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _manifest(folder: Path, runs: list[dict[str, Any]], counts: dict[int, int], pool: bool = False) -> dict[str, Any]:
    from importlib.metadata import version  # (not harbench.__version__: harbench's own functions import this module)

    entries = []
    for run in runs:
        env = run.get("env")
        env = json.loads(env) if isinstance(env, str) and env else (env or {})
        entries.append({"id": int(run["id"]), "suite": run["suite"], "suite_path": run.get("suite_path"),
                        "suite_yaml": run.get("suite_yaml"), "suite_hash": run.get("suite_hash"),
                        "started": run.get("started"), "ended": run.get("ended"), "status": run.get("status"),
                        "jobs": counts[int(run["id"])], "env": env})
    files = {str(p.relative_to(folder)): {"sha256": _sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = {"kind": KIND, "format": FORMAT, "harbench": version("harbench"), "created": time.time(),
                "plugins": _plugin_versions(), "git_commit": git_commit(), "machine": _machine(),
                "runs": entries, "files": files}
    if pool:
        manifest["pool"] = True
    manifest["manifest_digest"] = _manifest_digest(manifest)
    return manifest


def _plugin_versions() -> dict[str, str]:
    """Every distribution providing a ``harbench`` entry point, with its version (the publisher's install)."""
    from importlib.metadata import entry_points

    out = {}
    for ep in entry_points(group="harbench"):
        dist = ep.dist
        if dist is not None:
            out[dist.metadata["Name"]] = dist.version
    return dict(sorted(out.items()))


def _machine() -> dict[str, Any]:
    """The publishing machine (each run's own machine is in its ``env``: host, platform, cpu count, torch)."""
    from ..machine import memory_gb, processor

    return {"host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": processor(), "cpu_count": os.cpu_count(), "memory_gb": round(memory_gb(), 1)}


# ----------------------------------------------------------------------------------------------------- reading


class Bundle:
    """A published bundle, read with the results store's interface (:class:`~harbench.results.source.RunSource`).

    The manifest and every file's digest are checked when the bundle is opened: a view never shows a row of a
    damaged bundle. Rows are read from Parquet when first asked for, and kept (a bundle never changes)."""

    def __init__(self, path: str | Path):
        p = Path(path)
        self.folder = p.parent if p.name == MANIFEST and p.is_file() else p
        self.path = self.folder / MANIFEST
        self.manifest = self._check()
        self._rows: dict[int, list[dict[str, Any]]] = {}

    def _fail(self, what: str) -> BundleError:
        return BundleError(f"the bundle {self.folder}: {what}")

    def _check(self) -> dict[str, Any]:
        if not self.path.is_file():
            raise self._fail(f"no {MANIFEST} (is it a harbench bundle? `harbench publish` writes one)")
        try:
            manifest = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise self._fail(f"{MANIFEST} is not readable JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
            raise self._fail(f"{MANIFEST} does not describe a harbench bundle (kind {KIND!r} expected)")
        fmt = manifest.get("format")
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise self._fail(f"written by harbench {manifest.get('harbench')} in bundle format {fmt}; this harbench "
                             f"reads format {FORMAT} at most: upgrade harbench")
        if manifest.get("manifest_digest") != _manifest_digest(manifest):
            raise self._fail(f"{MANIFEST} was edited or damaged (its digest does not match): the bundle cannot be "
                             "trusted; publish it again from the results store")
        files = manifest.get("files")
        if not isinstance(files, dict) or not isinstance(manifest.get("runs"), list):
            raise self._fail(f"{MANIFEST} lacks its files or runs")
        for name, entry in files.items():
            file = self.folder / name
            if not file.is_file():
                raise self._fail(f"the file {name} is missing (the manifest lists it)")
            if _sha256(file) != entry.get("sha256"):
                raise self._fail(f"the file {name} was edited or damaged (its SHA-256 does not match the manifest); "
                                 "its values cannot be trusted")
        return manifest

    # ----------------------------------------------------------------------------- the store's reading interface
    def runs(self) -> list[dict[str, Any]]:
        return [self._run(r) for r in sorted(self.manifest["runs"], key=lambda r: r["id"])]

    @staticmethod
    def _run(entry: dict[str, Any]) -> dict[str, Any]:
        """A run as the store gives it (``env`` as its JSON text, as stored)."""
        run = {k: entry.get(k) for k in ("id", "suite", "suite_path", "suite_yaml", "suite_hash", "started", "ended",
                                         "status")}
        run["env"] = json.dumps(entry.get("env") or {}, sort_keys=True)
        return run

    def resolve_run(self, ref: str | int | None) -> dict[str, Any]:
        runs = self.runs()
        if not runs:
            raise self._fail("holds no run")
        if ref in (None, "latest"):
            return runs[-1]
        try:
            wanted = int(ref)  # type: ignore[arg-type]
            hits = [r for r in runs if r["id"] == wanted]
        except ValueError:
            hits = [r for r in runs if r["suite"] == ref]
        if not hits:
            known = ", ".join(f"{r['id']} ({r['suite']})" for r in runs)
            raise self._fail(f"no run {ref!r}; it holds run {known}")
        return hits[-1]

    def job_rows(self, run_id: int) -> list[dict[str, Any]]:
        """One flat dict per job, as :meth:`Store.job_rows` gives them (shared parsed objects: treat as read-only)."""
        if run_id not in self._rows:
            self._rows[run_id] = self._read_rows(run_id)
        return self._rows[run_id]

    def iter_job_rows(self, run_id: int, chunk: int | None = None) -> Iterator[dict[str, Any]]:
        yield from self.job_rows(run_id)

    def count_jobs(self, run_id: int) -> int:
        return int(self._entry(run_id).get("jobs") or 0)

    def metric_names(self, run_id: int, exclude: Iterable[str] = ()) -> list[str]:
        skip = set(exclude)
        seen: dict[str, None] = {}
        for r in self.job_rows(run_id):
            for k in r:
                if k not in BASE_COLUMNS and k not in skip:
                    seen.setdefault(k)
        return list(seen)

    def sample_kinds(self, run_id: int) -> list[str]:
        table = self._table(run_id, "samples.parquet", ["kind"])
        return list(dict.fromkeys(table.column("kind").to_pylist()))

    def samples(self, run_id: int, kind: str) -> Iterator[tuple[dict[str, Any], list[float]]]:
        table = self._table(run_id, "samples.parquet", None)
        for r in table.to_pylist():
            if r["kind"] == kind:
                yield {c: r[c] for c in SAMPLE_COLUMNS}, r["values"]

    # ------------------------------------------------------------------------------------------------ reading
    def _entry(self, run_id: int) -> dict[str, Any]:
        for r in self.manifest["runs"]:
            if r["id"] == run_id:
                return r
        raise self._fail(f"no run {run_id}")

    def _table(self, run_id: int, name: str, columns: list[str] | None) -> Any:
        self._entry(run_id)
        relative = f"runs/{run_id}/{name}"
        if relative not in self.manifest["files"]:
            raise self._fail(f"the file {relative} is missing (the manifest does not list it)")
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise BundleError("reading a bundle needs pyarrow: pip install 'harbench[parquet]'") from None
        try:
            return pq.read_table(str(self.folder / relative), columns=columns)
        except Exception as exc:  # noqa: BLE001 -- pyarrow's errors are of several kinds; all mean "unreadable"
            raise self._fail(f"the file {relative} is not readable Parquet ({exc})") from None

    def _schema(self, run_id: int) -> list[str]:
        import pyarrow.parquet as pq

        self._table(run_id, "jobs.parquet", [])  # the run and the file exist, and the file is Parquet
        return list(pq.read_schema(str(self.folder / f"runs/{run_id}/jobs.parquet")).names)

    def _read_rows(self, run_id: int) -> list[dict[str, Any]]:
        """The rows as the store's reader gives them: equal values shared (a text column is read as its distinct
        values and one index per row, each distinct JSON text parsed once), the metrics parsed in one call."""
        import pyarrow as pa

        columns = [*BASE_COLUMNS, "metrics_json"]  # (the expanded metric columns are for other readers)
        names = self._schema(run_id)
        missing = [c for c in columns if c not in names]
        if missing:
            raise self._fail(f"runs/{run_id}/jobs.parquet lacks the column(s) {', '.join(missing)}")
        table = self._table(run_id, "jobs.parquet", columns)
        data: dict[str, list[Any]] = {}
        for c in BASE_COLUMNS:
            column = table.column(c)
            if not pa.types.is_string(column.type) or c == "error":
                data[c] = column.to_pylist()
                continue
            encoded = column.combine_chunks().dictionary_encode()
            distinct = encoded.dictionary.to_pylist()
            if c in JSON_COLUMNS:
                distinct = [json.loads(t) for t in distinct]
            default: dict[str, Any] | None = {} if c in ("facts", "provenance") else None
            data[c] = [default if i is None else distinct[i] for i in encoded.indices.to_pylist()]
        texts = table.column("metrics_json").to_pylist()
        try:
            metrics_all = json.loads("[" + ",".join(t or "{}" for t in texts) + "]")
        except ValueError:
            metrics_all = None
        if metrics_all is None or len(metrics_all) != len(texts) or not all(isinstance(m, dict) for m in metrics_all):
            raise self._fail(f"runs/{run_id}/jobs.parquet: a metrics_json cell is not a JSON object")
        rows = []
        for i, metrics in enumerate(metrics_all):
            row = {c: data[c][i] for c in BASE_COLUMNS}
            row["run_id"] = run_id
            row.update(metrics)
            rows.append(row)
        return rows
