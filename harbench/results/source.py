"""Where the views read a run from: a results store (:class:`~harbench.results.store.Store`) or a published bundle
(:class:`~harbench.results.bundle.Bundle`). Both give runs and rows the same way; :func:`open_results` picks one
for ``--results``, so ``report``, ``compare``, ``plot`` and ``claims`` read either without knowing which."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol


class RunSource(Protocol):
    """The reading interface the views use (a store's writing methods are not part of it)."""

    folder: Path
    path: Path

    def resolve_run(self, ref: str | int | None) -> Any:
        """The run's record (``id``, ``suite``, ``suite_yaml``, ``suite_hash``, ``status``, ``env``...): a mapping."""

    def job_rows(self, run_id: int) -> list[dict[str, Any]]: ...

    def iter_job_rows(self, run_id: int, chunk: int | None = None) -> Iterator[dict[str, Any]]: ...

    def count_jobs(self, run_id: int) -> int: ...

    def metric_names(self, run_id: int, exclude: Iterable[str] = ()) -> list[str]: ...

    def sample_kinds(self, run_id: int) -> list[str]: ...

    def samples(self, run_id: int, kind: str) -> Iterator[tuple[dict[str, Any], list[float]]]: ...


def open_results(path: str | Path) -> RunSource:
    """``--results PATH``: a bundle (its folder, or its ``manifest.json``) or a results store's folder."""
    from .bundle import Bundle, is_bundle
    from .store import Store

    return Bundle(path) if is_bundle(path) else Store(path)


def load_frame(run: str | int = "latest", results: str | Path = "results"):
    """The export rows of ``run`` as a pandas DataFrame (one row per job; the export's column contract).
    ``results``: a results store's folder or a published bundle, as every reading command takes."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("harbench.load needs pandas: pip install 'harbench[pandas]'") from None
    from .export import export_columns, export_rows

    store = open_results(results)
    job_rows = store.job_rows(int(store.resolve_run(run)["id"]))
    rows = export_rows(job_rows)
    return pd.DataFrame(rows, columns=export_columns(job_rows))
