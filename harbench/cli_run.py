"""The ``harbench run`` command's parts: the warm path (a cached plan served without plugins), the full run with
its progress, the ``--dry-run`` plan and the closing answer (the decision view, the plugins' summaries)."""

from __future__ import annotations

import os

import click

from .registry_snapshot import reading_registry
from .results.store import Store, StoreError


def warm_run(suite: str, results: str, sets: tuple[str, ...], budgets: tuple[str, ...]):
    """A run whose every job is cached, from its plan memo (``harbench/run/warm.py``): no plugin, no torch.
    Returns (summary, budgets, store, suite name), summary None where the full run must run."""
    from pathlib import Path

    import yaml

    from .commands import apply_overrides
    from .run.warm import disabled, serve

    try:
        if disabled() or not Path(results).is_dir() or Path(suite).stat().st_size > 1 << 20:  # suite.MAX_SUITE_BYTES
            return None, None, None, None
        text = Path(suite).read_text()
        text = apply_overrides(text, sets, suite) if sets else text
        doc = yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return None, None, None, None  # the full run says what is wrong with the file
    declared = doc.get("budgets") if isinstance(doc, dict) else None
    texts = list(budgets) or [str(b) for b in declared or []]
    limits: list = []
    try:
        if texts:  # the parser and the metric declarations (numpy) are imported only for budgets to parse
            from .results.report import parse_budgets
            from .results.tables import metric_columns

            limits = parse_budgets(texts, metric_columns((), reading_registry()))
    except ValueError:
        return None, None, None, None  # the full run reports the bad budget against the suite
    store = Store(results)
    summary = serve(store, suite, text)
    return summary, limits, store, (doc.get("name") if summary else None)


def run_with_progress(s, registry, store, resume, quiet, workers, remeasure, ray_address):
    """The full run, with the progress bar (a terminal) or a line per finished job (a log)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    err = Console(stderr=True)
    from .run import Runner

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=err, disable=quiet, transient=True) as bar:
        task = bar.add_task(s.name, total=None)

        plain = not quiet and not err.is_terminal  # a log file or CI: a line per finished job, as benchopt does
        last = [-1]

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=f"[bold]{s.name}[/bold] {label}", completed=done, total=total)
            if plain and (done != last[0] or label.startswith(("training", "prepare", "a worker"))):
                width = len(str(total))
                click.echo(f"[{done:>{width}}/{total}] {label}", err=True)
                last[0] = done

        if workers == 0:
            workers = os.cpu_count() or 1
        executor = "ray" if ray_address else None
        address = None if ray_address in (None, "local") else ray_address
        summary = Runner(s, registry, store, resume=resume, progress=progress, workers=workers, executor=executor,
                         ray_address=address, remeasure=remeasure).run()
    return summary


def print_plan(s, registry, store: Store, remeasure: bool) -> None:
    from tabulate import tabulate

    from .run import plan_counts
    from .run.cache import WeightCache

    counts = plan_counts(s, registry, WeightCache(store.folder / "cache"), remeasure)
    rows = [[kind, n, counts.cached.get(kind, 0), n - counts.cached.get(kind, 0)] for kind, n in counts.nodes.items()]
    click.echo(tabulate(rows, headers=["node", "total", "from cache", "to run"], tablefmt="github"))


def target_order(store: Store, run_id: int) -> list[str]:
    """The run's targets in the suite's order (rows arrive in the order jobs finish, which workers change)."""
    import json

    try:
        return list((json.loads(dict(store.resolve_run(run_id))["env"] or "{}").get("hardware") or {}))
    except (ValueError, StoreError):
        return []


def print_decision(rows, limits, folder, order=()) -> None:
    """The answer at a glance: accuracy once per method, then per target its Pareto fronts and a verdict (cached
    by its rows: a warm run prints it without recomputing its intervals). Targets come in the suite's order."""
    from .results.viewcache import cached_text

    place = {name: i for i, name in enumerate(order)}
    ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: place.get(r.get("hardware"), len(place)))
    if ok:
        def compute() -> str:
            from .results.decision import decide, render_text

            return render_text(decide(ok, limits))

        click.echo(cached_text(folder, "decision", ok, limits, compute))
        click.echo("every metric, per-user tests and the plugins' summaries: harbench report latest --full")


def print_summaries(rows) -> None:
    from tabulate import tabulate

    from .results.report import paper_summaries

    for answer in paper_summaries(rows):
        click.echo(f"\n{answer['title']}")
        click.echo(tabulate(answer["rows"], headers=answer["headers"], tablefmt="github"))
        if answer.get("note"):
            click.echo(answer["note"])
