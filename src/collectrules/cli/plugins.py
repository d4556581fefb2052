"""``collectrules plugins``: list the loaded plugins, what each registered, and what failed to load.

Exit status: 0 when every plugin loaded and no two plugins register the same name; 1 otherwise (the list
is still printed, with the problems at the end).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..plugins import PluginInfo, PluginManager


def plugin_commands(pm: PluginManager, taken: Mapping[str, Any] | None = None,
                    ) -> tuple[list[tuple[str, click.Command]], list[str]]:
    """The commands each plugin adds through ``collectrules_register_commands``, as (plugin, command).

    Each plugin is handed its own :class:`click.Group` to add to, so every command is known by the plugin
    that added it. A command whose name is in ``taken`` (the built-in commands) or was added by an earlier
    plugin is left out, and so is every command of a plugin whose hook raises; both are returned as
    problems naming the plugin.
    """
    owners: dict[str, str] = {name: "a built-in command" for name in taken or {}}
    found: list[tuple[str, click.Command]] = []
    problems: list[str] = []
    for impl in pm.hook.collectrules_register_commands.get_hookimpls():
        collector = click.Group(impl.plugin_name)
        try:
            impl.function(**({"cli": collector} if "cli" in impl.argnames else {}))
        except Exception as exc:  # noqa: BLE001 - one plugin's broken command must not hide the others
            problems.append(f"plugin {impl.plugin_name!r} failed to add its commands: "
                            f"{type(exc).__name__}: {exc}")
            continue
        for name, command in collector.commands.items():
            if name in owners:
                problems.append(f"plugin {impl.plugin_name!r} adds command {name!r}, which is already "
                                f"{owners[name]}; skipped")
                continue
            owners[name] = f"added by plugin {impl.plugin_name!r}"
            found.append((impl.plugin_name, command))
    return found, problems


def _registry_problems(pm: PluginManager) -> list[str]:
    """Name clashes and wrongly typed registrations, as building the registry for a run would find them."""
    from ..errors import PluginError
    from ..registry import registry_from

    try:
        registry_from(pm)
    except PluginError as exc:
        return [d.message + (f" (hint: {d.hint})" if d.hint else "") for d in exc.diagnostics]
    except Exception:  # noqa: BLE001 - a hook that raises is already among describe_plugins' problems
        return []
    return []


def plugins_report(pm: PluginManager, builtin_commands: Mapping[str, Any]) -> dict[str, Any]:
    """What ``collectrules plugins --format json`` prints: plugins, disabled names and problems."""
    from ..plugins import blocked_plugins, describe_plugins

    commands, command_problems = plugin_commands(pm, taken=builtin_commands)
    by_plugin: dict[str, list[str]] = {}
    for plugin_name, command in commands:
        by_plugin.setdefault(plugin_name, []).append(str(command.name))
    plugins = []
    hook_problems: list[str] = []
    for info in describe_plugins(pm):
        registered = dict(info.registered)
        if info.name in by_plugin:
            registered["commands"] = by_plugin[info.name]
        plugins.append(_plugin_json(info, registered))
        hook_problems += info.problems
    return {"plugins": plugins, "disabled": blocked_plugins(pm),
            "problems": [*pm.load_problems, *hook_problems, *_registry_problems(pm), *command_problems]}


def _plugin_json(info: PluginInfo, registered: dict[str, list[str]]) -> dict[str, Any]:
    return {"name": info.name, "version": info.version, "origin": info.origin, "hooks": list(info.hooks),
            "registered": registered}


def render_plugins_text(report: Mapping[str, Any]) -> str:
    """One block per plugin (name and version, where from, hooks, what it registered), then problems."""
    lines: list[str] = []
    for plugin in report["plugins"]:
        lines.append(f"{plugin['name']} {plugin['version']}")
        rows = [("from", plugin["origin"]), ("hooks", ", ".join(plugin["hooks"]) or "none")]
        rows += [(kind, ", ".join(names) or "none") for kind, names in plugin["registered"].items()]
        width = max(len(label) for label, _ in rows) + 2
        for label, value in rows:
            wrapped = textwrap.wrap(value, width=100 - width - 2, break_on_hyphens=False) or [""]
            lines.append(f"  {label + ':':<{width}}{wrapped[0]}")
            lines += [f"  {'':<{width}}{more}" for more in wrapped[1:]]
    if report["disabled"]:
        lines.append(f"disabled: {', '.join(report['disabled'])}")
    if report["problems"]:
        lines.append("problems:")
        lines += [f"  {problem}" for problem in report["problems"]]
    count = len(report["plugins"])
    lines.append(f"{count} plugin{'s' if count != 1 else ''} loaded, {len(report['problems'])} "
                 f"problem{'s' if len(report['problems']) != 1 else ''}")
    return "\n".join(lines) + "\n"


@click.command("plugins")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--plugins-dir", "plugin_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Also load plugins from the .py files of this folder (repeatable).")
@click.option("-p", "--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help="Also load a plugin module by import name (repeatable).")
def command(fmt: str, plugin_dirs: tuple[Path, ...], plugin_modules: tuple[str, ...]) -> None:
    """List plugins with version, origin, hooks and what they registered, and any load problems."""
    from ..plugins import get_plugin_manager
    from . import builtin_commands

    pm = get_plugin_manager(plugin_dirs=plugin_dirs, modules=plugin_modules)
    report = plugins_report(pm, builtin_commands())
    text = json.dumps(report, indent=2) + "\n" if fmt == "json" else render_plugins_text(report)
    click.echo(text, nl=False)
    raise SystemExit(1 if report["problems"] else 0)
