"""Policy coverage from test suites: the items of a policy, what the traced decisions cover, the example
suites' coverage, and ``collectrules test --coverage`` / ``--min-coverage``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from collectrules import cli as cli_module
from collectrules.engine.program import compile_policy
from collectrules.policy.check import load_policy
from collectrules.testing.coverage import CATEGORIES, PolicyCoverage, coverage_of
from collectrules.testing.runner import run_suite
from collectrules.testing.suite import ProgramCache, load_suite

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "policies"
CONSUMER = POLICIES / "consumer-lending.yaml"
#: the Regulation F pack the consumer policy imports; its rules are items of the policy too
REG_F = REPO / "src" / "collectrules" / "compliance" / "us-reg-f.yaml"

SUITE = f"""\
apiVersion: collectrules/v1
kind: PolicyTest
policy: {CONSUMER}
defaults:
  as_of: "2026-11-23T15:00:00Z"
  account: {{timezone: America/New_York, phone: "+12025550100", email: d@example.com, address: "1 Main St",
             first_name: Dana, product: card, credit_limit: "5000.00", last_payment_date: "2026-09-15"}}
cases:
"""

EARLY_LOW_CASE = """\
  - name: early low on day 1
    account: {account_id: T1, dpd: 5, balance: "800.00"}
    expect: {segment: early_low, stage: reminder}
"""

QUIET_HOURS_CASE = """\
  - name: a call at ten at night
    as_of: "2026-11-24T03:00:00Z"
    account: {account_id: T2, dpd: 12, balance: "3000.00"}
    expect: {segment: early_high, stage: call,
             blocked: {phone: [reg-f-inconvenient-times], sms: [reg-f-inconvenient-times]}}
"""


@pytest.fixture(scope="module", autouse=True)
def _commands_attached() -> None:
    cli_module._attach()


@pytest.fixture(scope="module")
def programs() -> ProgramCache:
    return ProgramCache()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


def write(folder: Path, name: str, *cases: str) -> Path:
    path = folder / name
    path.write_text(SUITE + "".join(cases), encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fragment in text:
            return number
    raise AssertionError(fragment)


def coverage_for(programs: ProgramCache, *paths: Path) -> PolicyCoverage:
    results = [run_suite(load_suite(p, programs)) for p in paths]
    assert all(r.suite.ok for r in results)
    [coverage] = coverage_of(results)
    return coverage


def test_the_items_of_a_policy() -> None:
    policy = load_policy(CONSUMER)
    coverage = PolicyCoverage.of(policy)
    # 5 rules matched and not matched, plus the default segment; 7 stages; 10 actions; 12 restrictions twice
    # (5 of the policy and 7 of the Regulation F pack it imports)
    assert {c: coverage.counts(c) for c in CATEGORIES} == {
        "segment rules": (0, 11), "stages": (0, 7), "actions": (0, 10), "restrictions": (0, 24)}
    assert coverage.percent() == 0.0
    labels = {(i.label, i.outcome) for i in coverage.items}
    assert ("writeoff_review", "reached") in labels
    assert ("early/call: sms:payment_link_sms", "due") in labels
    assert ("late/write_off_review", "entered") in labels
    assert ("reg-f-inconvenient-times", "allows") in labels


def test_one_case_covers_what_its_decision_went_through(tmp_path: Path, programs: ProgramCache) -> None:
    coverage = coverage_for(programs, write(tmp_path, "one.test.yaml", EARLY_LOW_CASE))
    covered = {(i.label, i.outcome) for i in coverage.covered}
    # the first rule matched, so no later rule was tried; the default was not reached
    assert covered == {
        ("early_low", "matched"), ("early/reminder", "entered"),
        ("early/reminder: sms:reminder_sms", "due"), ("early/reminder: email:reminder_email", "due"),
        # every restriction that applies to the text or the e-mail allowed it
        *{(r, "allows") for r in ("reg-f-inconvenient-times", "us-holidays", "sms-gap", "reg-f-dispute",
                                  "bankruptcy-hold", "deceased-hold", "reg-f-cease-communication",
                                  "status-holds")},
    }
    assert coverage.decisions == 1
    assert coverage.counts("stages") == (1, 7)
    assert coverage.percent("stages") == pytest.approx(100 / 7)


def test_uncovered_items_point_at_their_policy_line(tmp_path: Path, programs: ProgramCache) -> None:
    coverage = coverage_for(programs, write(tmp_path, "one.test.yaml", EARLY_LOW_CASE))
    uncovered = {(i.label, i.outcome): i for i in coverage.uncovered}
    item = uncovered[("early_low", "not matched")]
    assert item.where == f"{CONSUMER}:{line_of(CONSUMER, '- id: early_low')}"
    assert item.describe() == "early_low: never tried without matching"
    # a rule of an imported pack points at its line in the pack
    seven = line_of(REG_F, "- id: reg-f-call-frequency")
    assert uncovered[("reg-f-call-frequency", "blocks")].where == f"{REG_F}:{seven}"
    assert uncovered[("early/letter: letter:demand_letter", "due")].location.line == line_of(
        CONSUMER, "template: demand_letter") - 1


def test_blocks_and_allows_are_separate_items(tmp_path: Path, programs: ProgramCache) -> None:
    coverage = coverage_for(programs, write(tmp_path, "q.test.yaml", QUIET_HOURS_CASE))
    covered = {(i.label, i.outcome) for i in coverage.covered}
    assert ("reg-f-inconvenient-times", "blocks") in covered
    assert ("reg-f-inconvenient-times", "allows") not in covered
    assert ("early_low", "not matched") in covered and ("early_high", "matched") in covered


def test_suites_of_one_policy_add_up(tmp_path: Path, programs: ProgramCache) -> None:
    first = write(tmp_path, "a.test.yaml", EARLY_LOW_CASE)
    second = write(tmp_path, "b.test.yaml", QUIET_HOURS_CASE)
    alone = coverage_for(programs, first)
    both = coverage_for(programs, first, second)
    assert both.decisions == 2
    assert alone.covered < both.covered
    quiet_hours = {(i.label, i.outcome) for i in both.covered if i.label == "reg-f-inconvenient-times"}
    assert quiet_hours == {("reg-f-inconvenient-times", "blocks"), ("reg-f-inconvenient-times", "allows")}


def test_an_invalid_suite_adds_no_coverage(tmp_path: Path, programs: ProgramCache) -> None:
    bad = write(tmp_path, "bad.test.yaml", EARLY_LOW_CASE.replace("stage: reminder", "stage: remindr"))
    assert coverage_of([run_suite(load_suite(bad, programs))]) == []


def test_coverage_needs_traced_decisions() -> None:
    program = compile_policy(load_policy(CONSUMER))
    account = {"account_id": "X", "dpd": "5", "balance": "800", "timezone": "America/New_York"}
    decision = program.evaluate(account, as_of=dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC))
    with pytest.raises(ValueError, match="trace=True"):
        PolicyCoverage.of(program.policy).add(decision)


@pytest.mark.parametrize("name", ["consumer-lending", "factoring", "project-finance"])
def test_the_example_suites_cover_at_least_90_percent(name: str, programs: ProgramCache) -> None:
    coverage = coverage_for(programs, POLICIES / f"{name}.test.yaml")
    assert coverage.percent() >= 90, [i.describe() for i in coverage.uncovered]
    # every stage and every action of the example policies is exercised
    assert coverage.percent("stages") == 100
    assert coverage.percent("actions") == 100


def test_cli_prints_percentages_and_uncovered_items(tmp_path: Path) -> None:
    path = write(tmp_path, "one.test.yaml", EARLY_LOW_CASE)
    result = run("test", str(path), "--coverage")
    assert result.exit_code == 0
    out = result.stdout
    covered = 4 + 8  # early_low matched, the stage, two actions, eight restrictions allowing
    assert f"  {CONSUMER} (consumer-lending): {100 * covered / 52:.1f}% ({covered}/52 items, 1 decision)\n" \
        in out
    assert "    stages          14.3%  (1/7)" in out
    line = line_of(CONSUMER, "- id: legal")
    assert f"      {CONSUMER}:{line}" in out
    assert "segment rule legal: never matched" in out


def test_min_coverage_fails_below_the_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, "one.test.yaml", EARLY_LOW_CASE)
    result = run("test", str(path), "--min-coverage", "90")
    assert result.exit_code == 1
    assert f"error: coverage of {CONSUMER} is 23.1%, below the minimum of 90%" in result.stderr
    assert run("test", str(path), "--min-coverage", "23").exit_code == 0


def test_min_coverage_passes_for_the_example_suites() -> None:
    result = run("test", str(POLICIES), "--min-coverage", "90", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(c["name"] for c in data["coverage"]) == ["consumer-lending", "factoring", "project-finance"]
    assert all(c["percent"] >= 90 for c in data["coverage"])
    assert set(data["coverage"][0]["categories"]) == set(CATEGORIES)


def test_junit_keeps_coverage_out_of_the_xml(tmp_path: Path) -> None:
    path = write(tmp_path, "one.test.yaml", EARLY_LOW_CASE)
    result = run("test", str(path), "--format", "junit", "--coverage")
    assert result.stdout.startswith("<?xml")
    assert "coverage:" not in result.stdout
    assert "coverage:" in result.stderr

