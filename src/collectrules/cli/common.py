"""Options and helpers shared by the commands that evaluate policies."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

F = Callable[..., Any]


def parse_as_of(text: str | None) -> _dt.datetime:
    """``--as-of``: ISO 8601 with a zone (``2026-11-23T15:00:00Z``); a date alone means its UTC midnight."""
    if text is None or text == "now":
        return _dt.datetime.now(_dt.UTC)
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time such as 2026-11-23T15:00:00Z",
                                 param_hint="--as-of") from None
    if value.tzinfo is None:
        if "T" in text or " " in text:
            raise click.BadParameter(f"{text!r} has no time zone; add Z or an offset such as +01:00",
                                     param_hint="--as-of")
        value = value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC)


def input_options(func: F) -> F:
    existing = click.Path(exists=True, dir_okay=False, path_type=Path)
    for decorator in reversed([
        click.argument("policy", type=existing),
        click.option("--accounts", required=True, type=existing, help="Accounts file (CSV, JSON Lines or Parquet)."),
        click.option("--history", type=existing, help="Contact history file."),
        click.option("--holds", type=existing, help="Holds file (dispute, bankruptcy, cease …)."),
        click.option("--promises", type=existing, help="Promises-to-pay file."),
        click.option("--as-of", "as_of", metavar="TIME", help="Decision time, ISO 8601 with zone (default: now)."),
        click.option("--plugins-dir", "plugin_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Load plugins from the .py files of this folder (repeatable)."),
        click.option("-p", "--plugin", "plugin_modules", multiple=True, metavar="MODULE",
                     help="Load a plugin module by import name (repeatable)."),
    ]):
        func = decorator(func)
    return func


def load_program(policy: Path, plugin_dirs: tuple[Path, ...] = (), plugin_modules: tuple[str, ...] = ()) -> Any:
    """Discover plugins (default ones, entry points, ``plugins/`` beside the policy, options), load, compile."""
    from ..engine.program import Program
    from ..errors import PolicySchemaError
    from ..plugins import get_plugin_manager
    from ..policy.check import check_policy_file
    from ..registry import registry_from

    dirs = [policy.parent / "plugins", *plugin_dirs]
    registry = registry_from(get_plugin_manager(plugin_dirs=dirs, modules=plugin_modules))
    for problem in registry.problems:
        click.echo(f"warning: {problem}", err=True)
    result = check_policy_file(policy, registry)
    if not result.ok:
        raise PolicySchemaError(diagnostics=result.errors or result.diagnostics)
    assert result.policy is not None
    return Program(result.policy, registry)
