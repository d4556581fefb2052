"""``collectrules evaluate``: decide for every account of a portfolio and print a summary.

With ``--dispatch`` the due actions are then dispatched through each channel's transport: a dry run that
shows what would be sent, or with ``--send`` a real one recorded in the ``--ledger`` contact ledger, whose
sent attempts count as contact history on every run that names it.

Exit status: 0 when every row was read and every decision made without error; 1 when the policy is
invalid, an input file cannot be read, or some rows were rejected or some decisions carry errors (the
other decisions are still written), or, when dispatching, a message failed, stayed in doubt or could not be
rendered; 2 for usage errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .common import input_options, parse_as_of


@click.command("evaluate")
@input_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write decisions here (default: standard output as JSON Lines).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]),
              help="Decision format (default: from the output's extension, else jsonl).")
@click.option("--trace", is_flag=True, help="Include every rule and restriction evaluated in each decision.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every rejected row's problems to this CSV file.")
@click.option("--summary-format", default="text", show_default=True, metavar="REPORTER",
              help="Summary format: a registered reporter (built in: text, json, csv, md, html; "
                   "'collectrules plugins' lists them all).")
@click.option("--summary-output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the summary to this file instead of the terminal.")
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Contact ledger (SQLite; created if missing): its sent attempts count as contact history, "
                   "besides --history, and --dispatch --send records into it.")
@click.option("--dispatch", "do_dispatch", is_flag=True,
              help="After evaluating, dispatch the due actions through each channel's transport "
                   "(a dry run unless --send).")
@click.option("--send", is_flag=True,
              help="With --dispatch: really send, recording every attempt in --ledger.")
@click.option("--retry-in-doubt", is_flag=True,
              help="With --dispatch: send again attempts an earlier run planned but never confirmed.")
@click.option("--engine", type=click.Choice(["rows", "frame"]),
              help="Evaluation backend; both give the same decisions. Default: frame (Polars, the whole "
                   "portfolio at once) when Polars is installed and the policy and data suit it, else rows. "
                   "--trace, --ledger and --dispatch use rows.")
def command(policy: Path, accounts: Path, history: Path | None, holds: Path | None, promises: Path | None,
            as_of: str | None, plugin_dirs: tuple[Path, ...], plugin_modules: tuple[str, ...],
            output: Path | None, fmt: str | None, trace: bool, rejects: Path | None, summary_format: str,
            summary_output: Path | None, ledger_path: Path | None, do_dispatch: bool, send: bool,
            retry_in_doubt: bool, engine: str | None) -> None:
    """Evaluate POLICY for every account: segment, stage, actions due and blocked (with reasons)."""
    from ..engine.portfolio import evaluate_portfolio, load_portfolio
    from ..io.decisions import DecisionWriter
    from .summary import check_reporter, render_summary, write_rejects, write_summary

    when = parse_as_of(as_of)
    _check_dispatch_options(do_dispatch, send, retry_in_doubt, ledger_path)
    # the plugin manager is kept: the lifecycle and dispatch hooks are called on it
    program, pm = _load_program_and_plugins(policy, plugin_dirs, plugin_modules)
    check_reporter(summary_format, program.registry.reporters)
    frame_run = _frame_run(engine, program, accounts, history, holds, promises, when,
                           rows_only=trace or do_dispatch or ledger_path is not None)
    portfolio = frame_run[0] if frame_run else load_portfolio(program, accounts, history, holds, promises)
    ledger = _open_ledger(ledger_path)
    if ledger is not None:
        portfolio.history.extend(ledger.history())
    if fmt is None:
        fmt = output.suffix.lstrip(".") if output is not None and output.suffix in (".csv", ".parquet") else "jsonl"
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs an output file (-o)")
    writer = DecisionWriter(fmt, output, None if output else sys.stdout)
    pm.hook.collectrules_before_evaluate(policy=program.policy, as_of=when)
    decisions = frame_run[1]() if frame_run else evaluate_portfolio(program, portfolio, when, trace=trace)
    if pm.hook.collectrules_after_decision.get_hookimpls():
        decisions = _after_each(decisions, pm.hook.collectrules_after_decision)
    due: list[Any] | None = [] if do_dispatch else None
    summary = _run(decisions, writer, len(portfolio.accounts), due)
    writer.close()
    if rejects is not None:
        write_rejects(rejects, portfolio.inputs)
    report = render_summary(summary, portfolio, when, output, summary_format, program.registry.reporters)
    if summary_output is not None:
        write_summary(summary_output, report)
    else:
        click.echo(report, err=output is None, nl=False)
    failed = portfolio.rejected_rows > 0 or summary.accounts_with_errors > 0
    if due is not None:
        dispatched = _dispatch(due, program, pm, portfolio, ledger, send=send, retry_in_doubt=retry_in_doubt,
                               explicit_as_of=as_of not in (None, "now"), when=when)
        failed = failed or not dispatched.ok
    if ledger is not None:
        ledger.close()
    raise SystemExit(1 if failed else 0)


def _after_each(decisions: Any, hook: Any) -> Any:
    """Hand every decision to the plugins' after-decision hooks, in input order, before it is written."""
    for decision in decisions:
        hook(decision=decision)
        yield decision


def _frame_run(engine: str | None, program: Any, accounts: Path, history: Path | None, holds: Path | None,
               promises: Path | None, when: Any, *, rows_only: bool) -> tuple[Any, Any] | None:
    """The frame backend's portfolio and a function that decides (run after the before-evaluate hook), or
    None when the rows backend is to evaluate."""
    if engine == "rows":
        return None
    if rows_only:
        if engine == "frame":
            click.echo("note: --trace, --ledger and --dispatch use the rows engine", err=True)
        return None
    try:
        # Polars is imported here, never when the CLI starts
        from ..backends.frame import FrameUnsupported
        from ..engine.frame_io import load_frames
        from ..engine.frame_program import FrameProgram
    except ImportError:
        if engine == "frame":
            raise click.UsageError("--engine frame needs Polars: pip install 'collectrules[frame]'") from None
        return None

    def refuse(exc: Exception) -> None:
        if engine == "frame":
            raise click.ClickException(f"the frame engine cannot give the rows engine's decisions here: "
                                       f"{exc} (use --engine rows)") from None

    try:
        frame_program = FrameProgram(program)
        portfolio = load_frames(program, accounts, history, holds, promises)
    except FrameUnsupported as exc:
        refuse(exc)
        return None

    def decide() -> Any:
        try:
            frame = frame_program.evaluate_frame(portfolio.accounts, portfolio.history, portfolio.holds,
                                                 portfolio.promises, when)
        except FrameUnsupported as exc:
            refuse(exc)
            from ..engine.portfolio import evaluate_portfolio, load_portfolio

            rows = load_portfolio(program, accounts, history, holds, promises)
            return evaluate_portfolio(program, rows, when)
        return frame_program.to_decisions(frame)

    return portfolio, decide


def _check_dispatch_options(do_dispatch: bool, send: bool, retry_in_doubt: bool,
                            ledger_path: Path | None) -> None:
    if (send or retry_in_doubt) and not do_dispatch:
        raise click.UsageError("--send and --retry-in-doubt go with --dispatch")
    if send and ledger_path is None:
        raise click.UsageError("--send needs --ledger: the ledger is what keeps a second run from sending "
                               "the same messages again")


def _load_program_and_plugins(policy: Path, plugin_dirs: tuple[Path, ...], plugin_modules: tuple[str, ...]
                              ) -> tuple[Any, Any]:
    """Load the policy with every plugin discovered, keeping the plugin manager for the lifecycle hooks."""
    from ..engine.program import Program
    from ..errors import PolicySchemaError
    from ..plugins import get_plugin_manager
    from ..policy.check import check_policy_file
    from ..registry import registry_from

    pm = get_plugin_manager(plugin_dirs=[policy.parent / "plugins", *plugin_dirs], modules=plugin_modules)
    registry = registry_from(pm)
    for problem in registry.problems:
        click.echo(f"warning: {problem}", err=True)
    result = check_policy_file(policy, registry)
    if not result.ok:
        raise PolicySchemaError(diagnostics=result.errors or result.diagnostics)
    assert result.policy is not None
    return Program(result.policy, registry), pm


def _open_ledger(path: Path | None) -> Any:
    if path is None:
        return None
    from ..ledger import Ledger

    path.parent.mkdir(parents=True, exist_ok=True)
    return Ledger(path)


def _dispatch(due: list[Any], program: Any, pm: Any, portfolio: Any, ledger: Any, *, send: bool,
              retry_in_doubt: bool, explicit_as_of: bool, when: Any) -> Any:
    """Dispatch the due actions and print the dispatch summary (always to standard error)."""
    from collections import defaultdict

    from ..dispatch import dispatch
    from ..engine.portfolio import HistoryIndex

    index = HistoryIndex(portfolio.history)
    holds: dict[str, list[Any]] = defaultdict(list)
    for hold in portfolio.holds:
        holds[hold.account_id].append(hold)
    promises: dict[str, list[Any]] = defaultdict(list)
    for promise in portfolio.promises:
        promises[promise.account_id].append(promise)

    def context(account: Any) -> tuple[Any, Any, Any]:
        key = account.account_id
        return index.for_account(account), holds.get(key, ()), promises.get(key, ())

    # with an explicit --as-of the run happens at that instant of the policy's timeline; so do its contacts
    clock = (lambda: when) if explicit_as_of else None
    report = dispatch(due, program, ledger, program.registry, send=send,
                      accounts_by_id={a.account_id: a for a in portfolio.accounts}, pm=pm,
                      retry_in_doubt=retry_in_doubt, context=context, contact_clock=clock)
    click.echo(report.render_text(), err=True, nl=False)
    return report


def _run(decisions: Any, writer: Any, total: int, due: list[Any] | None = None) -> Any:
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
                if due is not None and decision.due:
                    due.append(decision)
                progress.advance(task)
        return summary
    for decision in decisions:
        summary.add(decision)
        writer.write(decision)
        if due is not None and decision.due:
            due.append(decision)
    return summary
