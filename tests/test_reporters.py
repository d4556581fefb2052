"""The built-in summary reporters (text, json, csv, md, html) and ``evaluate --summary-format/-output``.

Golden files are in ``tests/golden/reporters``. ``summary.txt`` was produced by the text summary as it was
before reporters existed; the text reporter must keep producing it byte for byte.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re
import shutil
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from collectrules.builtin.reporters import BUILTIN_REPORTERS, render_text
from collectrules.cli import cli
from collectrules.cli.summary import build_report, render_summary
from collectrules.engine.portfolio import InputReport, Summary
from collectrules.io.tables import RowProblem
from collectrules.registry import Registry

GOLDEN = Path(__file__).parent / "golden" / "reporters"
EXAMPLES = Path(__file__).parent.parent / "policies"
AS_OF = _dt.datetime(2026, 11, 23, 15, 0, tzinfo=_dt.UTC)
HOSTILE = "<b>&co|pipe</b>"


def sample_run() -> tuple[Summary, Any, Path]:
    """A run with ties, an awkward restriction name, evaluation errors and more problems than are shown."""
    summary = Summary(
        accounts=1234,
        by_segment=Counter({"early": 700, "late": 400, "(none)": 134}),
        by_stage=Counter({"standard/reminder": 500, "standard/call": 500, "legal/claim": 100}),
        by_status=Counter({"active": 1100, "paused": 100, "cured": 34}),
        due_by_channel=Counter({"sms": 600, "phone": 450, "letter": 20}),
        blocked_by_channel=Counter({"phone": 300, "sms": 120, "email": 5}),
        blocked_by_restriction=Counter({"quiet-hours": 250, "seven-in-seven": 150, HOSTILE: 25}),
        accounts_with_errors=3,
        error_codes=Counter({"CR501": 2, "CR502": 1}),
    )
    accounts = InputReport("data/accounts.csv", 1300, 66,
                           [RowProblem("data/accounts.csv", n, "dpd", f"expected a whole number, got 'x{n}'")
                            for n in range(2, 62)], omitted_problems=6)
    history = InputReport("data/history.csv", 5000, 2,
                          [RowProblem("data/history.csv", 9, None, "row has 3 cells, the header 9"),
                           RowProblem("data/history.csv", 12, "at", "expected a datetime, got 'noon'")])
    return summary, SimpleNamespace(inputs=[accounts, history]), Path("build/decisions.jsonl")


def empty_report() -> dict[str, Any]:
    portfolio = SimpleNamespace(inputs=[InputReport("accounts.csv", 0, 0, [])])
    return build_report(Summary(), portfolio, AS_OF, None)


@pytest.mark.parametrize(("fmt", "golden"), [("text", "summary.txt"), ("json", "summary.json"),
                                             ("csv", "summary.csv"), ("md", "summary.md"),
                                             ("html", "summary.html")])
def test_reporters_match_their_golden_files(fmt: str, golden: str) -> None:
    summary, portfolio, output = sample_run()
    with (GOLDEN / golden).open(encoding="utf-8", newline="") as handle:
        assert render_summary(summary, portfolio, AS_OF, output, fmt) == handle.read()


def test_the_registry_offers_exactly_the_builtin_reporters() -> None:
    reporters = Registry.builtin_only().reporters
    assert sorted(reporters) == sorted(BUILTIN_REPORTERS)
    assert {name: r.media_type for name, r in reporters.items()} == {
        "text": "text/plain", "json": "application/json", "csv": "text/csv", "md": "text/markdown",
        "html": "text/html"}
    assert {r.origin for r in reporters.values()} == {"reporters"}


def test_json_is_the_report_itself() -> None:
    summary, portfolio, output = sample_run()
    report = build_report(summary, portfolio, AS_OF, output)
    assert json.loads(render_summary(summary, portfolio, AS_OF, output, "json")) == report
    assert [(i["file"], len(i["problems"]), i["omitted_problems"]) for i in report["inputs"]] == [
        ("data/accounts.csv", 60, 6), ("data/history.csv", 2, 0)]


def test_csv_rows_add_up() -> None:
    summary, portfolio, output = sample_run()
    rows = list(csv.reader(io.StringIO(render_summary(summary, portfolio, AS_OF, output, "csv"))))
    assert rows[0] == ["section", "name", "value"]
    assert sum(int(v) for section, _, v in rows if section == "by_segment") == 1234
    assert ["blocked_by_restriction", HOSTILE, "25"] in rows


def test_text_shows_at_most_fifty_problems_and_counts_the_rest() -> None:
    summary, portfolio, output = sample_run()
    text = render_summary(summary, portfolio, AS_OF, output, "text")
    assert sum(1 for line in text.splitlines() if line.startswith("    data/")) == 50
    assert "    … and 16 more problems (write them all with --rejects FILE)" in text  # 10 unshown + 6 omitted


class _TagChecker(HTMLParser):
    """Checks that every opened element is closed in order, and collects ids and attributes."""

    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: set[str] = set()
        self.svgs: list[dict[str, str | None]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        if tag == "svg":
            self.svgs.append(attributes)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def test_html_is_one_self_contained_accessible_page() -> None:
    summary, portfolio, output = sample_run()
    page = render_summary(summary, portfolio, AS_OF, output, "html")
    for outside in ("http:", "https:", "//", "<script", "<link", "@import", "url(", "<img", "<iframe",
                    "src="):
        assert outside not in page, outside
    checker = _TagChecker()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []
    # four charts: segments, stages, due vs blocked per channel, blocks by restriction
    assert len(checker.svgs) == 4
    for svg in checker.svgs:
        assert svg["role"] == "img"
        labels = str(svg["aria-labelledby"]).split()
        assert len(labels) == 2 and set(labels) <= checker.ids
    # each chart has its numbers as a table too
    assert page.count("<table>") == 4 + 2  # the charts' tables, then error codes and input files
    assert page.count('<th scope="row"><code>standard/call</code></th><td class="num">500</td>') == 1
    assert re.search(r'<html lang="en">', page)


def test_names_are_escaped_in_html_and_markdown() -> None:
    summary, portfolio, output = sample_run()
    page = render_summary(summary, portfolio, AS_OF, output, "html")
    assert HOSTILE not in page
    assert "&lt;b&gt;&amp;co|pipe&lt;/b&gt;" in page
    markdown = render_summary(summary, portfolio, AS_OF, output, "md")
    assert "| `<b>&co\\|pipe</b>` | 25 |" in markdown
    for line in markdown.splitlines():
        if line.startswith("| "):
            assert len(re.findall(r"(?<!\\)\|", line)) in (3, 4), line


@pytest.mark.parametrize("fmt", sorted(BUILTIN_REPORTERS))
def test_an_empty_run_renders_in_every_format(fmt: str) -> None:
    text = Registry.builtin_only().reporters[fmt].render(empty_report())
    assert text.endswith("\n")
    if fmt == "text":
        assert text == ("as of 2026-11-23T15:00:00Z: 0 accounts decided\nsegments: none\nstages: none\n"
                        "status: none\nactions due by channel: none\nactions blocked by channel: none\n"
                        "blocks by restriction: none\ninputs:\n  accounts.csv: 0 rows, 0 rejected\n")
    if fmt == "html":
        assert "<svg" not in text and text.count("<p>None.</p>") == 4


def test_render_text_is_what_render_summary_uses() -> None:
    summary, portfolio, output = sample_run()
    report = build_report(summary, portfolio, AS_OF, output)
    assert render_text(report) == render_summary(summary, portfolio, AS_OF, output, "text")


# --------------------------------------------------------------------------------------------------
# evaluate --summary-format / --summary-output
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def small_portfolio(tmp_path: Path) -> list[str]:
    """The example consumer-lending policy with its first 20 accounts, copied beside each other."""
    policy = tmp_path / "consumer-lending.yaml"
    shutil.copy(EXAMPLES / "consumer-lending.yaml", policy)
    lines = (EXAMPLES / "data" / "accounts.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("".join(lines[:21]), encoding="utf-8")
    return [str(policy), "--accounts", str(accounts), "--as-of", "2026-11-23T15:00:00Z",
            "-o", str(tmp_path / "decisions.jsonl")]


def test_summary_output_writes_the_chosen_format_to_a_file(small_portfolio: list[str],
                                                           tmp_path: Path) -> None:
    target = tmp_path / "reports" / "summary.md"
    result = CliRunner().invoke(cli, ["evaluate", *small_portfolio, "--summary-format", "md",
                                      "--summary-output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    written = target.read_text(encoding="utf-8")
    assert written.startswith("# Evaluation summary\n\nAs of 2026-11-23T15:00:00Z: **20** accounts decided")


def test_an_unknown_summary_format_is_a_usage_error(small_portfolio: list[str]) -> None:
    result = CliRunner().invoke(cli, ["evaluate", *small_portfolio, "--summary-format", "htm"])
    assert result.exit_code == 2
    assert ("Invalid value for --summary-format: no reporter named 'htm'; did you mean 'html'? "
            "available: csv, html, json, md, text") in result.output


def test_a_plugin_reporter_is_a_summary_format(small_portfolio: list[str], tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"  # beside the policy: loaded without any option
    plugins.mkdir()
    (plugins / "oneline.py").write_text(
        "from collectrules import hookimpl\nfrom collectrules.registry import Reporter\n\n\n"
        "@hookimpl\ndef collectrules_register_reporters(register):\n"
        "    register(Reporter('oneline', 'One line.', lambda r: f\"{r['accounts']} accounts\\n\"))\n",
        encoding="utf-8")
    result = CliRunner().invoke(cli, ["evaluate", *small_portfolio, "--summary-format", "oneline"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "20 accounts\n"  # decisions go to -o, so the summary to standard output
