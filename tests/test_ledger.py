"""The contact ledger: schema migrations, WAL, the planned → sent/failed protocol, history for the engine,
idempotency keys and the audit hash chain (verified, and every kind of tampering detected)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from collectrules.engine.account import ContactEvent
from collectrules.ledger import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    canonical_json,
    chain_hash,
    idempotency_key,
    migrate,
)
from collectrules.registry import DeliveryResult

AS_OF = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 23)


class _Clock:
    """A wall clock that advances one second per reading, so audit times are distinct and predictable."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 23, 15, 0, 5, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def _plan(ledger: Ledger, run: int, account: str = "A1", channel: str = "sms", template: str | None = "nudge"
          ) -> str:
    key = idempotency_key("tiny", account, channel, template, "early", DAY)
    planned = ledger.plan(run, key=key, account_id=account, person_id="P1", debt_id=None, contact="+15550001",
                          channel=channel, template=template, stage="early", subject="debtor",
                          subject_line=None, body_sha256="ab" * 32, transport="outbox")
    assert planned is not None and planned.state == "planned"
    return key


@pytest.fixture()
def ledger(tmp_path: Path) -> Any:
    with Ledger(tmp_path / "ledger.db", clock=_Clock()) as opened:
        yield opened


def _raw(path: Path) -> sqlite3.Connection:
    """A second connection, as someone editing the file by hand would open it (foreign keys off)."""
    return sqlite3.connect(str(path), isolation_level=None)


# ---- schema ----------------------------------------------------------------------------------------------


def test_a_new_file_gets_the_whole_schema_with_wal_and_foreign_keys(ledger: Ledger) -> None:
    assert ledger.schema_version == SCHEMA_VERSION == len(MIGRATIONS) == ledger.pragma("user_version")
    assert ledger.pragma("journal_mode") == "wal"
    assert ledger.pragma("foreign_keys") == 1
    assert ledger.attempts() == [] and ledger.runs() == [] and ledger.history() == []


def test_foreign_keys_are_enforced(ledger: Ledger) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        ledger.plan(999, key="k" * 64, account_id="A1", person_id=None, debt_id=None, contact=None,
                    channel="sms", template=None, stage=None, subject="debtor", subject_line=None,
                    body_sha256=None, transport="outbox")
    assert ledger.attempts() == []


def test_a_version_1_file_is_migrated_and_keeps_its_attempts(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = _raw(path)
    assert migrate(db, MIGRATIONS[:1]) == 1
    db.execute("INSERT INTO runs (policy_name, policy_version, as_of, mode, started_at) "
               "VALUES ('tiny', '1', '2026-11-20T15:00:00Z', 'send', '2026-11-20T15:00:01Z')")
    db.execute("INSERT INTO attempts (idempotency_key, run_id, account_id, person_id, contact, channel, "
               "template, stage, subject, transport, state, outcome, created_at, sent_at, contact_at) VALUES "
               "('k1', 1, 'A1', 'P1', '+15550001', 'sms', 'nudge', 'early', 'debtor', 'webhook', 'sent', "
               "'delivered', '2026-11-20T15:00:02Z', '2026-11-20T15:00:03Z', '2026-11-20T15:00:00Z')")
    db.row_factory = sqlite3.Row
    payload = canonical_json(dict(db.execute("SELECT * FROM attempts").fetchone()))
    digest = chain_hash("0" * 64, payload)
    db.execute("INSERT INTO audit_chain (attempt_id, payload, prev_hash, hash) VALUES (1, ?, ?, ?)",
               (payload, "0" * 64, digest))
    db.execute("UPDATE attempts SET row_hash = ?", (digest,))
    db.close()

    with Ledger(path) as ledger:
        assert ledger.schema_version == 2 and ledger.pragma("user_version") == 2
        [attempt] = ledger.attempts()
        assert attempt.detail is None  # the column migration 2 added
        assert ledger.history() == [ContactEvent("A1", "sms", "delivered",
                                                 dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC), "outbound",
                                                 "P1", None, "+15550001", False, "nudge", "debtor")]
        assert ledger.verify_chain().ok, ledger.verify_chain().problems
        run = ledger.start_run("tiny", "1", AS_OF)
        key = _plan(ledger, run)
        ledger.record(key, DeliveryResult("sent", "ref", "HTTP 200"), contact_at=AS_OF)
        assert ledger.get(key).detail == "HTTP 200"  # type: ignore[union-attr]
        assert ledger.verify_chain().ok


def test_a_failed_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger(path).close()
    db = _raw(path)
    broken = (*MIGRATIONS, "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);")
    with pytest.raises(LedgerError, match="migration 3 failed"):
        migrate(db, broken)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    db.close()


def test_a_ledger_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger(path).close()
    db = _raw(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger(path)


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(LedgerError, match="cannot be used as a contact ledger: file is not a database"):
        Ledger(path)


# ---- keys and the protocol ------------------------------------------------------------------------------


def test_idempotency_key_names_policy_account_channel_template_stage_and_day() -> None:
    key = idempotency_key("tiny", "A1", "sms", "nudge", "early", DAY)
    assert key == idempotency_key("tiny", "A1", "sms", "nudge", "early", DAY)
    assert len(key) == 64 and int(key, 16) >= 0
    others = [idempotency_key("other", "A1", "sms", "nudge", "early", DAY),
              idempotency_key("tiny", "A2", "sms", "nudge", "early", DAY),
              idempotency_key("tiny", "A1", "email", "nudge", "early", DAY),
              idempotency_key("tiny", "A1", "sms", None, "early", DAY),
              idempotency_key("tiny", "A1", "sms", "nudge", "late", DAY),
              idempotency_key("tiny", "A1", "sms", "nudge", "early", DAY + dt.timedelta(days=1))]
    assert len({key, *others}) == 7


def test_planned_then_sent_becomes_history_and_failed_does_not(ledger: Ledger) -> None:
    run = ledger.start_run("tiny", "1", AS_OF)
    sent = _plan(ledger, run, "A1")
    failed = _plan(ledger, run, "A2")
    assert ledger.history() == []  # planned attempts are not contacts yet
    assert [a.idempotency_key for a in ledger.in_doubt()] == [sent, failed]

    ledger.record(sent, DeliveryResult("delivered", "msg-1", "HTTP 201"), contact_at=AS_OF)
    ledger.record(failed, DeliveryResult("failed", None, "HTTP 503"), contact_at=AS_OF)
    ledger.finish_run(run)

    assert [(a.account_id, a.state, a.outcome) for a in ledger.attempts()] == \
        [("A1", "sent", "delivered"), ("A2", "failed", "failed")]
    [event] = ledger.history()
    assert (event.account_id, event.channel, event.outcome, event.at, event.template, event.person_id) == \
        ("A1", "sms", "delivered", AS_OF, "nudge", "P1")
    assert ledger.in_doubt() == []
    [record] = ledger.runs()
    assert record.finished_at is not None and record.chain_head == ledger.verify_chain().head


def test_a_key_is_planned_once_and_results_only_for_planned_attempts(ledger: Ledger) -> None:
    run = ledger.start_run("tiny", "1", AS_OF)
    key = _plan(ledger, run)
    assert ledger.plan(run, key=key, account_id="A1", person_id=None, debt_id=None, contact=None,
                       channel="sms", template="nudge", stage="early", subject="debtor", subject_line=None,
                       body_sha256=None, transport="outbox") is None
    ledger.record(key, DeliveryResult("sent"), contact_at=AS_OF)
    with pytest.raises(LedgerError, match="not planned"):
        ledger.record(key, DeliveryResult("sent"), contact_at=AS_OF)
    assert ledger.replan(run, key, expected_state="failed", contact=None, subject_line=None, body_sha256=None,
                         transport="outbox") is None
    assert ledger.get(key).state == "sent"  # type: ignore[union-attr]


def test_a_failed_attempt_can_be_planned_again(ledger: Ledger) -> None:
    run = ledger.start_run("tiny", "1", AS_OF)
    key = _plan(ledger, run)
    ledger.record(key, DeliveryResult("failed", None, "HTTP 503"), contact_at=AS_OF)
    again = ledger.replan(run, key, expected_state="failed", contact="+15550009", subject_line=None,
                          body_sha256=None, transport="webhook")
    assert again is not None and (again.state, again.contact, again.detail) == ("planned", "+15550009", None)
    ledger.record(key, DeliveryResult("sent", "m-2"), contact_at=AS_OF)
    assert ledger.get(key).provider_reference == "m-2"  # type: ignore[union-attr]
    assert ledger.verify_chain().entries == 4


# ---- the audit chain ------------------------------------------------------------------------------------


@pytest.fixture()
def audited(tmp_path: Path) -> Path:
    """A ledger with three attempts (one sent, one failed, one in doubt) and a finished run."""
    path = tmp_path / "audited.db"
    with Ledger(path, clock=_Clock()) as ledger:
        run = ledger.start_run("tiny", "1", AS_OF)
        first, second = _plan(ledger, run, "A1"), _plan(ledger, run, "A2")
        _plan(ledger, run, "A3")
        ledger.record(first, DeliveryResult("sent", "m-1"), contact_at=AS_OF)
        ledger.record(second, DeliveryResult("failed", None, "HTTP 500"), contact_at=AS_OF)
        ledger.finish_run(run)
        report = ledger.verify_chain()
        assert report.ok and report.entries == 5, report.problems
    return path


def _problems_after(path: Path, *statements: str) -> list[str]:
    db = _raw(path)
    for statement in statements:
        db.execute(statement)
    db.close()
    with Ledger(path) as ledger:
        return ledger.verify_chain().problems


def test_changing_an_outcome_is_detected(audited: Path) -> None:
    problems = _problems_after(audited, "UPDATE attempts SET outcome = 'delivered' WHERE account_id = 'A2'")
    assert len(problems) == 1 and "attempt 2" in problems[0] and "outcome" in problems[0]


def test_turning_a_failed_attempt_into_a_sent_one_is_detected(audited: Path) -> None:
    problems = _problems_after(audited, "UPDATE attempts SET state = 'sent', outcome = 'sent', "
                                        "contact_at = '2026-11-23T15:00:00Z' WHERE account_id = 'A2'")
    assert problems and "contact_at, outcome, state" in problems[0]


def test_rewriting_a_chain_entry_is_detected(audited: Path) -> None:
    problems = _problems_after(audited,
                               "UPDATE audit_chain SET payload = replace(payload, 'A1', 'A9') WHERE seq = 1")
    assert any("entry 1 does not match its hash" in p for p in problems)


def test_rehashing_a_rewritten_entry_breaks_the_link_to_the_next(audited: Path) -> None:
    db = _raw(audited)
    payload, prev = db.execute("SELECT payload, prev_hash FROM audit_chain WHERE seq = 2").fetchone()
    forged = payload.replace("A2", "A7")
    db.execute("UPDATE audit_chain SET payload = ?, hash = ? WHERE seq = 2",
               (forged, chain_hash(prev, forged)))
    db.close()
    with Ledger(audited) as ledger:
        problems = ledger.verify_chain().problems
    assert any("entry 3 does not follow" in p for p in problems)


def test_deleting_an_attempt_is_detected(audited: Path) -> None:
    problems = _problems_after(audited, "DELETE FROM attempts WHERE account_id = 'A3'")
    assert any("attempt 3 is in the audit chain but was deleted" in p for p in problems)


def test_deleting_a_chain_entry_is_detected(audited: Path) -> None:
    problems = _problems_after(audited, "DELETE FROM audit_chain WHERE seq = 3")
    assert any("entry 4 does not follow" in p for p in problems)
    assert any("attempt 3" in p and "no entry in the audit chain" in p for p in problems)


def test_rebuilding_the_whole_chain_is_caught_by_the_run_anchor(audited: Path) -> None:
    db = _raw(audited)
    db.row_factory = sqlite3.Row
    db.execute("UPDATE attempts SET outcome = 'delivered' WHERE account_id = 'A2'")
    # a forger who recomputes every entry and row hash consistently
    previous = "0" * 64
    for entry in db.execute("SELECT seq, attempt_id FROM audit_chain ORDER BY seq").fetchall():
        row = dict(db.execute("SELECT * FROM attempts WHERE id = ?", (entry["attempt_id"],)).fetchone())
        payload = canonical_json(row)
        digest = chain_hash(previous, payload)
        db.execute("UPDATE audit_chain SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (payload, previous, digest, entry["seq"]))
        db.execute("UPDATE attempts SET row_hash = ? WHERE id = ?", (digest, entry["attempt_id"]))
        previous = digest
    db.close()
    with Ledger(audited) as ledger:
        problems = ledger.verify_chain().problems
    assert len(problems) == 1 and "run 1 recorded chain head" in problems[0]
