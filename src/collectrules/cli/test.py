"""``collectrules test [PATH…]``: run policy test suites (``*.test.yaml``), optionally with coverage.

Exit status: 0 when every suite is valid and every case passes (and coverage meets ``--min-coverage``);
1 when a case fails, a suite or its policy is invalid, no test is found (unless ``--allow-empty``) or
coverage is below the minimum; 2 for usage errors such as a path that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..registry import Registry


@click.command("test")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text",
              show_default=True, help="text for people; json for tools; junit (JUnit XML) for CI systems.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this file; a one-line summary still goes to standard output.")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="Report which segment rules, stages, actions and restrictions the tests exercised.")
@click.option("--min-coverage", type=click.FloatRange(0, 100), metavar="PERCENT",
              help="Fail when a policy's coverage is below PERCENT (implies --coverage).")
@click.option("--allow-empty", is_flag=True, help="Exit 0 when no test is found.")
@click.option("-v", "--verbose", is_flag=True, help="List every test case, not only the failures.")
@click.option("--plugins-dir", "plugin_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Load plugins from the .py files of this folder (repeatable).")
@click.option("-p", "--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help="Load a plugin module by import name (repeatable).")
def command(paths: tuple[str, ...], fmt: str, output: Path | None, show_coverage: bool,
            min_coverage: float | None, allow_empty: bool, verbose: bool, plugin_dirs: tuple[Path, ...],
            plugin_modules: tuple[str, ...]) -> None:
    """Run the policy test suites in PATHs (files or folders; default: the current folder)."""
    from ..testing import report as rendering
    from ..testing.coverage import coverage_of
    from ..testing.runner import run_suite
    from ..testing.suite import ProgramCache, find_suites, load_suite

    try:
        files = find_suites(paths or (".",))
    except (FileNotFoundError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="PATH") from None
    programs = ProgramCache(_registry_loader(plugin_dirs, plugin_modules))
    results = [run_suite(load_suite(file, programs)) for file in files]
    coverage = coverage_of(results) if show_coverage or min_coverage is not None else None

    if fmt == "json":
        report = rendering.render_json(results, coverage)
    elif fmt == "junit":
        report = rendering.render_junit(results)
    else:
        report = rendering.render_text(results, coverage, verbose=verbose)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        click.echo(rendering.summary_line(rendering.totals(results)))
    else:
        click.echo(report, nl=False)
    if coverage is not None and fmt == "junit":
        # JUnit has no place for coverage; people still want to see it
        click.echo(rendering.render_coverage_text(coverage), err=True, nl=False)

    t = rendering.totals(results)
    failed = not t.ok
    if t.tests == 0 and t.invalid_suites == 0 and not allow_empty:
        where = ", ".join(paths or (".",))
        click.echo(f"error: no policy tests found in {where} (test suites are *.test.yaml files; "
                   f"use --allow-empty to accept none)", err=True)
        failed = True
    if min_coverage is not None and coverage is not None:
        for policy in coverage:
            if policy.percent() < min_coverage:
                click.echo(f"error: coverage of {policy.policy_file} is {policy.percent():.1f}%, below the "
                           f"minimum of {min_coverage:g}%", err=True)
                failed = True
    raise SystemExit(1 if failed else 0)


def _registry_loader(plugin_dirs: tuple[Path, ...],
                     plugin_modules: tuple[str, ...]) -> Callable[[Path], Registry]:
    """Plugins for a policy as ``evaluate`` finds them: ``plugins/`` beside the policy, then the options."""
    from ..plugins import get_plugin_manager
    from ..registry import registry_from

    loaded: dict[tuple[Path, ...], Registry] = {}

    def registry_for(policy: Path) -> Registry:
        dirs = (policy.parent / "plugins", *plugin_dirs)
        if dirs not in loaded:
            registry = registry_from(get_plugin_manager(plugin_dirs=dirs, modules=plugin_modules))
            for problem in registry.problems:
                click.echo(f"warning: {problem}", err=True)
            loaded[dirs] = registry
        return loaded[dirs]

    return registry_for
