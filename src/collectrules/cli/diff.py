"""``collectrules diff OLD NEW --accounts F``: what a policy change does to a portfolio.

Both versions decide for every account at the same as-of time; the report counts the accounts whose
segment, stage, status, due actions or blocks change, shows old × new transition matrices of segments and
stages with sample account ids per transition, and which due actions and restriction blocks accounts gain
or lose. ``--format md`` renders it as Markdown for a review or merge request.

Exit status: 0 when the comparison is complete; 1 when a policy is invalid, an input cannot be read, or
rows were rejected or decisions carry evaluation errors under either version (the report is still
printed); 2 for usage errors.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from ..impact import ASPECTS, ImpactReport, Transitions, transition_table
from .common import load_program, parse_as_of

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

_ASPECT_NAMES = {"segment": "segment", "stage": "stage", "status": "status", "due": "due actions",
                 "blocked": "blocks", "any": "any of these"}


@click.command("diff")
@click.argument("old", type=_FILE)
@click.argument("new", type=_FILE)
@click.option("--accounts", required=True, type=_FILE, help="Accounts file (CSV, JSON Lines or Parquet).")
@click.option("--history", type=_FILE, help="Contact history file.")
@click.option("--holds", type=_FILE, help="Holds file.")
@click.option("--promises", type=_FILE, help="Promises-to-pay file.")
@click.option("--as-of", "as_of", metavar="TIME", help="Decision time, ISO 8601 with zone (default: now).")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "json"]), default="text", show_default=True)
@click.option("--samples", type=click.IntRange(min=0), default=5, show_default=True,
              help="Sample account ids to show per transition.")
@click.option("--plugins-dir", "plugin_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Load plugins from the .py files of this folder (repeatable).")
@click.option("-p", "--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help="Load a plugin module by import name (repeatable).")
def command(old: Path, new: Path, accounts: Path, history: Path | None, holds: Path | None,
            promises: Path | None, as_of: str | None, fmt: str, samples: int, plugin_dirs: tuple[Path, ...],
            plugin_modules: tuple[str, ...]) -> None:
    """Compare policy OLD with NEW on one portfolio: which accounts change segment, stage, actions, blocks."""
    from ..impact import portfolio_impact

    when = parse_as_of(as_of)
    old_program = load_program(old, plugin_dirs, plugin_modules)
    new_program = load_program(new, plugin_dirs, plugin_modules)
    report = portfolio_impact(old_program, new_program, accounts, history, holds, promises, as_of=when,
                              max_samples=samples)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif fmt == "md":
        click.echo(render_markdown(report), nl=False)
    else:
        click.echo(render_text(report), nl=False)
    incomplete = report.rejected_old or report.rejected_new or report.errors_old or report.errors_new
    raise SystemExit(1 if incomplete else 0)


def _share(count: int, total: int) -> str:
    return f"{count / total:.1%}" if total else "-"


def _gained_lost(gained: Counter[str], lost: Counter[str]) -> list[tuple[str, str, str]]:
    keys = sorted(set(gained) | set(lost), key=lambda k: (-(gained[k] + lost[k]), k))
    return [(k, f"+{gained[k]:,}" if gained[k] else "0", f"-{lost[k]:,}" if lost[k] else "0") for k in keys]


def _notes(report: ImpactReport) -> list[str]:
    notes = []
    if report.only_old or report.only_new:
        notes.append(f"accounts decided by one version only: {len(report.only_old):,} by the old, "
                     f"{len(report.only_new):,} by the new (rows rejected by the other version's fields)")
    if report.rejected_old or report.rejected_new:
        notes.append(f"rows rejected: {report.rejected_old:,} by the old version, {report.rejected_new:,} "
                     f"by the new (run `collectrules evaluate` on each for the details)")
    if report.errors_old or report.errors_new:
        notes.append(f"accounts with evaluation errors: {report.errors_old:,} old, {report.errors_new:,} new")
    return notes


def _samples(transitions: Transitions, old: str, new: str) -> str:
    return ", ".join(transitions.samples.get((old, new), []))


def _changed_rows(report: ImpactReport) -> list[list[str]]:
    return [[_ASPECT_NAMES[a], f"{report.changed[a]:,}", _share(report.changed[a], report.compared)]
            for a in (*ASPECTS, "any")]


# ---- text --------------------------------------------------------------------------------------------


def _text_table(header: list[str], rows: list[list[str]], *, indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(widths[i]) for i, cell in enumerate(row) if i > 0]
        out.append(indent + "  ".join(cells).rstrip())
    return out


def render_text(report: ImpactReport) -> str:
    total = report.compared
    as_of = report.as_of.isoformat().replace("+00:00", "Z")
    lines = [f"old: {report.old}", f"new: {report.new}", f"as of {as_of}: {total:,} accounts compared", ""]
    lines.append("accounts that change:")
    lines += _text_table(["", "accounts", "share"], _changed_rows(report))
    for title, transitions in (("segment", report.segments), ("stage", report.stages)):
        lines += ["", f"{title} transitions (rows: old, columns: new):"]
        header, matrix = transition_table(transitions)
        lines += _text_table(header, matrix)
        changed = transitions.changed
        if changed:
            lines.append(f"  changes ({report.max_samples} sample accounts at most):" if report.max_samples
                         else "  changes:")
            width = max(len(f"{o} -> {n}") for o, n, _ in changed)
            for old, new, count in changed:
                samples = _samples(transitions, old, new)
                example = f"  e.g. {samples}" if samples else ""
                lines.append(f"    {f'{old} -> {new}':<{width}}  {count:>6,}{example}")
        else:
            lines.append(f"  no account changes {title}")
    for title, gained, lost in (("due actions", report.due_gained, report.due_lost),
                                ("blocks by restriction", report.blocks_gained, report.blocks_lost)):
        entries = _gained_lost(gained, lost)
        lines += ["", f"{title} (accounts gaining / losing):" if entries else f"{title}: no change"]
        if entries:
            lines += _text_table(["", "gained", "lost"], [list(e) for e in entries])
    notes = _notes(report)
    if notes:
        lines += ["", *(f"note: {n}" for n in notes)]
    return "\n".join(lines) + "\n"


# ---- Markdown ----------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(header: list[str], rows: list[list[str]], *, align: str | None = None) -> list[str]:
    """A Markdown table; ``align`` has one letter per column, l or r (default: first left, others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rules = ["---" if a == "l" else "---:" for a in align]
    out = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "| " + " | ".join(rules) + " |"]
    out += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(report: ImpactReport) -> str:
    total = report.compared
    as_of = report.as_of.isoformat().replace("+00:00", "Z")
    old, new = report.old, report.new
    lines = [f"## Policy change: {old.name} {old.version} → {new.name} {new.version}", "",
             f"`{old.file}` → `{new.file}`, as of {as_of}, **{total:,} accounts** compared.", ""]
    lines += _md_table(["Accounts that change", "Accounts", "Share"], _changed_rows(report))
    for title, transitions in (("Segment", report.segments), ("Stage", report.stages)):
        lines += ["", f"### {title} transitions", "", "Rows: old version, columns: new version.", ""]
        header, matrix = transition_table(transitions)
        lines += _md_table(header, matrix)
        changed = transitions.changed
        if changed:
            lines.append("")
            lines += _md_table(["Old", "New", "Accounts", "Sample accounts"],
                               [[old, new, f"{count:,}", _samples(transitions, old, new)]
                                for old, new, count in changed], align="llrl")
    for title, gained, lost in (("Due actions", report.due_gained, report.due_lost),
                                ("Blocks by restriction", report.blocks_gained, report.blocks_lost)):
        entries = _gained_lost(gained, lost)
        lines += ["", f"### {title}", ""]
        if entries:
            lines += _md_table(["", "Accounts gaining", "Accounts losing"], [list(e) for e in entries])
        else:
            lines.append("No change.")
    notes = _notes(report)
    if notes:
        lines += ["", *(f"> {n}" for n in notes)]
    return "\n".join(lines) + "\n"
