"""``collectrules validate PATH…``: check policy files; exit 0 when all are valid, 1 otherwise."""

from __future__ import annotations

import glob
from pathlib import Path

import click

from .output import DIAGNOSTIC_FORMATS, render_diagnostics

POLICY_SUFFIXES = (".yaml", ".yml")


def expand_policy_paths(patterns: tuple[str, ...]) -> list[Path]:
    """Files as given; folders searched recursively for policies; glob patterns expanded.

    Inside folders, policy test suites (``*.test.yaml``) are skipped: they are not policies.
    """
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if candidate.suffix in POLICY_SUFFIXES and candidate.is_file() \
                        and not candidate.name.endswith((".test.yaml", ".test.yml")):
                    found.append(candidate)
        elif path.exists():
            found.append(path)
        else:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise click.BadParameter(f"no such file, folder or match: {pattern}", param_hint="PATH")
            found.extend(Path(m) for m in matches if Path(m).is_file())
    return list(dict.fromkeys(found))


@click.command("validate")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(DIAGNOSTIC_FORMATS), default="text", show_default=True,
              help="text for people; json, github (workflow annotations) or sarif for CI systems.")
@click.option("--strict", is_flag=True, help="Run the lint checks too, and treat warnings as errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
def command(paths: tuple[str, ...], fmt: str, strict: bool, quiet: bool) -> None:
    """Validate policy files (files, folders or globs) against the schema, types and references."""
    from ..policy.check import check_policy_file
    from ..registry import Registry

    files = expand_policy_paths(paths)
    if not files:
        raise click.UsageError("no policy files found in the given paths")
    registry = Registry.builtin_only()
    results = [check_policy_file(f, registry) for f in files]
    if strict:
        from ..analysis.lint import add_lint_findings

        results = [add_lint_findings(r) for r in results]
    failed = [r for r in results if not r.ok or (strict and r.diagnostics)]
    click.echo(render_diagnostics(results, fmt, quiet=quiet), nl=False)
    raise SystemExit(1 if failed else 0)
