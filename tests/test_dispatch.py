"""Dispatching decisions: dry runs write nothing, sending runs record every attempt, nothing is ever sent
twice (re-runs, crashes between planned and sent, a process stopped mid-send), hooks see every attempt,
and what was sent counts towards the policy's caps and cadences on the next evaluation, through the API
and through ``collectrules evaluate --dispatch --send --ledger``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collectrules import cli as cli_module
from collectrules.dispatch import Attempt, DispatchReport, dispatch
from collectrules.engine.account import Account
from collectrules.engine.decision import Decision
from collectrules.engine.program import Program
from collectrules.hookspecs import hookimpl
from collectrules.ledger import Ledger
from collectrules.plugins import get_plugin_manager
from collectrules.policy.check import check_policy_file
from collectrules.registry import DeliveryResult, Transport, registry_from

AS_OF = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)

POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: tiny, version: "1"}
fields:
  dpd: int
  balance: decimal
  first_name: string
derive:
  bucket: if dpd <= 30 then "early" else "late"
templates:
  nudge:
    channel: sms
    body: "Hi {{ first_name }}, {{ balance }} is due ({{ bucket }})."
  mail:
    channel: email
    subject: "Account {{ account_id }}"
    body: |
      Dear {{ first_name }},
      that is {{ balance / dpd }} for each day late.
channels:
  sms: {transport: memory}
  email: {transport: memory, from: collections@lender.example}
segments:
  rules:
    - {id: all, when: dpd >= 0}
escalation:
  ladders:
    standard:
      segments: [all]
      stages:
        - id: reminder
          enter: dpd >= 0
          actions:
            - {channel: sms, template: nudge, every: 1h}
            - {channel: email, template: mail}
            - {channel: phone}
contact:
  restrictions:
    - {id: one-sms-a-day, channels: [sms], max_attempts: 1, per: 1d}
"""


class _Recorder:
    """A test plugin: a ``memory`` transport whose behaviour the test sets, and the dispatch hooks."""

    def __init__(self) -> None:
        self.behaviour = "deliver"  # deliver | fail | raise | stop
        self.sent: list[dict[str, Any]] = []
        self.before: list[str] = []
        self.after: list[tuple[str, str]] = []

    @hookimpl
    def collectrules_register_transports(self, register: Callable[[Transport], None]) -> None:
        schema = {"type": "object", "additionalProperties": False}
        register(Transport("memory", "Keeps messages in memory.", schema, self.open))

    def open(self, params: dict[str, Any]) -> Callable[[dict[str, Any]], DeliveryResult]:
        def send(message: dict[str, Any]) -> DeliveryResult:
            if self.behaviour == "raise":
                raise ConnectionResetError("connection reset after the message was written")
            if self.behaviour == "stop":
                raise KeyboardInterrupt  # the process is stopped while the message is on its way
            if self.behaviour == "fail":
                return DeliveryResult("failed", None, "HTTP 503")
            self.sent.append(message)
            return DeliveryResult("delivered", f"m-{len(self.sent)}", "HTTP 201")
        return send

    @hookimpl
    def collectrules_before_dispatch(self, attempt: Attempt) -> None:
        self.before.append(f"{attempt.account_id}:{attempt.channel}")

    @hookimpl
    def collectrules_after_dispatch(self, attempt: Attempt, result: DeliveryResult) -> None:
        self.after.append((f"{attempt.account_id}:{attempt.channel}", result.outcome))


class _World:
    """A policy, its accounts, a plugin manager with the recorder, and a ledger file."""

    def __init__(self, tmp_path: Path) -> None:
        self.recorder = _Recorder()
        self.pm = get_plugin_manager(autoload=False)
        self.pm.register(self.recorder, name="recorder")
        self.registry = registry_from(self.pm)
        path = tmp_path / "policy.yaml"
        path.write_text(POLICY, encoding="utf-8")
        result = check_policy_file(path, self.registry)
        assert result.ok and result.policy is not None, "\n".join(d.render() for d in result.diagnostics)
        self.program = Program(result.policy, self.registry)
        rows = [
            {"account_id": "A1", "timezone": "America/New_York", "phone": "+15550001",
             "email": "a1@example.com", "dpd": 5, "balance": Decimal("1250.50"), "first_name": "Ann"},
            # dpd 0: the email template divides by it and cannot be rendered
            {"account_id": "A2", "timezone": "Europe/Berlin", "phone": "+49300002", "email": "a2@example.com",
             "dpd": 0, "balance": Decimal("80"), "first_name": "Bob"},
            # no phone: the engine blocks its SMS (contact data), so it is never dispatched
            {"account_id": "A3", "email": "a3@example.com", "dpd": 10, "balance": Decimal("5"),
             "first_name": "Cy"},
        ]
        self.accounts: dict[str, Account] = {str(row["account_id"]): self.program.account(row)
                                             for row in rows}
        self.ledger_path = tmp_path / "ledger.db"

    def decide(self, at: dt.datetime, ledger: Ledger | None) -> list[Decision]:
        history = ledger.history() if ledger is not None else []
        return [self.program.evaluate(account, [e for e in history if e.account_id == account.account_id], at)
                for account in self.accounts.values()]

    def dispatch(self, decisions: list[Decision], ledger: Ledger | None, *, send: bool,
                 retry_in_doubt: bool = False) -> DispatchReport:
        return dispatch(decisions, self.program, ledger, self.registry, send=send,
                        accounts_by_id=self.accounts, pm=self.pm, retry_in_doubt=retry_in_doubt,
                        contact_clock=lambda: decisions[0].as_of)


@pytest.fixture()
def world(tmp_path: Path) -> _World:
    return _World(tmp_path)


def _counts(report: DispatchReport) -> dict[str, dict[str, int]]:
    return {channel: dict(counts) for channel, counts in report.counts().items()}


def test_a_dry_run_renders_and_reports_but_writes_nothing(world: _World) -> None:
    with Ledger(world.ledger_path) as ledger:
        report = world.dispatch(world.decide(AS_OF, ledger), ledger, send=False)
        assert ledger.attempts() == [] and ledger.runs() == []

    assert _counts(report) == {"email": {"would_send": 2, "render_error": 1}, "phone": {"no_transport": 2},
                               "sms": {"would_send": 2}}
    assert world.recorder.sent == [] and world.recorder.after == []
    assert sorted(world.recorder.before) == ["A1:email", "A1:sms", "A2:sms", "A3:email"]
    assert not report.ok
    [problem] = [r for r in report.records if r.status == "render_error"]
    assert problem.attempt.account_id == "A2" and problem.error is not None
    assert problem.error.diagnostics[0].code == "CR422"
    location = problem.error.diagnostics[0].location
    assert location is not None and location.line == 19  # "that is {{ balance / dpd }} …"
    nudge = next(r.attempt for r in report.records
                 if r.attempt.account_id == "A1" and r.attempt.channel == "sms")
    assert (nudge.to, nudge.body) == ("+15550001", "Hi Ann, 1250.50 is due (early).")
    assert nudge.local_date == dt.date(2026, 11, 23)


def test_a_dry_run_needs_no_ledger_but_sending_does(world: _World) -> None:
    report = world.dispatch(world.decide(AS_OF, None), None, send=False)
    assert report.totals()["would_send"] == 4
    with pytest.raises(ValueError, match="ledger"):
        world.dispatch(world.decide(AS_OF, None), None, send=True)


def test_sending_records_every_attempt_and_never_sends_twice(world: _World) -> None:
    with Ledger(world.ledger_path) as ledger:
        decisions = world.decide(AS_OF, ledger)
        report = world.dispatch(decisions, ledger, send=True)

        assert _counts(report) == {"email": {"sent": 2, "render_error": 1}, "phone": {"no_transport": 2},
                                   "sms": {"sent": 2}}
        assert [(m["account_id"], m["channel"]) for m in world.recorder.sent] == \
            [("A1", "sms"), ("A1", "email"), ("A2", "sms"), ("A3", "email")]
        mail = world.recorder.sent[1]
        assert (mail["from"], mail["to"], mail["subject"]) == \
            ("collections@lender.example", "a1@example.com", "Account A1")
        assert mail["body"] == "Dear Ann,\nthat is 250.10 for each day late.\n"
        assert sorted(world.recorder.after) == [("A1:email", "delivered"), ("A1:sms", "delivered"),
                                                ("A2:sms", "delivered"), ("A3:email", "delivered")]
        assert {(a.account_id, a.channel, a.state, a.outcome) for a in ledger.attempts()} == \
            {("A1", "sms", "sent", "delivered"), ("A1", "email", "sent", "delivered"),
             ("A2", "sms", "sent", "delivered"), ("A3", "email", "sent", "delivered")}
        assert ledger.verify_chain().ok
        assert len(ledger.runs()) == 1 and ledger.runs()[0].finished_at is not None

        # the same decisions dispatched again the same day: everything is already sent
        again = world.dispatch(decisions, ledger, send=True)
        assert again.totals()["skipped_sent"] == 4 and again.totals()["sent"] == 0
        assert len(world.recorder.sent) == 4


def test_the_ledger_history_makes_caps_and_cadences_count_what_was_sent(world: _World) -> None:
    with Ledger(world.ledger_path) as ledger:
        world.dispatch(world.decide(AS_OF, ledger), ledger, send=True)
        later = world.decide(AS_OF + dt.timedelta(hours=2), ledger)
    a1 = later[0]
    assert [a.channel for a in a1.due] == ["phone"]  # the email was once per stage, and it was sent
    [blocked] = a1.blocked
    assert (blocked.action.channel, [r.restriction for r in blocked.reasons]) == ("sms", ["one-sms-a-day"])
    # without the ledger the engine would send both again
    forgetful = world.decide(AS_OF + dt.timedelta(hours=2), None)[0]
    assert [a.channel for a in forgetful.due] == ["sms", "email", "phone"]


def test_a_transport_that_raises_leaves_the_attempt_in_doubt_and_it_is_not_resent(world: _World) -> None:
    with Ledger(world.ledger_path) as ledger:
        decisions = world.decide(AS_OF, ledger)
        world.recorder.behaviour = "raise"
        crashed = world.dispatch(decisions, ledger, send=True)
        assert crashed.totals()["in_doubt"] == 4 and crashed.totals()["sent"] == 0
        assert [a.state for a in ledger.attempts()] == ["planned"] * 4
        assert ledger.history() == [] and ledger.verify_chain().ok
        assert world.recorder.after == []

        world.recorder.behaviour = "deliver"
        rerun = world.dispatch(world.decide(AS_OF, ledger), ledger, send=True)
        assert rerun.totals()["in_doubt"] == 4 and world.recorder.sent == []
        assert "--retry-in-doubt" in (rerun.records[0].detail or "")

        retried = world.dispatch(world.decide(AS_OF, ledger), ledger, send=True, retry_in_doubt=True)
        assert retried.totals()["sent"] == 4 and len(world.recorder.sent) == 4
        assert [a.state for a in ledger.attempts()] == ["sent"] * 4
        assert ledger.verify_chain().ok


def test_a_process_stopped_mid_send_leaves_a_consistent_ledger(world: _World) -> None:
    with Ledger(world.ledger_path) as ledger:
        decisions = world.decide(AS_OF, ledger)
        world.recorder.behaviour = "stop"
        with pytest.raises(KeyboardInterrupt):
            world.dispatch(decisions, ledger, send=True)

    world.recorder.behaviour = "deliver"
    with Ledger(world.ledger_path) as ledger:  # a new process opens the file
        [stopped] = ledger.attempts()
        assert (stopped.account_id, stopped.channel, stopped.state) == ("A1", "sms", "planned")
        assert ledger.runs()[0].finished_at is not None and ledger.verify_chain().ok
        rerun = world.dispatch(world.decide(AS_OF, ledger), ledger, send=True)
        assert [(r.attempt.account_id, r.attempt.channel, r.status) for r in rerun.records
                if r.status in ("in_doubt", "sent")] == [("A1", "sms", "in_doubt"), ("A1", "email", "sent"),
                                                         ("A2", "sms", "sent"), ("A3", "email", "sent")]
        assert ("A1", "sms") not in [(m["account_id"], m["channel"]) for m in world.recorder.sent]


def test_a_failed_delivery_is_recorded_and_sent_again_on_the_next_run(world: _World) -> None:
    with Ledger(world.ledger_path) as ledger:
        world.recorder.behaviour = "fail"
        failed = world.dispatch(world.decide(AS_OF, ledger), ledger, send=True)
        assert failed.totals()["failed"] == 4 and ledger.history() == []
        assert {a.state for a in ledger.attempts()} == {"failed"}
        assert ("A1:sms", "failed") in world.recorder.after

        world.recorder.behaviour = "deliver"
        later = AS_OF + dt.timedelta(minutes=30)
        again = world.dispatch(world.decide(later, ledger), ledger, send=True)
        assert again.totals()["sent"] == 4 and len(ledger.attempts()) == 4
        assert ledger.verify_chain().entries == 4 * 4  # planned, failed, planned again, sent


def test_the_summary_text_counts_by_channel(world: _World) -> None:
    report = world.dispatch(world.decide(AS_OF, None), None, send=False)
    text = report.render_text()
    assert text.splitlines()[0] == "dispatch (dry run, nothing sent):"
    assert any(line.split() == ["sms", "2", "0", "0", "0", "0", "0"] for line in text.splitlines())
    assert "render errors: account A2 email:mail:" in text
    assert json.loads(json.dumps(report.to_dict()))["totals"]["no_transport"] == 2


# ---- the command line, end to end --------------------------------------------------------------------------

CLI_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: calls, version: "1"}
fields:
  dpd: int
  first_name: string
templates:
  nudge: {channel: sms, body: "Hi {{ first_name }}, you are {{ dpd }} days late."}
channels:
  sms: {transport: outbox, params: {dir: "OUTBOX"}}
  phone: {transport: outbox, params: {dir: "OUTBOX"}, description: call sheets for the agents}
segments:
  rules:
    - {id: late, when: dpd >= 1}
escalation:
  ladders:
    standard:
      segments: [late]
      stages:
        - id: calls
          enter: dpd >= 1
          actions:
            - {channel: phone, priority: 1}
            - {channel: sms, template: nudge, every: 1h}
contact:
  restrictions:
    - {id: one-sms-a-day, channels: [sms], max_attempts: 1, per: 1d}
"""


def _evaluate(folder: Path, as_of: str, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    cli_module._attach()
    out = folder / f"decisions-{len(list(folder.glob('decisions-*')))}.jsonl"
    args = ["evaluate", str(folder / "policy.yaml"), "--accounts", str(folder / "accounts.csv"),
            "--as-of", as_of, "-o", str(out), *extra]
    result = CliRunner().invoke(cli_module.cli, args, env={"COLLECTRULES_DISABLE_PLUGIN_AUTOLOAD": "1"})
    lines = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
    decisions = [json.loads(line) for line in lines]
    return result.exit_code, decisions, result.output


def _due(decision: dict[str, Any]) -> list[str]:
    return [action["channel"] for action in decision["due"]]


def test_evaluate_dispatch_send_then_the_ledger_counts_what_was_sent(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    (tmp_path / "policy.yaml").write_text(CLI_POLICY.replace("OUTBOX", str(outbox)), encoding="utf-8")
    (tmp_path / "accounts.csv").write_text("account_id,timezone,phone,dpd,first_name\n"
                                           "A1,America/New_York,+15550001,12,Ann\n", encoding="utf-8")
    ledger = str(tmp_path / "ledger" / "contacts.db")

    code, decisions, output = _evaluate(tmp_path, "2026-11-23T15:00:00Z", "--dispatch", "--send", "--ledger",
                                        ledger)
    assert code == 0, output
    assert _due(decisions[0]) == ["phone", "sms"]
    assert "dispatch (sending):" in output
    sent = sorted(p.relative_to(outbox).parts[0] for p in outbox.rglob("*.txt"))
    assert sent == ["phone", "sms"]
    assert "Hi Ann, you are 12 days late." in next((outbox / "sms").glob("*.txt")).read_text(encoding="utf-8")

    # two hours later the sms cadence (every 1h) would be due again, but the cap counts the ledger's sms,
    # and the phone action (once per stage) is done
    code, decisions, output = _evaluate(tmp_path, "2026-11-23T17:00:00Z", "--ledger", ledger)
    assert code == 0, output
    assert _due(decisions[0]) == []
    assert [(b["channel"], [r["restriction"] for r in b["blocked_by"]]) for b in decisions[0]["blocked"]] == \
        [("sms", ["one-sms-a-day"])]

    # the same run without the ledger knows nothing of those contacts
    _, decisions, _ = _evaluate(tmp_path, "2026-11-23T17:00:00Z")
    assert _due(decisions[0]) == ["phone", "sms"]

    # a same-day re-run of the first dispatch: the ledger's contacts make nothing due, nothing is sent again
    code, decisions, output = _evaluate(tmp_path, "2026-11-23T15:00:00Z", "--dispatch", "--send", "--ledger",
                                        ledger)
    assert code == 0, output
    assert _due(decisions[0]) == [] and "no actions due" in output
    assert len(list(outbox.rglob("*.txt"))) == 2


def test_evaluate_dispatch_is_a_dry_run_by_default(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    (tmp_path / "policy.yaml").write_text(CLI_POLICY.replace("OUTBOX", str(outbox)), encoding="utf-8")
    (tmp_path / "accounts.csv").write_text("account_id,phone,dpd,first_name\nA1,+15550001,3,Ann\n",
                                           encoding="utf-8")
    ledger = tmp_path / "contacts.db"

    code, _, output = _evaluate(tmp_path, "2026-11-23T15:00:00Z", "--dispatch", "--ledger", str(ledger))
    assert code == 0, output
    assert "dispatch (dry run, nothing sent):" in output
    assert not outbox.exists()
    with Ledger(ledger) as opened:
        assert opened.attempts() == [] and opened.runs() == []


def test_evaluate_send_without_a_ledger_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(CLI_POLICY.replace("OUTBOX", str(tmp_path / "o")), encoding="utf-8")
    (tmp_path / "accounts.csv").write_text("account_id,dpd,first_name\nA1,3,Ann\n", encoding="utf-8")
    code, _, output = _evaluate(tmp_path, "2026-11-23T15:00:00Z", "--dispatch", "--send")
    assert code == 2 and "--send needs --ledger" in output
    code, _, output = _evaluate(tmp_path, "2026-11-23T15:00:00Z", "--send", "--ledger",
                                str(tmp_path / "l.db"))
    assert code == 2 and "go with --dispatch" in output


def test_accounts_are_the_ones_the_decisions_name(world: _World) -> None:
    decisions = world.decide(AS_OF, None)
    only_a2: dict[str, Account] = {"A2": world.accounts["A2"]}
    with pytest.raises(ValueError, match="no account 'A1'"):
        dispatch(decisions, world.program, None, world.registry, send=False, accounts_by_id=only_a2)
