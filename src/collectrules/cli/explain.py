"""``collectrules explain``: one account's decision as a trace a policy owner can read.

Every line names the rule, stage or restriction that produced it and points at ``policy.yaml:line``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import input_options, load_program, parse_as_of


@click.command("explain")
@input_options
@click.option("--account", "account_ids", required=True, multiple=True, metavar="ID",
              help="Account id to explain (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(policy: Path, accounts: Path, history: Path | None, holds: Path | None, promises: Path | None,
            as_of: str | None, plugin_dirs: tuple[Path, ...], plugin_modules: tuple[str, ...],
            account_ids: tuple[str, ...], fmt: str) -> None:
    """Explain the decision for one or more accounts, step by step, with policy lines."""
    import json

    from ..engine.portfolio import HistoryIndex, load_portfolio

    when = parse_as_of(as_of)
    program = load_program(policy, plugin_dirs, plugin_modules)
    portfolio = load_portfolio(program, accounts, history, holds, promises)
    by_id = {a.account_id: a for a in portfolio.accounts}
    missing = [i for i in account_ids if i not in by_id]
    if missing:
        rejected = {p.row for i in portfolio.inputs[:1] for p in i.problems}
        hint = f" ({len(rejected)} account rows were rejected; see 'evaluate' for their problems)" if rejected else ""
        raise click.UsageError(f"account {missing[0]!r} is not in {accounts}{hint}")
    index = HistoryIndex(portfolio.history)
    outputs = []
    for account_id in account_ids:
        account = by_id[account_id]
        decision = program.evaluate(account, index.for_account(account), when, holds=portfolio.holds,
                                    promises=portfolio.promises, trace=True)
        outputs.append(decision.to_dict() if fmt == "json" else render_explanation(decision, account))
    if fmt == "json":
        click.echo(json.dumps(outputs if len(outputs) > 1 else outputs[0], indent=2))
    else:
        click.echo("\n\n".join(outputs))


def _at(entry_policy: Any) -> str:
    return f"  [{entry_policy}]" if entry_policy else ""


def render_explanation(decision: Any, account: Any) -> str:
    data = decision.to_dict()
    zones = ", ".join(account.timezones) or "unknown time zone"
    lines = [f"Account {data['account_id']} as of {data['as_of']} ({zones})"]
    steps = {"derive": "Derived values", "score": "Scores", "segment": "Segment rules", "cure": "Cure",
             "stage": "Stage conditions", "ladder": "Ladder", "cadence": "Actions of the stage",
             "restriction": "Contact restrictions", "experiment": "Experiments"}
    current = None
    for entry in data.get("trace", []):
        if entry["step"] != current:
            current = entry["step"]
            lines.append(f"{steps.get(current, current)}:")
        detail = f"  — {entry['detail']}" if entry["detail"] else ""
        lines.append(f"  {entry['id']}: {entry['result']}{detail}{_at(entry['policy'])}")
    lines.append("Decision:")
    lines.append(f"  segment {data['segment'] or '(none)'}{_at(data['segment_policy'])}")
    if data["ladder"]:
        stage = data["stage"] or "(none)"
        day = f", day {data['day_in_stage']}" if data["day_in_stage"] else ""
        lines.append(f"  ladder {data['ladder']}, stage {stage}{day} ({data['status']}){_at(data['stage_policy'])}")
    else:
        lines.append(f"  no ladder ({data['status']})")
    for action in data["due"]:
        template = f" with template {action['template']}" if action["template"] else ""
        lines.append(f"  DUE     {action['channel']}{template} ({action['cadence']}){_at(action['policy'])}")
    for blocked in data["blocked"]:
        template = f" with template {blocked['template']}" if blocked["template"] else ""
        nxt = blocked["next_allowed"] or "not foreseeable"
        lines.append(f"  BLOCKED {blocked['channel']}{template}; allowed again: {nxt}{_at(blocked['policy'])}")
        for reason in blocked["blocked_by"]:
            source = f" — {reason['source']}" if reason["source"] else ""
            lines.append(f"          by {reason['restriction']}: {reason['reason']}{source}{_at(reason['policy'])}")
    for key in ("warnings", "errors"):
        for finding in data[key]:
            lines.append(f"  {key[:-1].upper()} {finding['code']}: {finding['message']}{_at(finding['policy'])}")
    if data["scores"]:
        lines.append("  scores: " + ", ".join(f"{k}={v}" for k, v in data["scores"].items()))
    return "\n".join(lines)
