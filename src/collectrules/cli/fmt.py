"""``collectrules fmt [--check] [--diff] PATH…``: lay policy files out canonically, keeping comments.

Without options the files are rewritten in place and each one changed is named. ``--check`` writes
nothing and names the files that would change; ``--diff`` writes nothing and prints a unified diff of each
change. The layout is described in :mod:`collectrules.policy.fmt`.

Exit status: 0 when every file was formatted (or, with ``--check``, already was); 1 when ``--check``
finds a file that would change, or a file cannot be read or formatted (its located error is printed and
the file is left as it is); 2 for usage errors.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from .validate import expand_policy_paths


@click.command("fmt")
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 listing the files that would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of each change.")
@click.option("-q", "--quiet", is_flag=True, help="Print only files that change and errors.")
def command(paths: tuple[str, ...], check: bool, show_diff: bool, quiet: bool) -> None:
    """Format policy files in a canonical layout that keeps comments (--check: only report)."""
    from ..errors import CollectRulesError
    from ..policy.fmt import format_policy_file

    files = expand_policy_paths(paths)
    if not files:
        raise click.UsageError("no policy files found in the given paths")
    write = not check and not show_diff
    changed: list[str] = []
    failed = 0
    for path in files:
        try:
            result = format_policy_file(path)
        except CollectRulesError as exc:
            failed += 1
            for diagnostic in exc.diagnostics:
                click.echo(diagnostic.render(), err=True)
            continue
        if not result.changed:
            continue
        changed.append(result.file)
        if show_diff:
            click.echo("".join(difflib.unified_diff(
                result.original.splitlines(keepends=True), result.formatted.splitlines(keepends=True),
                fromfile=f"{result.file} (original)", tofile=f"{result.file} (formatted)")), nl=False)
        if write:
            Path(path).write_text(result.formatted, encoding="utf-8", newline="\n")
            click.echo(f"reformatted {result.file}")
        elif check:
            click.echo(f"would reformat {result.file}")
    if not quiet or failed:
        verb = "reformatted" if write else "would be reformatted"
        unchanged = len(files) - len(changed) - failed
        summary = f"{len(changed)} file{'s' if len(changed) != 1 else ''} {verb}, {unchanged} unchanged"
        click.echo(summary + (f", {failed} could not be formatted" if failed else ""), err=show_diff)
    raise SystemExit(1 if failed or (check and changed) else 0)
