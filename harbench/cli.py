"""The ``harbench`` command line. Errors are one clear line; exit 0 success, 1 failed jobs, 2 bad input."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .params import ParamError
from .plugins import KINDS, PluginError, get_registry
from .report import export_rows, render, summary_table, write_export
from .store import Store, StoreError
from .suite import SuiteError, load_suite

DEFAULT_RESULTS = "results"
err = Console(stderr=True)

results_option = click.option("--results", "results", default=DEFAULT_RESULTS, show_default=True,
                              type=click.Path(file_okay=False), help="folder of the results store and cache")


def bad_input(fn):
    """Turn known input errors into one line on stderr and exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SuiteError as exc:
            for line in str(exc).splitlines():
                click.echo(click.style("error: ", fg="red") + line, err=True)
            sys.exit(2)
        except (PluginError, ParamError, StoreError, ValueError) as exc:
            click.echo(click.style("error: ", fg="red") + str(exc), err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="harbench")
def main() -> None:
    """harbench: which personalization method gives the best accuracy for the least latency and energy?"""


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@click.option("--resume", is_flag=True, help="continue the latest run of this suite, skipping jobs already recorded")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.option("--dry-run", is_flag=True, help="print the plan (nodes of each kind, how many are cached) and exit")
@bad_input
def run(suite: str, results: str, resume: bool, quiet: bool, dry_run: bool) -> None:
    """Run every job of SUITE and print the results table."""
    from .runner import Runner

    registry = get_registry()
    s = load_suite(suite, registry)  # bad input stops here, before the store is touched
    store = Store(results)
    if dry_run:
        _print_plan(s, registry, store)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=err, disable=quiet, transient=True) as bar:
        task = bar.add_task(s.name, total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=f"[bold]{s.name}[/bold] {label}", completed=done, total=total)

        summary = Runner(s, registry, store, resume=resume, progress=progress).run()
    rows = store.job_rows(summary.run_id)
    headers, table = summary_table(rows)
    click.echo(render(headers, table, "github"))
    _print_summaries(rows)
    click.echo(f"\nrun {summary.run_id} ({s.name}): {summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped "
               f"in {summary.wall_s:.1f} s; results in {store.path}")
    if summary.interrupted:
        click.echo(f"interrupted after {summary.ok + summary.failed + summary.skipped} of {summary.total} jobs; "
                   f"finish it with: harbench run {suite} --resume --results {results}", err=True)
        sys.exit(130)
    if summary.failed:
        click.echo("failures:", err=True)
        for rec in summary.failures[:20]:
            click.echo(f"  {rec.spec.label()}: {rec.error}", err=True)
        if len(summary.failures) > 20:
            click.echo(f"  ... and {len(summary.failures) - 20} more (harbench export shows all)", err=True)
        click.echo(f"re-run the failed jobs with: harbench run {suite} --resume --results {results}", err=True)
        sys.exit(1)


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@bad_input
def validate(suite: str) -> None:
    """Check SUITE (schema, plugin names, parameters, users) without running anything."""
    from .runner import plan_jobs

    s = load_suite(suite, get_registry())
    click.echo(f"{suite}: valid — {len(s.datasets)} dataset(s), {len(s.methods)} method configuration(s), "
               f"{len(s.hardware)} hardware target(s), {len(s.model.seeds)} seed(s): {len(plan_jobs(s))} jobs")


@main.command()
def plugins() -> None:
    """List installed plugins with their distribution, version and status."""
    from tabulate import tabulate

    reg = get_registry()
    rows = []
    for kind in KINDS:
        for name in reg.names(kind):
            r = reg.items[kind][name]
            rows.append([name, kind, r.distribution, r.version, "loaded"])
    for p in reg.plugins:
        if p.status == "broken":
            rows.append([p.entry_point, "?", p.distribution, p.version, f"broken: {p.reason}"])
    click.echo(tabulate(rows, headers=["name", "kind", "distribution", "version", "status"], tablefmt="github"))


@main.command(name="list")
@click.argument("kind", type=click.Choice(["datasets", "methods", "hardware", "metrics"]))
def list_(kind: str) -> None:
    """List the registered plugins of KIND with their parameters and defaults."""
    reg = get_registry()
    singular = {"datasets": "dataset", "methods": "method", "hardware": "hardware", "metrics": "metric"}[kind]
    for name in reg.names(singular):
        r = reg.items[singular][name]
        click.echo(click.style(name, bold=True) + f"  ({r.distribution} {r.version}) — {r.cls.description}")
        if singular == "metric":
            unit = f" [{r.cls.unit}]" if r.cls.unit else ""
            better = {True: "higher is better", False: "lower is better", None: "label"}[r.cls.higher_is_better]
            click.echo(f"    {better}{unit}")
        for pname, p in r.cls.parameters.items():
            click.echo(f"    {pname}: {p.describe_type()} = {p.default!r}  {p.help}")


@main.command()
@click.argument("run", default="latest")
@results_option
@click.option("--format", "fmt", type=click.Choice(["github", "csv", "latex", "json"]), default="github", show_default=True)
@bad_input
def report(run: str, results: str, fmt: str) -> None:
    """Print RUN (an id, a suite name, or 'latest') as a table: mean ± std over users and seeds."""
    store = Store(results)
    r = store.resolve_run(run)
    rows = store.job_rows(int(r["id"]))
    headers, table = summary_table(rows)
    click.echo(render(headers, table, fmt))
    if fmt == "github":
        _print_summaries(rows)


@main.command()
@click.argument("run", default="latest")
@results_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "parquet"]), default="json", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="file to write")
@bad_input
def export(run: str, results: str, fmt: str, output: str) -> None:
    """Write RUN's jobs, one row per job, as JSON, CSV or Parquet."""
    store = Store(results)
    r = store.resolve_run(run)
    rows = export_rows(store.job_rows(int(r["id"])))
    write_export(rows, fmt, output)
    click.echo(f"wrote {len(rows)} rows to {output}")


def _print_plan(s, registry, store: Store) -> None:
    from tabulate import tabulate

    from .cache import WeightCache
    from .runner import plan_counts

    counts = plan_counts(s, registry, WeightCache(store.folder / "cache"))
    rows = [[kind, n, counts.cached.get(kind, 0), n - counts.cached.get(kind, 0)] for kind, n in counts.nodes.items()]
    click.echo(tabulate(rows, headers=["node", "total", "from cache", "to run"], tablefmt="github"))


def _print_summaries(rows) -> None:
    from tabulate import tabulate

    export = export_rows(rows)
    for answer in get_registry().hook.harbench_report_summary(rows=export):
        if not answer:
            continue
        click.echo(f"\n{answer['title']}")
        click.echo(tabulate(answer["rows"], headers=answer["headers"], tablefmt="github"))
        if answer.get("note"):
            click.echo(answer["note"])


def _register_plugin_commands() -> None:
    try:
        get_registry().hook.harbench_register_commands(cli=main)
    except Exception as exc:  # a plugin's command must not break the CLI
        err.print(f"[yellow]warning:[/yellow] a plugin failed to add commands: {exc}")


_register_plugin_commands()

if __name__ == "__main__":
    main()
