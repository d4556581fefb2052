"""``collectrules lint PATH…``: validate policies, then look for flaws a valid policy can still have.

The checks (overlapping, shadowed and missing segment rules with an example account, conditions never or
always true, stages never entered, restrictions that never apply, unused fields and derived names) are
described in :mod:`collectrules.analysis.lint`. Findings are warnings; invalid policies are reported with
their errors, as by ``validate``, and not analyzed.

Exit status: 0 when nothing at or above ``--fail-on`` was found, 1 otherwise, 2 for usage errors.
``--fail-on warning`` (the default) fails on any finding or error; ``--fail-on error`` fails only on
invalid policies, so lint can run in CI before its findings are cleaned up. Notes never fail.
"""

from __future__ import annotations

import click

from .output import DIAGNOSTIC_FORMATS, render_diagnostics
from .validate import expand_policy_paths

_SEVERITY_RANK = {"note": 0, "warning": 1, "error": 2}


@click.command("lint")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(DIAGNOSTIC_FORMATS), default="text", show_default=True,
              help="text for people; json, github (workflow annotations) or sarif for CI systems.")
@click.option("--fail-on", type=click.Choice(["warning", "error"]), default="warning", show_default=True,
              help="Lowest severity that makes the exit status 1 (error: only invalid policies fail).")
@click.option("--explain-unknown", is_flag=True,
              help="Add a note for each check that could not be decided, naming what stopped it.")
@click.option("-q", "--quiet", is_flag=True, help="Print only findings.")
def command(paths: tuple[str, ...], fmt: str, fail_on: str, explain_unknown: bool, quiet: bool) -> None:
    """Find overlaps, gaps, shadowed rules, unreachable stages and unused names in policy files."""
    from ..analysis.lint import lint_file
    from ..registry import Registry

    files = expand_policy_paths(paths)
    if not files:
        raise click.UsageError("no policy files found in the given paths")
    registry = Registry.builtin_only()
    results = [lint_file(f, registry, explain_unknown=explain_unknown) for f in files]
    threshold = _SEVERITY_RANK[fail_on]
    failed = any(_SEVERITY_RANK[d.severity] >= threshold for r in results for d in r.diagnostics) \
        or any(not r.ok for r in results)
    click.echo(render_diagnostics(results, fmt, quiet=quiet, mode="lint"), nl=False)
    raise SystemExit(1 if failed else 0)
