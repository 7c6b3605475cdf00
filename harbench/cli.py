"""The ``harbench`` command line. Errors are one clear line; exit 0 success, 1 failed jobs, 2 bad input."""

from __future__ import annotations

import errno
import functools
import os
import sqlite3
import sys

import click

from .cli_run import (
    print_decision,
    print_plan,
    print_summaries,
    run_with_progress,
    target_order,
    warm_run,
)
from .commands import (
    PLUGIN_HEADERS,
    RUN_HEADERS,
    HarbenchGroup,
    load_with_overrides,
    plugin_rows,
    runs_table,
)
from .plugins import KIND_NAMES, PluginError
from .registry_snapshot import SnapshotRegistry, full_registry, listing, listing_lines, reading_registry
from .results.store import Store, StoreError

DEFAULT_RESULTS = "results"

budget_option = click.option("--budget", "budgets", multiple=True, metavar="METRIC<=VALUE",
                             help="a cost or accuracy budget for the decision view, e.g. latency_ms_p50<=5 "
                                  "(repeatable; a fraction metric's bound in points: acc_seen>=90; default: the "
                                  "suite's budgets)")

set_option = click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                          help="override the suite at a dotted path, list entries by name (YAML value; repeatable): "
                               "--set seeds=[0] --set methods.tbft.params.block=[fc,all]; ~ removes a list entry: "
                               "--set methods.smldist=~")
format_option = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
results_option = click.option("--results", "results", default=DEFAULT_RESULTS, show_default=True,
                              type=click.Path(file_okay=False), help="folder of the results store and cache")
reading_option = click.option("--results", "results", default=DEFAULT_RESULTS, show_default=True, type=click.Path(),
                              help="a results store's folder, or a published bundle (its folder or manifest.json)")


def environment_problem(exc: BaseException, results: str | None) -> str:
    """One line for a disk or permission problem; the store commits each job atomically, so nothing is lost."""
    where = getattr(exc, "filename", None) or results or "the results folder"
    text = str(exc).lower()
    if getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in text or "database or disk is full" in text:
        return (f"disk full while writing {where}: nothing that was committed is lost; free space and run again "
                "with --resume")
    if getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in text or "read-only" in text:
        return f"cannot write {where}: the folder is read-only or not writable (--results DIR chooses another)"
    if isinstance(exc, sqlite3.OperationalError):
        return f"the results store in {results or 'the results folder'} cannot be used: {exc}"
    return f"{where}: {getattr(exc, 'strerror', None) or exc}"


def bad_input(fn):
    """Turn known input errors into one line on stderr and exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (PluginError, StoreError, ValueError) as exc:  # ValueError covers SuiteError and ParamError
            suite = sys.modules.get(f"{__package__}.suite")  # a SuiteError was raised only if it is imported
            multi = suite is not None and isinstance(exc, suite.SuiteError)
            for line in str(exc).splitlines() if multi else [str(exc)]:
                click.echo(click.style("error: ", fg="red") + line, err=True)
            sys.exit(2)
        except (OSError, sqlite3.OperationalError) as exc:  # the environment, not the input: exit 1
            click.echo(click.style("error: ", fg="red") + environment_problem(exc, kwargs.get("results")), err=True)
            sys.exit(1)

    return wrapper


@click.group(cls=HarbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="harbench")
def main() -> None:
    """harbench: which personalization method gives the best accuracy for the least latency and energy?"""
    from .console import one_line_warnings

    one_line_warnings()


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@click.option("--resume", is_flag=True, help="continue the latest run of this suite, skipping jobs already recorded")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.option("--dry-run", is_flag=True, help="print the plan (nodes of each kind, how many are cached) and exit")
@click.option("--workers", "-j", type=click.IntRange(min=0), default=None,
              help="parallel worker processes (0 = one per core; default: the suite's `workers`)")
@click.option("--remeasure", is_flag=True,
              help="measure measured targets again instead of reusing their cached results (estimates stay cached)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="run on Ray: a local instance, or the cluster at ADDRESS (--ray=ray://host:10001)")
@budget_option
@click.option("--full", is_flag=True, help="also print the full table and the plugins' summaries")
@set_option
@bad_input
def run(suite: str, results: str, resume: bool, quiet: bool, dry_run: bool, workers: int | None,
        remeasure: bool, ray_address: str | None, budgets: tuple[str, ...], full: bool, sets: tuple[str, ...]) -> None:
    """Run every job of SUITE and print the results table."""
    summary, loaded = None, None
    if not (dry_run or resume or remeasure):  # every job cached: served from the plan memo, no plugin loaded
        summary, limits, store, name = warm_run(suite, results, sets, budgets)
    if summary is None:
        from .results.report import parse_budgets
        from .results.tables import metric_columns

        registry = full_registry()
        s = load_with_overrides(suite, registry, sets)  # bad input stops here, before the store is touched
        name = s.name
        limits = parse_budgets(budgets or s.model.budgets, metric_columns((), registry))  # bad budgets too
        store = Store(results)
        if dry_run:
            print_plan(s, registry, store, remeasure)
            return
        summary = run_with_progress(s, registry, store, resume, quiet, workers, remeasure, ray_address)
        loaded = registry if registry.from_environment else None
    rows = store.job_rows(summary.run_id)
    if loaded is not None:  # while the plugins are loaded: `report` will find their summaries cached
        from .results.report import paper_summaries

        try:
            paper_summaries(rows, loaded)
        except Exception:  # noqa: BLE001 -- a failing summary hook is reported by `report`, not here
            pass
    if full:
        from .results.tables import render, summary_table

        click.echo(render(*summary_table(rows, ci=True), "github"))
        print_summaries(rows)
        click.echo("")
    print_decision(rows, limits, store.folder, target_order(store, summary.run_id))
    click.echo(f"\nrun {summary.run_id} ({name}): {summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped "
               f"in {summary.wall_s:.1f} s; results in {store.path}")
    if summary.cached:
        click.echo(f"{summary.cached} of them from the cache (computed or measured by an earlier run, which each row's "
                   "provenance names); --remeasure measures the measured targets again")
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
@set_option
@click.option("--power", is_flag=True, help="also estimate, from the latest run of SUITE in --results, how many "
              "users would decide each claim it left inconclusive (80 % power at the observed spread)")
@results_option
@bad_input
def validate(suite: str, sets: tuple[str, ...], power: bool, results: str) -> None:
    """Check SUITE (schema, plugin names, parameters, users) without running anything."""
    from .run import plan_jobs

    s = load_with_overrides(suite, full_registry(), sets)
    click.echo(f"{suite}: valid — {len(s.datasets)} dataset(s), {len(s.methods)} method configuration(s), "
               f"{len(s.hardware)} hardware target(s), {len(s.model.seeds)} seed(s): {len(plan_jobs(s))} jobs")
    if power:
        from .results.power import power_report

        click.echo(power_report(s.name, results))


@main.command()
@format_option
def plugins(fmt: str) -> None:
    """List installed plugins with their distribution, version and status."""
    rows = plugin_rows(reading_registry(), KIND_NAMES)
    from .results.tables import render

    click.echo(render(PLUGIN_HEADERS, rows, "json" if fmt == "json" else "github"))


@main.command()
@reading_option
@format_option
@bad_input
def runs(results: str, fmt: str) -> None:
    """List the runs of the results store (or bundle): id, suite, started, status, jobs ok / failed, wall time."""
    from .results.source import open_results
    from .results.tables import render

    click.echo(render(RUN_HEADERS, runs_table(open_results(results)), "json" if fmt == "json" else "github"))


@main.command(name="list")
@click.argument("kind", type=click.Choice(["datasets", "methods", "hardware", "metrics", "backbones"]))
@format_option
def list_(kind: str, fmt: str) -> None:
    """List the registered plugins (or backbones) of KIND with their parameters and defaults."""
    singular = {"datasets": "dataset", "methods": "method", "hardware": "hardware", "metrics": "metric",
                "backbones": "backbone"}[kind]
    registry = reading_registry()
    if isinstance(registry, SnapshotRegistry):  # the lines a full registry printed when the snapshot was saved
        lines = registry.data["listings"][singular]["json" if fmt == "json" else "text"]
    else:
        lines = listing_lines(listing(registry, singular), singular, fmt)
    for line in lines:
        click.echo(line)


@main.command()
@click.argument("run", default="latest")
@reading_option
@click.option("--format", "fmt", type=click.Choice(["github", "csv", "latex", "json"]), default="github", show_default=True)
@click.option("--by", "by", default=None, metavar="COLS",
              help="group by these columns, comma-separated [default: method,hardware] (variant follows method)")
@click.option("--where", "where", multiple=True, metavar="COL=VALUE",
              help="keep jobs matching (repeatable; =, != with comma-separated alternatives, <, <=, >, >=)")
@click.option("--ci/--no-ci", default=True, show_default=True, help="show the 95 % confidence interval of each mean")
@click.option("--metric", default="acc_seen", show_default=True,
              help="metric of the per-user table (harm rate, worst decile, paired tests)")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="also write a self-contained HTML report (tables and figures) to this file")
@budget_option
@click.option("--full", is_flag=True, help="also print the full table (every metric per method × hardware)")
@click.option("--columns", default=None, metavar="METRICS",
              help="print only the full table, with these metric columns in this order (comma-separated), "
                   "e.g. adapt_peak_mb,infer_peak_mb; JSON, CSV and LaTeX keep only them too")
@bad_input
def report(run: str, results: str, fmt: str, by: str | None, where: tuple[str, ...], ci: bool, metric: str,
           html_path: str | None, budgets: tuple[str, ...], full: bool, columns: str | None) -> None:
    """Print RUN (an id, a suite name, or 'latest') as tables: mean ± std [95 % CI] over users and seeds, then
    per user: harm rate, worst decile and paired Wilcoxon tests against generic and finetune-full."""
    from .results.report import ReportOptions, build_report, write_html
    from .results.source import open_results
    from .results.views import suite_budgets

    store = open_results(results)
    r = store.resolve_run(run)
    options = ReportOptions.parse(by=by, where=where, ci=ci, metric=metric, budgets=budgets or suite_budgets(r),
                                  full=full, summaries=fmt not in ("json", "csv") or bool(html_path),
                                  columns=columns)
    built = build_report(r, store.job_rows(int(r["id"])), options, results=results)
    click.echo(built.text(fmt))
    if fmt in ("json", "csv"):  # the table alone goes to stdout; a partial run still says so
        for note in built.notes[:1] if built.notes and built.notes[0].startswith("INCOMPLETE") else []:
            click.echo(f"warning: {note}", err=True)
    if html_path:
        note = write_html(built, html_path, store)
        click.echo(f"wrote {html_path}" + (f" ({note})" if note else ""), err=True)


@main.command()
@click.argument("run", default="latest")
@reading_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "parquet"]), default="json", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="file to write")
@bad_input
def export(run: str, results: str, fmt: str, output: str) -> None:
    """Write RUN's jobs, one row per job, as JSON, CSV or Parquet."""
    if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        raise ValueError(f"-o {output}: the folder {os.path.dirname(output) or '.'} does not exist (create it first)")
    from .results.source import open_results

    store = open_results(results)
    r = store.resolve_run(run)
    from .results.export import export_run
    from .results.report import incomplete_note

    n = export_run(store, int(r["id"]), fmt, output)  # streamed from the store: memory does not grow with rows
    click.echo(f"wrote {n} rows to {output}")
    note = incomplete_note(r, n, results)
    if note:
        click.echo(f"warning: {note}", err=True)




@main.command()
@click.argument("runs", nargs=-1)
@results_option
@click.option("-o", "--output", required=True, type=click.Path(), help="the bundle folder to write")
@click.option("--csv", is_flag=True, help="also write each run's jobs as CSV (for spreadsheets; several times larger)")
@click.option("--pool", is_flag=True, help="the runs are folds of one study (different targets): harbench claims "
                                           "judges their rows together")
@bad_input
def publish(runs: tuple[str, ...], results: str, output: str, csv: bool, pool: bool) -> None:
    """Write RUNS (default: latest) as a bundle others can open: Parquet rows and samples, and a manifest."""
    from .results.bundle import publish as write_bundle

    published = write_bundle(Store(results), list(runs), output, csv=csv, pool=pool)
    jobs = ", ".join(f"run {i}: {n} jobs" for i, n in published.runs.items())
    click.echo(f"wrote {published.folder} ({jobs}); read it with --results {published.folder}")


@main.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["markdown", "json", "latex"]), default="markdown", show_default=True)
@click.option("--pool", is_flag=True, help="judge every run given together (folds of one study whose targets "
                                           "differ); a bundle published with --pool is always read pooled")
@bad_input
def claims(bundles: tuple[str, ...], fmt: str, pool: bool) -> None:
    """Print the paper claim tables of BUNDLES (every run of a bundle; a results folder: its latest run)."""
    from .results.claim_tables import gather, render

    click.echo(render(gather(bundles, pool=pool), fmt), nl=False)


@main.command()
@click.argument("run", default="latest")
@reading_option
@click.option("-o", "--output", default="figures", show_default=True, type=click.Path(file_okay=False),
              help="folder for the figures")
@click.option("--format", "formats", default="png,svg", show_default=True, help="comma-separated: png, svg")
@click.option("--where", "where", multiple=True, metavar="COL=VALUE", help="keep jobs matching (as in report)")
@bad_input
def plot(run: str, results: str, output: str, formats: str, where: tuple[str, ...]) -> None:
    """Draw RUN's trade-offs: accuracy vs adapt energy and vs latency (Pareto fronts), robustness, per-user gains."""
    from .results.plots import PlotsUnavailable, write_figures
    from .results.query import filter_rows, parse_where
    from .results.source import open_results

    store = open_results(results)
    rows = filter_rows(store.job_rows(int(store.resolve_run(run)["id"])), parse_where(where))
    try:
        written = write_figures(rows, output, [f.strip() for f in formats.split(",") if f.strip()])
    except PlotsUnavailable as exc:
        raise ValueError(str(exc)) from None
    for path in written:
        click.echo(str(path))


@main.command()
@click.argument("base")
@click.argument("new")
@reading_option
@click.option("--base-results", default=None, type=click.Path(),
              help="results folder or bundle of BASE when it differs from --results (e.g. a run from the main "
                   "branch)")
@click.option("--fail-on", default="", metavar="SPEC",
              help='regression thresholds, e.g. "acc_seen:-1pt,adapt_j:+10%,latency_ms_p50:+10%" (an accuracy-like '
                   "metric's drop in pt or frac; % on a cost is relative to the base)")
@click.option("--allow-missing", is_flag=True,
              help="under --fail-on, do not fail when a cell is in only one of the runs (by default it fails: "
                   "nothing was compared for it)")
@click.option("--match", "match", type=click.Choice(["variant", "method"]), default="variant", show_default=True,
              help="pair cells by method variant, or by method alone so a changed configuration is compared")
@click.option("--metrics", default=None, metavar="COLS", help="metrics to tabulate (default: a core set + --fail-on's)")
@click.option("--alpha", default=0.01, show_default=True, type=float,
              help="significance level for cost regressions (Mann–Whitney U; else 99 % CIs)")
@click.option("--format", "fmt", type=click.Choice(["github", "csv", "json"]), default="github", show_default=True)
@bad_input
def compare(base: str, new: str, results: str, base_results: str | None, fail_on: str, allow_missing: bool,
            match: str, metrics: str | None, alpha: float, fmt: str) -> None:
    """Compare run NEW against run BASE per method × hardware; exit 1 on a regression beyond --fail-on, or on cells
    only one run has (unless --allow-missing)."""
    from .cli_compare import compare_command

    sys.exit(compare_command(base, new, results, base_results, fail_on, allow_missing, match, metrics, alpha, fmt))


@main.command()
@click.argument("kind", type=click.Choice(["method", "dataset", "hardware", "metric"]))
@click.argument("name")
@click.option("-o", "--output", default=".", show_default=True, type=click.Path(file_okay=False),
              help="folder in which the plugin's folder harbench-NAME is created")
@bad_input
def new(kind: str, name: str, output: str) -> None:
    """Scaffold a ready-to-install plugin distribution of KIND called NAME (entry point, code, tests, README)."""
    from .scaffold import scaffold

    created = scaffold(kind, name, output)
    click.echo(f"created {created.root}")
    click.echo(f"next: pip install -e {created.root} && pytest {created.root}/tests && "
               f"harbench run {created.root}/{created.suite_name}")






if __name__ == "__main__":
    main()
