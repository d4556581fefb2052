"""``collectrules schema``: print the policy JSON Schema, for editors and other tools."""

from __future__ import annotations

import click


@click.command("schema")
def command() -> None:
    """Print the policy v1 JSON Schema (save it and point the yaml-language-server modeline at it)."""
    from ..policy.schema import policy_schema_text

    click.echo(policy_schema_text(), nl=False)
