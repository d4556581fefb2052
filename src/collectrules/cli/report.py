"""``collectrules report``: judge a policy's KPI targets on outcome data and compare experiment arms.

Exit status: 0 when the report was written; 1 when the policy is invalid, the outcome data cannot be read,
some outcome rows were rejected (the report is still written, from the other rows), or, with
``--fail-on-miss``, when a KPI missed its target; 2 for usage errors.
"""

from __future__ import annotations

from pathlib import Path

import click

from .common import load_program


def _period(ctx: click.Context, param: click.Parameter, value: str) -> object:
    from ..kpi.periods import parse_period

    try:
        return parse_period(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("report")
@click.argument("policy", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--outcomes", "outcomes_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of outcome tables: balances (required), accounts, payments, writeoffs, promises, "
                   "agreements, contacts, costs, sales (CSV, JSON Lines or Parquet; see docs/kpis.md).")
@click.option("--period", required=True, callback=_period, metavar="PERIOD",
              help="The report period: 2026 (year), 2026-Q3, 2026-09 (month), 2026-W37 (ISO week) or "
                   "2026-09-14 (day).")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json", "csv", "html"]), default="text",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (default: standard output).")
@click.option("--fail-on-miss", is_flag=True, help="Exit with status 1 when a KPI misses its target.")
@click.option("--ledger", "ledger_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A contact ledger (SQLite) whose sent attempts count as contacts, besides the contacts "
                   "table.")
@click.option("--plugins-dir", "plugin_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Load plugins from the .py files of this folder (repeatable).")
@click.option("-p", "--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help="Load a plugin module by import name (repeatable).")
def command(policy: Path, outcomes_dir: Path, period: object, fmt: str, output: Path | None,
            fail_on_miss: bool, ledger_path: Path | None, plugin_dirs: tuple[Path, ...],
            plugin_modules: tuple[str, ...]) -> None:
    """Report every KPI target of POLICY on outcome data: actual, target, met or missed, and trend.

    Each KPI is measured over the periods of its own kind that end in the report period (a monthly KPI
    over each month of a quarter), and a yearly KPI in a shorter report to date. Experiments listing KPIs
    under `compare` get their arms compared, with Wilson 95% intervals and two-proportion z-test p-values.
    """
    from ..engine.portfolio import field_columns
    from ..kpi.outcomes import load_outcomes
    from ..kpi.periods import Period
    from ..kpi.report import build_kpi_report, missed_count, render_kpi_report
    from .summary import write_summary

    assert isinstance(period, Period)
    program = load_program(policy, plugin_dirs, plugin_modules)
    extra = []
    if ledger_path is not None:
        from ..ledger import Ledger

        ledger = Ledger(ledger_path)
        extra = ledger.history()
        ledger.close()
    outcomes = load_outcomes(outcomes_dir, field_columns(program.policy), extra_contacts=extra)
    report = build_kpi_report(program, outcomes, period)
    text = render_kpi_report(report, fmt)
    if output is not None:
        write_summary(output, text)
    else:
        click.echo(text, nl=False)
    rejected = sum(i.rejected_rows for i in outcomes.inputs)
    if rejected:
        click.echo(f"warning: {rejected:,} outcome rows were rejected; the report uses the others", err=True)
    missed = missed_count(report)
    if fail_on_miss and missed:
        click.echo(f"{missed} KPI measurement{'s' if missed != 1 else ''} missed the target", err=True)
    raise SystemExit(1 if rejected or (fail_on_miss and missed) else 0)
