"""Engine behaviour that reads better in Python than in a scenario table: errors that stay with one account,
the messages that name rules, portfolio files and the command line's exit status."""

from __future__ import annotations

import datetime as _dt
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collectrules import cli as cli_module
from collectrules.engine.account import ContactEvent
from collectrules.engine.portfolio import evaluate_portfolio, load_portfolio
from collectrules.engine.program import Program
from collectrules.errors import DataError

POLICIES = Path(__file__).resolve().parent / "policies"
AS_OF = _dt.datetime(2025, 3, 10, 15, 0, tzinfo=_dt.UTC)  # Monday, 11:00 EDT in New York

UNIQUE_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: unique, version: "1"}
fields:
  dpd: int
  balance: decimal
segments:
  hit_policy: unique
  rules:
    - id: small
      when: balance < 1000
    - id: early
      when: dpd between 1 and 30
    - id: late
      when: dpd > 30
escalation:
  ladders:
    main:
      segments: [small, early, late]
      stages:
        - {id: letter, enter: dpd >= 1, actions: [{channel: letter}]}
"""

DIVISION_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: division, version: "1"}
fields:
  balance: decimal
  credit_limit: decimal
  dpd: int
derive:
  utilisation: balance / credit_limit
segments:
  rules:
    - {id: maxed_out, when: utilisation >= 95%}
    - {id: other, when: dpd >= 1}
escalation:
  ladders:
    main:
      segments: [maxed_out, other]
      stages:
        - {id: reminder, enter: dpd >= 1, actions: [{channel: letter}]}
        - {id: calls, enter: "dpd >= 30 and balance / credit_limit > 1", actions: [{channel: phone}]}
"""


def account(account_id: str, **values: str) -> dict[str, str]:
    return {"account_id": account_id, "timezone": "America/New_York", "phone": "+15550100",
            "address": "1 Main St", **values}


# ---- hit policy unique -------------------------------------------------------------------------------------


def test_unique_overlap_names_both_rules_with_their_lines(policy_text: Callable[[str], Program]) -> None:
    program = policy_text(UNIQUE_POLICY)
    decision = program.evaluate(account("A2", dpd="10", balance="500.00"), [], AS_OF)
    assert [e.code for e in decision.errors] == ["CR501"]
    message = decision.errors[0].message
    assert "'small' (line 10)" in message and "'early' (line 12)" in message
    assert "'late'" not in message
    assert decision.errors[0].location is not None and decision.errors[0].location.line == 12
    assert (decision.segment, decision.stage, decision.due, decision.blocked) == (None, None, [], [])


def test_unique_overlap_leaves_the_other_accounts_alone(policy_text: Callable[[str], Program]) -> None:
    program = policy_text(UNIQUE_POLICY)
    accounts = [program.account(account("A1", dpd="10", balance="5000.00")),
                program.account(account("A2", dpd="10", balance="500.00")),
                program.account(account("A3", dpd="40", balance="5000.00"))]
    decisions = list(program.evaluate_many(accounts, lambda a: [], AS_OF))
    assert [(d.account_id, d.segment, d.stage, [e.code for e in d.errors]) for d in decisions] == [
        ("A1", "early", "letter", []),
        ("A2", None, None, ["CR501"]),
        ("A3", "late", "letter", []),
    ]


# ---- runtime errors in expressions -------------------------------------------------------------------------


def test_division_by_zero_in_a_derive_is_an_error_of_that_account_only(
        policy_text: Callable[[str], Program]) -> None:
    program = policy_text(DIVISION_POLICY)
    accounts = [program.account(account("A1", balance="990.00", credit_limit="1000.00", dpd="10")),
                program.account(account("A2", balance="990.00", credit_limit="0", dpd="10")),
                program.account(account("A3", balance="100.00", credit_limit="1000.00", dpd="10"))]
    decisions = {d.account_id: d for d in program.evaluate_many(accounts, lambda a: [], AS_OF)}
    assert decisions["A1"].errors == [] and decisions["A1"].segment == "maxed_out"
    assert decisions["A3"].errors == [] and decisions["A3"].segment == "other"
    failed = decisions["A2"]
    assert [e.code for e in failed.errors] == ["CR502"]
    assert "division by zero" in failed.errors[0].message
    assert "balance / credit_limit" in failed.errors[0].message
    assert failed.errors[0].location is not None and failed.errors[0].location.line == 9
    # the derived value is null, so the condition reading it is false and the run goes on
    assert (failed.segment, failed.stage) == ("other", "reminder")
    assert [a.channel for a in failed.due] == ["letter"]


def test_an_error_is_reported_once_with_or_without_a_trace(policy_text: Callable[[str], Program]) -> None:
    program = policy_text(DIVISION_POLICY)
    row = account("A2", balance="990.00", credit_limit="0", dpd="40")
    plain = program.evaluate(row, [], AS_OF)
    traced = program.evaluate(row, [], AS_OF, trace=True)
    expected = [("CR502", 9), ("CR502", 20)]  # the derive, then the stage condition dividing again
    assert [(e.code, e.location.line if e.location else None) for e in plain.errors] == expected
    assert [(e.code, e.location.line if e.location else None) for e in traced.errors] == expected
    assert traced.trace is not None and any(t.step == "stage" for t in traced.trace)


FAILING_CONDITIONS_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: failing-conditions, version: "1"}
fields:
  dpd: int
  instalments: int
segments:
  rules:
    - {id: delinquent, when: dpd >= 0}
escalation:
  cure_when: dpd <= 0
  ladders:
    main:
      segments: [delinquent]
      stages:
        - {id: letters, enter: dpd >= 1, actions: [{channel: letter}, {channel: email}]}
        - {id: escalated, enter: dpd / instalments >= 30, actions: [{channel: phone}]}
contact:
  restrictions:
    - {id: letter-limit, channels: [letter], block_when: dpd / instalments > 60}
"""


def test_a_failing_block_when_blocks_and_is_an_error_of_that_account_only(
        policy_text: Callable[[str], Program]) -> None:
    program = policy_text(FAILING_CONDITIONS_POLICY)
    accounts = [program.account(account("A1", dpd="10", instalments="0", email="a@example.com")),
                program.account(account("A2", dpd="10", instalments="2", email="b@example.com"))]
    first, second = program.evaluate_many(accounts, lambda a: [], AS_OF)
    assert [(e.code, e.location.line if e.location else None) for e in first.errors] == [
        ("CR502", 17), ("CR502", 20)]  # the stage condition, then block_when
    assert [a.channel for a in first.due] == ["email"]
    [blocked] = first.blocked
    assert blocked.action.channel == "letter" and blocked.next_allowed is None
    assert [r.restriction for r in blocked.reasons] == ["letter-limit"]
    assert "could not be evaluated" in blocked.reasons[0].message
    assert second.errors == [] and [a.channel for a in second.due] == ["letter", "email"]


def test_trace_of_a_cured_account_evaluates_no_stage_condition(policy_text: Callable[[str], Program]) -> None:
    program = policy_text(FAILING_CONDITIONS_POLICY)
    row = account("A1", dpd="0", instalments="0")
    plain = program.evaluate(row, [], AS_OF)
    traced = program.evaluate(row, [], AS_OF, trace=True)
    assert (plain.status, plain.errors) == ("cured", [])
    assert (traced.status, traced.errors) == ("cured", [])
    assert traced.trace is not None
    assert [(t.step, t.result) for t in traced.trace if t.step in ("cure", "stage")] == [("cure", "true")]


# ---- accounts passed to the API ----------------------------------------------------------------------------


def test_api_account_values_are_typed_like_data_file_cells(policy_file: Callable[[str], Program]) -> None:
    program = policy_file("holds.yaml")
    built = program.account({"account_id": "A1", "dpd": "12", "timezone": "America/New_York;America/Chicago",
                             "opt_out_channels": "sms;email", "stage": "work", "stage_entered": "2025-03-01"})
    assert built.values["dpd"] == 12
    assert built.timezones == ("America/New_York", "America/Chicago")
    assert built.opt_out_channels == ("sms", "email")
    assert built.stage_entered == _dt.date(2025, 3, 1)


@pytest.mark.parametrize(("column", "value"), [("dpd", "twelve"), ("stage_entered", "01/03/2025"),
                                               ("timezone", "Mars/Olympus")])
def test_api_account_value_that_does_not_fit_is_a_data_error(
        policy_file: Callable[[str], Program], column: str, value: str) -> None:
    program = policy_file("holds.yaml")
    row = {"account_id": "A1", "dpd": "12", column: value}
    with pytest.raises(DataError) as raised:
        program.evaluate(row, [], AS_OF)
    assert raised.value.diagnostics[0].code == "CR608"
    assert column in str(raised.value)


def test_as_of_without_a_zone_is_refused(policy_file: Callable[[str], Program]) -> None:
    program = policy_file("holds.yaml")
    naive = _dt.datetime(2025, 3, 10, 15, 0)
    with pytest.raises(DataError):
        program.evaluate(account("A1", dpd="12"), [], naive)
    with pytest.raises(DataError):
        list(program.evaluate_many([program.account(account("A1", dpd="12"))], lambda a: [], naive))


GAP_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: gap, version: "1"}
fields:
  dpd: int
segments:
  rules:
    - {id: delinquent, when: dpd >= 1}
escalation:
  ladders:
    main:
      segments: [delinquent]
      stages:
        - {id: work, enter: dpd >= 1, actions: [{channel: phone, every: 1m}, {channel: sms, every: 1m}]}
contact:
  restrictions:
    - {id: any-gap, channels: [phone, sms], min_gap: 4h}
"""


def test_decision_does_not_depend_on_the_order_of_simultaneous_events(
        policy_text: Callable[[str], Program], history: Callable[..., list[ContactEvent]]) -> None:
    """The gap's reason names the last attempt; among simultaneous ones the input order must not choose."""
    program = policy_text(GAP_POLICY)
    events = history("A1", "2025-03-10T13:00:00Z sms delivered", "2025-03-10T13:00:00Z phone no_answer",
                     "2025-03-10T13:00:00Z phone busy")
    row = account("A1", dpd="12")
    reference = program.evaluate(row, events, AS_OF).to_json()
    assert "any-gap" in reference
    for permutation in itertools.permutations(events):
        assert program.evaluate(row, list(permutation), AS_OF).to_json() == reference


# ---- portfolio files ---------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_portfolio_counts_a_persons_contacts_across_accounts(tmp_path: Path,
                                                            policy_file: Callable[[str], Program]) -> None:
    """History rows without person or debt columns take them from their account (caps.yaml: 2 per 7 days)."""
    program = policy_file("caps.yaml")
    accounts = _write(tmp_path / "accounts.csv", (
        "account_id,person_id,debt_id,dpd,timezone,phone,email\n"
        "A1,P1,D1,20,America/New_York,+15550100,p1@example.com\n"
        "A2,P1,D2,20,America/New_York,+15550100,p1@example.com\n"
        "A3,P3,D1,20,America/New_York,+15550103,p3@example.com\n"
        "A4,P4,D4,20,America/New_York,+15550104,p4@example.com\n"))
    history = _write(tmp_path / "history.csv", (
        "account_id,channel,outcome,at\n"
        "A2,phone,no_answer,2025-03-05T15:00:00Z\n"
        "A2,phone,no_answer,2025-03-06T15:00:00Z\n"
        "A3,email,delivered,2025-03-05T15:00:00Z\n"
        "A3,email,delivered,2025-03-06T15:00:00Z\n"
        "A4,sms,delivered,2025-03-05T15:00:00Z\n"
        "A4,sms,delivered,2025-03-06T15:00:00Z\n"))
    portfolio = load_portfolio(program, accounts, history)
    blocked = {d.account_id: sorted((b.action.channel, r.restriction) for b in d.blocked for r in b.reasons)
               for d in evaluate_portfolio(program, portfolio, AS_OF)}
    assert blocked == {
        "A1": [("email", "per-debt"), ("phone", "per-person")],  # A2 is the same person, A3 the same debt
        "A2": [("phone", "per-person")],
        "A3": [("email", "per-debt")],
        "A4": [("sms", "per-account")],
    }


# ---- the command line --------------------------------------------------------------------------------------


@pytest.fixture
def run_cli() -> Callable[..., Any]:
    cli_module._attach()

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli_module.cli, list(args), catch_exceptions=False)
    return run


def test_cli_rejects_bad_account_rows_decides_the_rest_and_exits_1(tmp_path: Path,
                                                                  run_cli: Callable[..., Any]) -> None:
    accounts = _write(tmp_path / "accounts.csv", (
        "account_id,person_id,dpd,timezone,phone,address\n"
        "A1,P1,10,America/New_York,+15550100,1 Main St\n"
        "A2,P2,ten,America/New_York,+15550101,2 Main St\n"
        "A3,P3,40,Mars/Olympus,+15550102,3 Main St\n"
        "A4,P4,40,America/Chicago,+15550103,4 Main St\n"))
    output = tmp_path / "decisions.jsonl"
    result = run_cli("evaluate", str(POLICIES / "ladder.yaml"), "--accounts", str(accounts),
                     "--as-of", "2025-03-10T15:00:00Z", "-o", str(output))
    assert result.exit_code == 1
    decisions = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [(d["account_id"], d["stage"]) for d in decisions] == [("A1", "reminder"), ("A4", "calls")]
    report = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "accounts.csv:3: column 'dpd'" in report and "'ten'" in report
    assert "accounts.csv:4: column 'timezone'" in report and "Mars/Olympus" in report


def test_cli_exits_1_when_a_decision_carries_an_error(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    policy = _write(tmp_path / "division.yaml", DIVISION_POLICY)
    accounts = _write(tmp_path / "accounts.csv", (
        "account_id,balance,credit_limit,dpd,timezone,address\n"
        "A1,990.00,1000.00,10,America/New_York,1 Main St\n"
        "A2,990.00,0,10,America/New_York,2 Main St\n"))
    output = tmp_path / "decisions.jsonl"
    result = run_cli("evaluate", str(policy), "--accounts", str(accounts), "--as-of", "2025-03-10T15:00:00Z",
                     "-o", str(output))
    assert result.exit_code == 1
    decisions = {d["account_id"]: d for d in map(json.loads, output.read_text(encoding="utf-8").splitlines())}
    assert decisions["A1"]["errors"] == []
    assert [e["code"] for e in decisions["A2"]["errors"]] == ["CR502"]
