"""``collectrules evaluate``: decide for every account of a portfolio and print a summary.

Exit status: 0 when every row was read and every decision made without error; 1 when the policy is
invalid, an input file cannot be read, or some rows were rejected or some decisions carry errors (the
other decisions are still written); 2 for usage errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .common import input_options, load_program, parse_as_of

#: how many rejected-row problems the summary shows; all are written with --rejects
SHOWN_PROBLEMS = 50


@click.command("evaluate")
@input_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write decisions here (default: standard output as JSON Lines).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]),
              help="Decision format (default: from the output's extension, else jsonl).")
@click.option("--trace", is_flag=True, help="Include every rule and restriction evaluated in each decision.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every rejected row's problems to this CSV file.")
@click.option("--summary-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(policy: Path, accounts: Path, history: Path | None, holds: Path | None, promises: Path | None,
            as_of: str | None, plugin_dirs: tuple[Path, ...], plugin_modules: tuple[str, ...],
            output: Path | None, fmt: str | None, trace: bool, rejects: Path | None, summary_format: str) -> None:
    """Evaluate POLICY for every account: segment, stage, actions due and blocked (with reasons)."""
    from ..engine.portfolio import evaluate_portfolio, load_portfolio
    from ..io.decisions import DecisionWriter
    from .summary import render_summary, write_rejects

    when = parse_as_of(as_of)
    program = load_program(policy, plugin_dirs, plugin_modules)
    portfolio = load_portfolio(program, accounts, history, holds, promises)
    if fmt is None:
        fmt = output.suffix.lstrip(".") if output is not None and output.suffix in (".csv", ".parquet") else "jsonl"
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs an output file (-o)")
    writer = DecisionWriter(fmt, output, None if output else sys.stdout)
    decisions = evaluate_portfolio(program, portfolio, when, trace=trace)
    summary = _run(decisions, writer, len(portfolio.accounts))
    writer.close()
    if rejects is not None:
        write_rejects(rejects, portfolio.inputs)
    report = render_summary(summary, portfolio, when, output, summary_format, shown=SHOWN_PROBLEMS)
    click.echo(report, err=output is None, nl=False)
    failed = portfolio.rejected_rows > 0 or summary.accounts_with_errors > 0
    raise SystemExit(1 if failed else 0)


def _run(decisions: Any, writer: Any, total: int) -> Any:
    from ..engine.portfolio import Summary

    summary = Summary()
    if sys.stderr.isatty() and total > 200:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True) as progress:
            task = progress.add_task("evaluate", total=total)
            for decision in decisions:
                summary.add(decision)
                writer.write(decision)
                progress.advance(task)
        return summary
    for decision in decisions:
        summary.add(decision)
        writer.write(decision)
    return summary
