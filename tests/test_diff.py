"""``collectrules diff`` and :mod:`collectrules.impact`: two versions of the consumer policy decided on the
example portfolio, checked against deciding every account with each version by hand."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collectrules import cli as cli_module
from collectrules.engine.decision import Decision
from collectrules.engine.portfolio import HistoryIndex, load_portfolio
from collectrules.engine.program import Program, compile_policy
from collectrules.impact import ImpactReport, portfolio_impact
from collectrules.policy.check import load_policy

REPO = Path(__file__).resolve().parents[1]
OLD = REPO / "policies" / "consumer-lending.yaml"
NEW = REPO / "tests" / "data" / "consumer-lending-v2.yaml"
DATA = REPO / "policies" / "data"
ACCOUNTS, HISTORY, HOLDS, PROMISES = (DATA / f"{n}.csv" for n in ("accounts", "history", "holds", "promises"))
AS_OF = dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC)
SAMPLES = 3


@pytest.fixture(scope="module", autouse=True)
def _commands_attached() -> None:
    cli_module._attach()


@pytest.fixture(scope="module")
def old() -> Program:
    return compile_policy(load_policy(OLD))


@pytest.fixture(scope="module")
def new() -> Program:
    return compile_policy(load_policy(NEW))


@pytest.fixture(scope="module")
def report(old: Program, new: Program) -> ImpactReport:
    return portfolio_impact(old, new, ACCOUNTS, HISTORY, HOLDS, PROMISES, as_of=AS_OF, max_samples=SAMPLES)


def decide_by_hand(program: Program) -> dict[str, Decision]:
    """Every account of the example portfolio decided one by one with Program.evaluate."""
    portfolio = load_portfolio(program, ACCOUNTS, HISTORY, HOLDS, PROMISES)
    index = HistoryIndex(portfolio.history)
    return {a.account_id: program.evaluate(a, index.for_account(a), AS_OF, holds=portfolio.holds,
                                           promises=portfolio.promises) for a in portfolio.accounts}


@pytest.fixture(scope="module")
def by_hand(old: Program, new: Program) -> tuple[dict[str, Decision], dict[str, Decision]]:
    return decide_by_hand(old), decide_by_hand(new)


def stage_label(decision: Decision) -> str:
    return f"{decision.ladder}/{decision.stage}" if decision.stage else "(none)"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


@pytest.fixture(scope="module")
def small_accounts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 400 accounts of the example portfolio, to keep the command-line tests quick."""
    path = tmp_path_factory.mktemp("diff") / "accounts.csv"
    with ACCOUNTS.open(encoding="utf-8", newline="") as source:
        lines = source.read().splitlines(keepends=True)
    path.write_text("".join(lines[:401]), encoding="utf-8")
    return path


# ---- the comparison against deciding by hand ---------------------------------------------------------------


def test_transition_matrices_match_deciding_each_account_by_hand(
        report: ImpactReport, by_hand: tuple[dict[str, Decision], dict[str, Decision]]) -> None:
    before, after = by_hand
    assert before.keys() == after.keys()
    segments = Counter((before[i].segment or "(none)", after[i].segment or "(none)") for i in before)
    stages = Counter((stage_label(before[i]), stage_label(after[i])) for i in before)
    assert report.compared == len(before) == 2600
    assert report.segments.counts == segments
    assert report.stages.counts == stages
    assert report.only_old == report.only_new == []


def test_changed_counts_match_deciding_by_hand(
        report: ImpactReport, by_hand: tuple[dict[str, Decision], dict[str, Decision]]) -> None:
    before, after = by_hand

    def due(d: Decision) -> set[str]:
        return {f"{a.channel}:{a.template}" if a.template else a.channel for a in d.due}

    assert report.changed["segment"] == sum(before[i].segment != after[i].segment for i in before)
    assert report.changed["stage"] == sum(stage_label(before[i]) != stage_label(after[i]) for i in before)
    assert report.changed["due"] == sum(due(before[i]) != due(after[i]) for i in before)
    gained = Counter(action for i in before for action in due(after[i]) - due(before[i]))
    assert report.due_gained == gained


def test_the_changes_are_the_ones_the_new_version_makes(
        report: ImpactReport, new: Program) -> None:
    accounts = {a.account_id: a for a in load_portfolio(new, ACCOUNTS).accounts}
    # early_low now reaches up to USD 3,000: only accounts between the two thresholds change segment
    segment_changes = {(o, n) for o, n, _ in report.segments.changed}
    assert segment_changes == {("early_high", "early_low")}
    for account_id in report.segments.samples[("early_high", "early_low")]:
        assert Decimal("2500") <= accounts[account_id].values["balance"] < Decimal("3000")
    # calls now start at 7 days past due instead of 10
    assert {(o, n) for o, n, _ in report.stages.changed} == {("early/reminder", "early/call")}
    for account_id in report.stages.samples[("early/reminder", "early/call")]:
        assert 7 <= accounts[account_id].values["dpd"] <= 9
    assert report.due_gained["phone"] > 0 and report.due_lost["sms:reminder_sms"] > 0


def test_samples_are_accounts_of_their_transition(
        report: ImpactReport, by_hand: tuple[dict[str, Decision], dict[str, Decision]]) -> None:
    before, after = by_hand
    for (old_segment, new_segment), ids in report.segments.samples.items():
        assert 0 < len(ids) <= SAMPLES
        for account_id in ids:
            assert (before[account_id].segment, after[account_id].segment) == (old_segment, new_segment)
    for (old_stage, new_stage), ids in report.stages.samples.items():
        assert 0 < len(ids) <= SAMPLES
        for account_id in ids:
            assert (stage_label(before[account_id]), stage_label(after[account_id])) == (old_stage, new_stage)
    # unchanged accounts are never sampled
    assert all(o != n for o, n in report.segments.samples)


def test_matrix_labels_follow_the_policy_order(report: ImpactReport) -> None:
    assert report.segments.old_labels == ["early_low", "early_high", "mid", "late", "legal",
                                          "writeoff_review"]
    assert report.stages.new_labels[:3] == ["early/reminder", "early/call", "early/letter"]
    assert report.stages.new_labels[-1] == "(none)"


# ---- the command line --------------------------------------------------------------------------------------


def test_text_report(small_accounts: Path) -> None:
    result = run("diff", str(OLD), str(NEW), "--accounts", str(small_accounts), "--history", str(HISTORY),
                 "--as-of", "2026-11-23T15:00:00Z", "--samples", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"old: consumer-lending 2026.11.1 ({OLD})\n"
                          f"new: consumer-lending 2026.12.1 ({NEW})\n")
    assert "as of 2026-11-23T15:00:00Z: 400 accounts compared" in out
    assert "segment transitions (rows: old, columns: new):" in out
    assert "early_high -> early_low" in out
    change = next(line for line in out.splitlines() if "early_high -> early_low" in line)
    assert len(change.split("e.g. ")[1].split(", ")) <= 2


def test_json_report_matches_the_library(small_accounts: Path, old: Program, new: Program) -> None:
    result = run("diff", str(OLD), str(NEW), "--accounts", str(small_accounts), "--history", str(HISTORY),
                 "--holds", str(HOLDS), "--promises", str(PROMISES), "--as-of", "2026-11-23T15:00:00Z",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = portfolio_impact(old, new, small_accounts, HISTORY, HOLDS, PROMISES, as_of=AS_OF)
    assert data["segments"]["matrix"] == expected.segments.to_dict()["matrix"]
    assert data["stages"]["matrix"] == expected.stages.to_dict()["matrix"]
    assert data["accounts_compared"] == 400
    assert data["new"]["version"] == "2026.12.1"
    matrix_total = sum(n for row in data["segments"]["matrix"].values() for n in row.values())
    assert matrix_total == 400


def test_markdown_report(small_accounts: Path) -> None:
    result = run("diff", str(OLD), str(NEW), "--accounts", str(small_accounts), "--history", str(HISTORY),
                 "--as-of", "2026-11-23T15:00:00Z", "--format", "md")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "## Policy change: consumer-lending 2026.11.1 → consumer-lending 2026.12.1"
    assert "### Segment transitions" in lines and "### Stage transitions" in lines
    header = lines.index("| old \\ new | early_low | early_high | mid | late | legal | writeoff_review |")
    assert lines[header + 1] == "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    assert any(line.startswith("| early_high | early_low | ") for line in lines)


def test_the_same_policy_changes_nothing(small_accounts: Path) -> None:
    result = run("diff", str(OLD), str(OLD), "--accounts", str(small_accounts), "--as-of",
                 "2026-11-23T15:00:00Z", "--format", "json")
    data = json.loads(result.stdout)
    assert {aspect: v["accounts"] for aspect, v in data["changed"].items()} == {
        "segment": 0, "stage": 0, "status": 0, "due": 0, "blocked": 0, "any": 0}
    assert data["segments"]["changes"] == [] and data["stages"]["changes"] == []
    assert all(set(row) == {old} for old, row in data["segments"]["matrix"].items())


def test_rejected_rows_are_reported_and_fail(tmp_path: Path, small_accounts: Path) -> None:
    with small_accounts.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    dpd = rows[0].index("dpd")
    rows[5][dpd] = "five"
    bad = tmp_path / "accounts.csv"
    with bad.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = run("diff", str(OLD), str(NEW), "--accounts", str(bad), "--as-of", "2026-11-23T15:00:00Z")
    assert result.exit_code == 1
    assert "399 accounts compared" in result.stdout
    assert "note: rows rejected: 1 by the old version, 1 by the new" in result.stdout


def test_an_invalid_policy_exits_with_1(tmp_path: Path, small_accounts: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(NEW.read_text(encoding="utf-8").replace("dpd >= 7\n", "dpdd >= 7\n"), encoding="utf-8")
    result = run("diff", str(OLD), str(broken), "--accounts", str(small_accounts))
    assert result.exit_code == 1
    assert "unknown name 'dpdd'" in result.stderr


def test_usage_errors_exit_with_2(small_accounts: Path) -> None:
    both = ("diff", str(OLD), str(NEW))
    assert run(*both).exit_code == 2  # --accounts is required
    assert run(*both, "--accounts", str(small_accounts), "--samples", "-1").exit_code == 2
    assert run(*both, "--accounts", str(small_accounts), "--format", "html").exit_code == 2
