"""Entry point of the ``harbench`` plugin group: the methods, their report summary and two commands."""

from __future__ import annotations

from typing import Any

import click

from harbench import hookimpl

from .summary import summarize  # torch-free: `harbench claims` loads this module and no method


@hookimpl
def harbench_register_methods(register):
    from .method import TBFT, TBFTPreAct  # torch: imported only when the methods are registered

    register(TBFT)
    register(TBFTPreAct)


@hookimpl
def harbench_report_summary(rows: list[dict[str, Any]]):
    return summarize(rows)


@click.command("tbft-steps")
@click.option("--backbone", "backbones", multiple=True, default=("resnet1d", "preact1d"), show_default=True,
              help="backbone(s) to time (harbench's registry names)")
@click.option("--recipe", default="feature", show_default=True, type=click.Choice(["input", "feature", "output"]),
              help="whose optimizer and learning rates each step uses")
@click.option("--batch", "batches", multiple=True, type=int, default=(1, 16), show_default=True,
              help="batch sizes (1 = the paper's power.py)")
@click.option("--repeats", default=30, show_default=True, type=click.IntRange(1), help="timed steps per cell")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch intra-op threads")
def steps_command(backbones, recipe, batches, repeats, threads):
    """Time one training step per TBFT block on this host (the paper's power.py protocol): median ms per step,
    its saving versus full fine-tuning, fc/all, and the backward/forward time ratio of full fine-tuning."""
    import torch
    from tabulate import tabulate

    from harbench import build_backbone

    from .recipes import RECIPES
    from .steps import STEP_HEADERS, step_table, time_steps

    torch.set_num_threads(threads)
    for name in backbones:
        try:
            model = build_backbone(name, 6, 6)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--backbone") from None
        times = time_steps(model, RECIPES[recipe], tuple(batches), repeats=repeats)
        click.echo(f"\n{name} ({recipe} recipe, {threads} thread(s), median of {repeats} steps)")
        click.echo(tabulate(step_table(times), headers=STEP_HEADERS, tablefmt="github", disable_numparse=True))


@click.command("tbft-tables")
@click.argument("run", default="latest")
@click.option("--results", "folders", multiple=True, default=("results",), show_default=True,
              help="results folder or published bundle; repeat it to pool the RUN of several (a suite run in parts)")
def tables_command(run, folders):
    """Print TBFT's per-cell accuracy table and its claims table for RUN."""
    from tabulate import tabulate

    from harbench import load

    from .summary import cell_table

    rows = []
    for results in folders:
        try:
            frame = load(run, results=results)
        except Exception as exc:  # an unknown run or folder: one line, not a traceback
            raise click.ClickException(f"{results}: {exc}") from None
        rows += frame.to_dict("records")
    headers, table = cell_table(rows)
    click.echo(tabulate(table, headers=headers, tablefmt="github", disable_numparse=True))
    answer = summarize(rows)
    if answer:
        click.echo(f"\n{answer['title']}")
        click.echo(tabulate(answer["rows"], headers=answer["headers"], tablefmt="github", disable_numparse=True))
        click.echo(answer["note"])


@hookimpl
def harbench_register_commands(cli):
    cli.add_command(steps_command)
    cli.add_command(tables_command)
