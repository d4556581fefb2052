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
@click.option("--plugins-dir", "plugin_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Also load plugins from the .py files of this folder (repeatable).")
@click.option("-p", "--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help="Also load a plugin module by import name (repeatable).")
def command(paths: tuple[str, ...], fmt: str, strict: bool, quiet: bool, plugin_dirs: tuple[Path, ...],
            plugin_modules: tuple[str, ...]) -> None:
    """Validate policy files (files, folders or globs) against the schema, types and references.

    Plugins are discovered as for evaluate (installed ones, a plugins/ folder beside each policy, the
    options), so a policy using a plugin's channel, scorer or transport validates as it will run.
    """
    from ..plugins import get_plugin_manager
    from ..policy.check import check_policy_file
    from ..registry import Registry, registry_from

    files = expand_policy_paths(paths)
    if not files:
        raise click.UsageError("no policy files found in the given paths")
    registries: dict[Path, Registry] = {}

    def registry_for(policy: Path) -> Registry:
        folder = policy.parent / "plugins"
        key = folder if folder.is_dir() else Path()
        if key not in registries:
            dirs = [folder, *plugin_dirs] if folder.is_dir() else list(plugin_dirs)
            registries[key] = registry_from(get_plugin_manager(plugin_dirs=dirs, modules=plugin_modules))
            for problem in registries[key].problems:
                click.echo(f"warning: {problem}", err=True)
        return registries[key]

    results = [check_policy_file(f, registry_for(f)) for f in files]
    if strict:
        from ..analysis.lint import add_lint_findings

        results = [add_lint_findings(r) for r in results]
    failed = [r for r in results if not r.ok or (strict and r.diagnostics)]
    click.echo(render_diagnostics(results, fmt, quiet=quiet), nl=False)
    raise SystemExit(1 if failed else 0)
