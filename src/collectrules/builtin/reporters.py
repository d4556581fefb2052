"""Built-in reporters: the summary of an evaluation run as text, JSON, CSV, Markdown or one HTML page.

Every reporter renders the same *report*, a JSON-ready dict built by
:func:`collectrules.cli.summary.build_report`:

``accounts``, ``accounts_with_errors``
    counts over the run.
``by_segment``, ``by_stage``, ``by_status``, ``due_by_channel``, ``blocked_by_channel``,
``blocked_by_restriction``, ``error_codes``
    name → count.
``as_of``
    the decision time, ISO 8601; ``output`` where decisions were written (``None`` for standard output).
``inputs``
    one entry per input file: ``file``, ``rows``, ``rejected``, ``problems`` (each a
    ``file:row: column …: message`` line) and ``omitted_problems`` (problems not kept in memory).

Counts are listed largest first, ties by name, in every format. The HTML page is self-contained (inline
CSS, inline SVG charts, no scripts, nothing fetched), and each chart has a title, a description and the
same numbers as a table.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..registry import Reporter
from . import hookimpl

#: how many rejected-row problems the text, Markdown and HTML summaries show; ``--rejects`` writes them all
SHOWN_PROBLEMS = 50

#: the count tables of a report: key, text title, whether shares of all accounts are shown
COUNT_SECTIONS: tuple[tuple[str, str, bool], ...] = (
    ("by_segment", "segments", True),
    ("by_stage", "stages", True),
    ("by_status", "status", True),
    ("due_by_channel", "actions due by channel", False),
    ("blocked_by_channel", "actions blocked by channel", False),
    ("blocked_by_restriction", "blocks by restriction", False),
)


def ranked(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Largest count first, ties in name order: the order every reporter lists counts in."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _as_of_text(report: Mapping[str, Any]) -> str:
    return str(report["as_of"]).replace("+00:00", "Z")


def _error_codes_text(report: Mapping[str, Any]) -> str:
    return ", ".join(f"{code} ×{count}" for code, count in report["error_codes"].items())


def _shown_problems(report: Mapping[str, Any], shown: int) -> list[tuple[dict[str, Any], list[str], int]]:
    """Per input: the problems to show (``shown`` in all, in file order) and how many are left unshown."""
    remaining = shown
    out = []
    for item in report["inputs"]:
        problems = list(item["problems"])
        visible = problems[:remaining]
        hidden = max(0, len(problems) - remaining) + int(item.get("omitted_problems", 0))
        remaining = max(0, remaining - len(problems))
        out.append((item, visible, hidden))
    return out


# --------------------------------------------------------------------------------------------------
# text
# --------------------------------------------------------------------------------------------------


def _text_table(title: str, counts: Mapping[str, int], total: int | None = None) -> list[str]:
    if not counts:
        return [f"{title}: none"]
    width = max(len(k) for k in counts)
    lines = [f"{title}:"]
    for key, value in ranked(counts):
        share = f"  {value / total:6.1%}" if total else ""
        lines.append(f"  {key:<{width}}  {value:>8,}{share}")
    return lines


def render_text(report: Mapping[str, Any]) -> str:
    """The closing summary ``collectrules evaluate`` prints by default: aligned tables, then the inputs."""
    output = report.get("output")
    lines = [f"as of {_as_of_text(report)}: {report['accounts']:,} accounts decided"
             + (f", written to {output}" if output else "")]
    for key, title, with_share in COUNT_SECTIONS:
        lines += _text_table(title, report[key], report["accounts"] if with_share else None)
    if report["accounts_with_errors"]:
        lines.append(f"accounts with evaluation errors: {report['accounts_with_errors']:,} "
                     f"({_error_codes_text(report)})")
    lines.append("inputs:")
    for item, visible, hidden in _shown_problems(report, SHOWN_PROBLEMS):
        lines.append(f"  {item['file']}: {item['rows']:,} rows, {item['rejected']:,} rejected")
        for problem in visible:
            lines.append(f"    {problem}")
        if hidden:
            lines.append(f"    … and {hidden:,} more problems (write them all with --rejects FILE)")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# json and csv
# --------------------------------------------------------------------------------------------------


def render_json(report: Mapping[str, Any]) -> str:
    """The report itself, indented: the format for programs."""
    return json.dumps(report, indent=2) + "\n"


def render_csv(report: Mapping[str, Any]) -> str:
    """One ``section,name,value`` row per number, for spreadsheets.

    Sections are the report's keys (``by_segment``, ``due_by_channel`` …, ``error_codes``), plus
    ``as_of``, ``output``, ``accounts``, ``accounts_with_errors``, and ``input_rows``/``input_rejected``
    named by file.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["section", "name", "value"])
    writer.writerow(["as_of", "", report["as_of"]])
    writer.writerow(["output", "", report.get("output") or ""])
    writer.writerow(["accounts", "", report["accounts"]])
    writer.writerow(["accounts_with_errors", "", report["accounts_with_errors"]])
    for key in [k for k, _, _ in COUNT_SECTIONS] + ["error_codes"]:
        for name, count in ranked(report[key]):
            writer.writerow([key, name, count])
    for item in report["inputs"]:
        writer.writerow(["input_rows", item["file"], item["rows"]])
        writer.writerow(["input_rejected", item["file"], item["rejected"]])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def _md_cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_code(text: object) -> str:
    value = str(text)
    return _md_cell(value) if "`" in value else f"`{_md_cell(value)}`"


def _md_table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if i in right else "---" for i in range(len(header))) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _md_counts(heading: str, what: str, counts: Mapping[str, int], total: int | None) -> list[str]:
    lines = [f"## {heading}", ""]
    if not counts:
        return lines + ["None.", ""]
    header = [what, "Count"] + (["Share"] if total else [])
    rows = [[_md_code(name), f"{count:,}"] + ([f"{count / total:.1%}"] if total else [])
            for name, count in ranked(counts)]
    return lines + _md_table(header, rows, {1, 2}) + [""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """GitHub-flavoured Markdown: a heading and a table per count, for pull requests and wikis."""
    total = report["accounts"] or None
    output = report.get("output")
    lines = ["# Evaluation summary", "",
             f"As of {_as_of_text(report)}: **{report['accounts']:,}** accounts decided"
             + (f", written to {_md_code(output)}." if output else "."), ""]
    lines += _md_counts("Segments", "Segment", report["by_segment"], total)
    lines += _md_counts("Stages", "Ladder/stage", report["by_stage"], total)
    lines += _md_counts("Status", "Status", report["by_status"], total)
    lines += ["## Actions by channel", ""]
    channels = _channel_rows(report)
    if channels:
        lines += _md_table(["Channel", "Due", "Blocked"],
                           [[_md_code(c), f"{d:,}", f"{b:,}"] for c, d, b in channels], {1, 2}) + [""]
    else:
        lines += ["None.", ""]
    lines += _md_counts("Blocks by restriction", "Restriction", report["blocked_by_restriction"], None)
    if report["accounts_with_errors"]:
        lines += [f"**Accounts with evaluation errors: {report['accounts_with_errors']:,}**", ""]
        codes = [[_md_code(c), f"{n:,}"] for c, n in ranked(report["error_codes"])]
        lines += _md_table(["Code", "Count"], codes, {1}) + [""]
    lines += ["## Inputs", ""]
    inputs = [[_md_code(i["file"]), f"{i['rows']:,}", f"{i['rejected']:,}"] for i in report["inputs"]]
    lines += _md_table(["File", "Rows", "Rejected"], inputs, {1, 2}) + [""]
    problem_lines = []
    for item, visible, hidden in _shown_problems(report, SHOWN_PROBLEMS):
        problem_lines += visible
        if hidden:
            problem_lines.append(f"{item['file']}: … and {hidden:,} more problems "
                                 "(write them all with --rejects FILE)")
    if problem_lines:
        # a code block shows problem text as it is: cell values may hold *, _, < or backticks
        longest = max((len(run) for line in problem_lines for run in re.findall("`+", line)), default=0)
        fence = "`" * max(3, longest + 1)
        lines += ["### Rejected rows", "", f"{fence}text", *problem_lines, fence, ""]
    return "\n".join(lines)


def _channel_rows(report: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """Channels with actions due or blocked, busiest first (due + blocked), ties by name."""
    due, blocked = report["due_by_channel"], report["blocked_by_channel"]
    names = set(due) | set(blocked)
    rows = [(n, due.get(n, 0), blocked.get(n, 0)) for n in names]
    return sorted(rows, key=lambda r: (-(r[1] + r[2]), r[0]))


# --------------------------------------------------------------------------------------------------
# HTML with inline SVG charts
# --------------------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light dark; --fg: #1a202c; --bg: #ffffff; --muted: #4a5568; --rule: #cbd5e0;
        --due: #2b6cb0; --blocked: #c05621; --bar: #2b6cb0; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e2e8f0; --bg: #1a202c; --muted: #a0aec0; --rule: #4a5568;
          --due: #63b3ed; --blocked: #f6ad55; --bar: #63b3ed; }
}
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--rule); }
.lead { color: var(--muted); margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; padding: 0; list-style: none; }
.cards li { border: 1px solid var(--rule); border-radius: .4rem; padding: .5rem .9rem; min-width: 8rem; }
.cards strong { display: block; font-size: 1.3rem; }
figure { margin: 0; }
svg { max-width: 100%; height: auto; font-size: 12px; }
svg text { fill: var(--fg); }
.bar { fill: var(--bar); } .due { fill: var(--due); } .blocked { fill: var(--blocked); }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .2rem .8rem; border-bottom: 1px solid var(--rule); text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
details { margin: .25rem 0 1rem; } summary { cursor: pointer; color: var(--muted); }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .92em; }
.problems { font-family: ui-monospace, Menlo, monospace; font-size: .85rem; }
"""

_LABEL_WIDTH = 190
_BAR_WIDTH = 360
_VALUE_WIDTH = 120
_ROW_HEIGHT = 22
_MAX_LABEL = 28


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def _svg_open(chart_id: str, title: str, desc: str, width: int, height: int) -> str:
    """An ``<svg>`` announced as one image, named by its title and described by its numbers."""
    return (f'<svg role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
            f'<title id="{chart_id}-title">{_e(title)}</title><desc id="{chart_id}-desc">{_e(desc)}</desc>')


def _bar_chart(chart_id: str, title: str, rows: list[tuple[str, int]], total: int | None) -> str:
    """Horizontal bars, one per row, with the value (and share) at the end of each bar."""
    top = max(v for _, v in rows) or 1
    height = _ROW_HEIGHT * len(rows) + 8
    width = _LABEL_WIDTH + _BAR_WIDTH + _VALUE_WIDTH
    desc = "; ".join(f"{name}: {value:,}" for name, value in rows)
    parts = [_svg_open(chart_id, title, desc, width, height)]
    for index, (name, value) in enumerate(rows):
        y = 4 + index * _ROW_HEIGHT
        length = round(_BAR_WIDTH * value / top, 1)
        share = f" ({value / total:.1%})" if total else ""
        parts.append(f'<g><title>{_e(name)}: {value:,}{share}</title>'
                     f'<text x="{_LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">{_e(_label(name))}</text>'
                     f'<rect class="bar" x="{_LABEL_WIDTH}" y="{y + 3}" width="{length}" '
                     f'height="{_ROW_HEIGHT - 6}"/>'
                     f'<text x="{_LABEL_WIDTH + length + 6}" y="{y + 15}">{value:,}{_e(share)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _grouped_chart(chart_id: str, title: str, rows: list[tuple[str, int, int]]) -> str:
    """Two bars per channel (due above blocked) with a legend; each bar carries its number."""
    top = max(max(d, b) for _, d, b in rows) or 1
    group = 2 * (_ROW_HEIGHT - 6) + 10
    legend = 24
    height = legend + group * len(rows) + 4
    width = _LABEL_WIDTH + _BAR_WIDTH + _VALUE_WIDTH
    desc = "; ".join(f"{name}: {due:,} due, {blocked:,} blocked" for name, due, blocked in rows)
    parts = [_svg_open(chart_id, title, desc, width, height),
             f'<rect class="due" x="{_LABEL_WIDTH}" y="4" width="12" height="12"/>'
             f'<text x="{_LABEL_WIDTH + 18}" y="15">due</text>'
             f'<rect class="blocked" x="{_LABEL_WIDTH + 70}" y="4" width="12" height="12"/>'
             f'<text x="{_LABEL_WIDTH + 88}" y="15">blocked</text>']
    bar = _ROW_HEIGHT - 6
    for index, (name, due, blocked) in enumerate(rows):
        y = legend + index * group
        parts.append(f'<g><title>{_e(name)}: {due:,} due, {blocked:,} blocked</title>'
                     f'<text x="{_LABEL_WIDTH - 8}" y="{y + bar + 4}" text-anchor="end">'
                     f'{_e(_label(name))}</text>')
        for offset, (css, value) in enumerate((("due", due), ("blocked", blocked))):
            length = round(_BAR_WIDTH * value / top, 1)
            top_y = y + offset * (bar + 2)
            parts.append(f'<rect class="{css}" x="{_LABEL_WIDTH}" y="{top_y}" width="{length}" '
                         f'height="{bar}"/>'
                         f'<text x="{_LABEL_WIDTH + length + 6}" y="{top_y + bar - 4}">{value:,}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _html_table(caption: str, header: list[str], rows: list[list[object]], numeric: set[int]) -> str:
    num = ' class="num"'
    head = "".join(f'<th scope="col"{num if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(header))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = f"{value:,}" if isinstance(value, int) else _e(value)
            if i == 0:
                cells.append(f'<th scope="row"><code>{text}</code></th>')
            else:
                cells.append(f'<td{num if i in numeric else ""}>{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _html_counts(chart_id: str, heading: str, what: str, counts: Mapping[str, int], total: int | None) -> str:
    parts = [f'<section aria-labelledby="{chart_id}-h"><h2 id="{chart_id}-h">{_e(heading)}</h2>']
    if not counts:
        parts.append("<p>None.</p></section>")
        return "".join(parts)
    rows = ranked(counts)
    table_rows: list[list[object]] = [[n, c] + ([f"{c / total:.1%}"] if total else []) for n, c in rows]
    header = [what, "Count"] + (["Share"] if total else [])
    parts.append(f"<figure>{_bar_chart(chart_id, heading, rows, total)}</figure>")
    parts.append(f"<details><summary>{_e(heading)} as a table</summary>"
                 f"{_html_table(heading, header, table_rows, {1, 2})}</details></section>")
    return "".join(parts)


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page: key numbers, bar charts (inline SVG) each with a table, inputs."""
    total = report["accounts"] or None
    as_of = _as_of_text(report)
    output = report.get("output")
    statuses = "".join(f"<li><strong>{count:,}</strong> {_e(status)}</li>" for status, count in
                       ranked(report["by_status"]))
    body = ["<h1>Evaluation summary</h1>",
            f'<p class="lead">As of <time datetime="{_e(report["as_of"])}">{_e(as_of)}</time>'
            + (f"; decisions written to <code>{_e(output)}</code>" if output else "") + "</p>",
            f'<ul class="cards" aria-label="Key numbers"><li><strong>{report["accounts"]:,}</strong> '
            f'accounts decided</li><li><strong>{report["accounts_with_errors"]:,}</strong> with evaluation '
            f"errors</li>"
            f"{statuses}</ul>",
            _html_counts("segments", "Accounts per segment", "Segment", report["by_segment"], total),
            _html_counts("stages", "Accounts per stage", "Ladder/stage", report["by_stage"], total)]
    channels = _channel_rows(report)
    body.append('<section aria-labelledby="channels-h"><h2 id="channels-h">Actions due and blocked per '
                "channel</h2>")
    if channels:
        body.append(f"<figure>{_grouped_chart('channels', 'Actions due and blocked per channel', channels)}"
                    "</figure><details><summary>Actions per channel as a table</summary>"
                    + _html_table("Actions due and blocked per channel", ["Channel", "Due", "Blocked"],
                                  [[c, d, b] for c, d, b in channels], {1, 2})
                    + "</details>")
    else:
        body.append("<p>None.</p>")
    body.append("</section>")
    body.append(_html_counts("restrictions", "Blocks by restriction", "Restriction",
                             report["blocked_by_restriction"], None))
    if report["accounts_with_errors"]:
        body.append('<section aria-labelledby="errors-h"><h2 id="errors-h">Evaluation errors</h2>'
                    + _html_table("Error codes", ["Code", "Count"],
                                  [[c, n] for c, n in ranked(report["error_codes"])], {1})
                    + "</section>")
    body.append('<section aria-labelledby="inputs-h"><h2 id="inputs-h">Inputs</h2>'
                + _html_table("Input files", ["File", "Rows", "Rejected"],
                              [[i["file"], i["rows"], i["rejected"]] for i in report["inputs"]], {1, 2}))
    problems = []
    for item, visible, hidden in _shown_problems(report, SHOWN_PROBLEMS):
        problems += [f"<li>{_e(p)}</li>" for p in visible]
        if hidden:
            problems.append(f"<li>{_e(item['file'])}: … and {hidden:,} more problems (write them all with "
                            "<code>--rejects FILE</code>)</li>")
    if problems:
        body.append(f'<h3>Rejected rows</h3><ul class="problems">{"".join(problems)}</ul>')
    body.append("</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>collectrules evaluation summary, as of {_e(as_of)}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


#: name → (description, render, media type) of the built-in reporters
BUILTIN_REPORTERS: dict[str, tuple[str, Callable[[Mapping[str, Any]], str], str]] = {
    "text": ("Aligned plain-text tables (the default summary).", render_text, "text/plain"),
    "json": ("The summary as indented JSON, for programs.", render_json, "application/json"),
    "csv": ("One section,name,value row per number, for spreadsheets.", render_csv, "text/csv"),
    "md": ("GitHub-flavoured Markdown tables, for pull requests and wikis.", render_markdown,
           "text/markdown"),
    "html": ("One self-contained HTML page with inline SVG bar charts and tables.", render_html, "text/html"),
}


@hookimpl
def collectrules_register_reporters(register: Callable[[Reporter], None]) -> None:
    for name, (description, render, media_type) in BUILTIN_REPORTERS.items():
        register(Reporter(name, description, render, media_type=media_type))
