"""The ``collectrules`` command line: a click group; each command lives in its own module.

Only this layer turns errors into exit codes. A :class:`~collectrules.errors.CollectRulesError` prints its
located diagnostics without a traceback; anything else is a bug and keeps its traceback.
Heavy libraries (Polars, PyArrow, jsonschema) are imported inside the commands that need them.
"""

from __future__ import annotations

import sys

import click

from .. import __version__


class _Group(click.Group):
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
    from . import evaluate, explain, schema, validate

    for module in (validate, schema, evaluate, explain):
        cli.add_command(module.command)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    _attach()
    try:
        cli.main(args=argv, prog_name="collectrules", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
