"""The ``collectrules`` command line: a click group; each command lives in its own module.

Only this layer turns errors into exit codes. A :class:`~collectrules.errors.CollectRulesError` prints its
located diagnostics without a traceback; anything else is a bug and keeps its traceback.
Heavy libraries (Polars, PyArrow, jsonschema) are imported inside the commands that need them, and a
command's module is imported only when that command runs, so ``collectrules --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__

#: the modules of the built-in commands, under ``collectrules.cli``; each defines ``command``, named like
#: the module
BUILTIN_COMMAND_MODULES: tuple[str, ...] = ("validate", "schema", "evaluate", "explain", "plugins", "test",
                                            "diff", "lint", "fmt", "report")

#: the one-line help ``collectrules --help`` shows for each built-in command, so that listing the commands
#: does not import them (some pull in the whole policy compiler); a test keeps it equal to their own help
BUILTIN_SHORT_HELP: dict[str, str] = {
    "validate": "Validate policy files (files, folders or globs) against the schema, types and references.",
    "schema": "Print the policy v1 JSON Schema (save it and point the yaml-language-server modeline at it).",
    "evaluate": "Evaluate POLICY for every account: segment, stage, actions due and blocked (with reasons).",
    "explain": "Explain the decision for one or more accounts, step by step, with policy lines.",
    "plugins": "List plugins with version, origin, hooks and what they registered, and any load problems.",
    "test": "Run the policy test suites in PATHs (files or folders; default: the current folder).",
    "diff": ("Compare policy OLD with NEW on one portfolio: which accounts"
             " change segment, stage, actions, blocks."),
    "lint": "Find overlaps, gaps, shadowed rules, unreachable stages and unused names in policy files.",
    "fmt": "Format policy files in a canonical layout that keeps comments (--check: only report).",
    "report": "Report every KPI target of POLICY on outcome data: actual, target, met or missed, and trend.",
}


def _builtin_command(name: str) -> click.Command:
    command: click.Command = importlib.import_module(f"{__name__}.{name}").command
    return command


def builtin_commands() -> dict[str, click.Command]:
    """The built-in commands by name (imports every command module)."""
    return {name: _builtin_command(name) for name in BUILTIN_COMMAND_MODULES}


class _Group(click.Group):
    """The root group: maps library errors to exit codes, and loads commands only when they are needed.

    A built-in command's module is imported when that command runs. Plugins are discovered only when a
    command name is not a built-in one, or when the command list is shown (``--help``), never when a
    built-in command runs. Plugin commands come from entry-point plugins; ``--plugins-dir`` and ``-p``
    are per-command options and so cannot add commands.
    """

    _plugin_commands_added = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in BUILTIN_COMMAND_MODULES:
            command = _builtin_command(cmd_name)
            self.add_command(command)
        if command is None and not self._plugin_commands_added:
            self.add_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.add_plugin_commands()
        return sorted({*self.commands, *BUILTIN_COMMAND_MODULES})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with built-in commands described from :data:`BUILTIN_SHORT_HELP` unimported."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name not in self.commands and name in BUILTIN_SHORT_HELP:
                # a stand-in command shortens the text exactly as the real one would
                stand_in = click.Command(name, help=BUILTIN_SHORT_HELP[name])
                rows.append((name, stand_in.get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def add_plugin_commands(self) -> None:
        """Attach the commands plugins add with ``collectrules_register_commands`` (once)."""
        if self._plugin_commands_added:
            return
        self._plugin_commands_added = True
        from ..plugins import get_plugin_manager
        from .plugins import plugin_commands

        # a clash with a built-in command is reported by `collectrules plugins`, not on every run
        commands, _ = plugin_commands(get_plugin_manager(), taken=dict.fromkeys(BUILTIN_COMMAND_MODULES))
        for _, command in commands:
            self.add_command(command)

    def invoke(self, ctx: click.Context) -> object:
        from ..errors import CollectRulesError

        try:
            return super().invoke(ctx)
        except CollectRulesError as exc:
            click.echo(str(exc), err=True)
            # bad input is exit status 1; usage problems are click's own 2
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="collectrules")
def cli() -> None:
    """Executable debt-collection policy: validate, evaluate and explain collection policies."""


def _attach() -> None:
    """Attach every built-in command now, rather than when first used (for tests and embedding)."""
    for command in builtin_commands().values():
        cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="collectrules", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
