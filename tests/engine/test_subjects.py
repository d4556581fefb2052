"""Contact subjects: an action to a co-obligor or a third party is judged by the restrictions for its own
subject, and a contact about several debts counts for each of them."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path

from collectrules.engine.account import ContactEvent
from collectrules.engine.decision import Decision
from collectrules.engine.portfolio import evaluate_portfolio, load_portfolio
from collectrules.engine.program import Program

# Monday 23 November 2026, 08:30 in New York
AS_OF = _dt.datetime(2026, 11, 23, 13, 30, tzinfo=_dt.UTC)

SUBJECTS_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: subjects, version: "1"}
fields: {dpd: int}
segments: {rules: [{id: all, when: dpd > 0}]}
escalation:
  ladders:
    main:
      segments: [all]
      stages:
        - id: calls
          enter: dpd > 0
          actions:
            - {channel: phone, every: 1m}
            - {channel: phone, subject: co_obligor, every: 1m}
            - {channel: phone, subject: third_party, every: 1m}
contact:
  restrictions:
    - {id: debtor-hours, subjects: debtor, channels: phone, allowed_hours: "08:00-21:00"}
    - {id: third-party-hours, subjects: third_party, channels: phone, allowed_hours: "09:00-17:00"}
    - {id: guarantor-once-a-day, subjects: co_obligor, channels: phone, max_attempts: 1, per: 1d}
    - {id: everyone-no-cease, holds: cease}
"""

ACCOUNT = {"account_id": "A1", "dpd": "30", "timezone": "America/New_York", "phone": "+12025550100"}


def by_subject(decision: Decision) -> dict[str, list[str]]:
    """subject → the restrictions blocking its action ([] when it is due)."""
    found = {action.subject: [] for action in decision.due}
    for blocked in decision.blocked:
        found[blocked.action.subject] = sorted(r.restriction for r in blocked.reasons)
    return found


def test_each_subject_is_judged_by_its_own_restrictions(policy_text: Callable[[str], Program]) -> None:
    program = policy_text(SUBJECTS_POLICY)

    decision = program.evaluate(ACCOUNT, (), AS_OF)

    # 08:30 suits the debtor's hours but not a third party's
    assert by_subject(decision) == {"debtor": [], "co_obligor": [], "third_party": ["third-party-hours"]}
    [blocked] = decision.blocked
    assert blocked.next_allowed == _dt.datetime(2026, 11, 23, 14, 0, tzinfo=_dt.UTC)


def test_a_co_obligor_limit_holds_back_the_co_obligor_only(policy_text: Callable[[str], Program]) -> None:
    program = policy_text(SUBJECTS_POLICY)
    call = ContactEvent("A1", "phone", "no_answer", _dt.datetime(2026, 11, 23, 13, 5, tzinfo=_dt.UTC),
                        subject="co_obligor")

    decision = program.evaluate(ACCOUNT, [call], AS_OF.replace(hour=15))

    assert by_subject(decision) == {"debtor": [], "co_obligor": ["guarantor-once-a-day"], "third_party": []}


def test_a_restriction_for_every_subject_holds_back_all(policy_text: Callable[[str], Program]) -> None:
    from collectrules.engine.account import Hold

    program = policy_text(SUBJECTS_POLICY)
    cease = Hold("A1", "cease", _dt.date(2026, 11, 20))

    decision = program.evaluate(ACCOUNT, (), AS_OF, holds=[cease])

    assert by_subject(decision) == {"debtor": ["everyone-no-cease"], "co_obligor": ["everyone-no-cease"],
                                    "third_party": ["everyone-no-cease", "third-party-hours"]}


COOLDOWN_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: debts, version: "1"}
fields: {dpd: int}
segments: {rules: [{id: all, when: dpd > 0}]}
escalation:
  ladders:
    main:
      segments: [all]
      stages:
        - {id: calls, enter: dpd > 0, actions: [{channel: phone, every: 1m}]}
contact:
  restrictions:
    - {id: after-conversation, channels: phone, block_for: 7d, key: debt,
       after: {channels: phone, outcomes: conversation}}
"""


def test_a_conversation_about_several_debts_pauses_calls_about_each(
        tmp_path: Path, policy_text: Callable[[str], Program]) -> None:
    program = policy_text(COOLDOWN_POLICY)
    accounts = tmp_path / "accounts.csv"
    # two debtors, three debts; the conversation on A1 was about D1 and D2 (A2's), not D3 (A3's)
    accounts.write_text("account_id,person_id,debt_id,timezone,phone,dpd\n"
                        "A1,P1,D1,America/New_York,+12025550101,30\n"
                        "A2,P2,D2,America/New_York,+12025550102,30\n"
                        "A3,P2,D3,America/New_York,+12025550103,30\n", encoding="utf-8")
    history = tmp_path / "history.csv"
    history.write_text("account_id,person_id,debt_id,debt_ids,channel,outcome,at\n"
                       "A1,P1,D1,D1;D2,phone,conversation,2026-11-20T15:00:00Z\n", encoding="utf-8")

    portfolio = load_portfolio(program, accounts, history)
    decisions = {d.account_id: d for d in evaluate_portfolio(program, portfolio, AS_OF.replace(hour=15))}

    assert [r.restriction for b in decisions["A1"].blocked for r in b.reasons] == ["after-conversation"]
    assert [r.restriction for b in decisions["A2"].blocked for r in b.reasons] == ["after-conversation"]
    assert decisions["A2"].blocked[0].next_allowed == _dt.datetime(2026, 11, 27, 5, 0, tzinfo=_dt.UTC)
    assert [a.channel for a in decisions["A3"].due] == ["phone"]
