"""The contact ledger: every dispatched attempt in a SQLite file, so nothing is sent twice and every contact
counts towards the policy's caps and cadences.

Tables: ``runs`` (one per sending run), ``attempts`` (one per idempotency key: planned → sent or failed)
and ``audit_chain``, an append-only hash chain with one entry per state change of an attempt. Each entry
stores ``sha256(previous hash + canonical JSON of the attempt row)``; the attempt row keeps the hash of its
latest entry in ``row_hash``. :meth:`Ledger.verify_chain` recomputes the chain and compares every attempt row
with its last audited state, so an edited, deleted or inserted row is detected. Each finished run also
records the chain's head at that moment, which anchors the chain against being rewritten wholesale.

The schema evolves by :data:`MIGRATIONS`: ``PRAGMA user_version`` says how many were applied; each runs in
its own transaction, so a failed migration leaves the file as it was. The file uses WAL journaling (readers
do not block the writer) and enforces foreign keys.

The idempotency key of an attempt is derived from the policy name, account, channel, template, stage and the
debtor's local date, so running the same day again finds the attempt and does not send it again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine.account import ContactEvent
from .errors import CollectRulesError
from .registry import DeliveryResult

#: outcomes that mean the message did not reach the debtor; the attempt is recorded as ``failed``
FAILED_OUTCOMES = frozenset({"failed", "bounced"})
#: the hash before the first entry of the chain
GENESIS_HASH = "0" * 64

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, attempts and the audit chain
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        policy_name TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        as_of TEXT NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('dry-run', 'send')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        chain_head TEXT
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        run_id INTEGER NOT NULL REFERENCES runs(id),
        account_id TEXT NOT NULL,
        person_id TEXT,
        debt_id TEXT,
        contact TEXT,
        channel TEXT NOT NULL,
        template TEXT,
        stage TEXT,
        subject TEXT NOT NULL DEFAULT 'debtor',
        subject_line TEXT,
        body_sha256 TEXT,
        transport TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('planned', 'sent', 'failed')),
        outcome TEXT,
        provider_reference TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        contact_at TEXT,
        row_hash TEXT
    );
    CREATE TABLE audit_chain (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        attempt_id INTEGER NOT NULL REFERENCES attempts(id),
        payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    );
    """,
    # 2: the transport's note on each attempt (an HTTP status, an SMTP reply), and indexes for the
    # history and in-doubt queries that every run makes
    """
    ALTER TABLE attempts ADD COLUMN detail TEXT;
    CREATE INDEX attempts_by_state ON attempts(state);
    CREATE INDEX attempts_by_account ON attempts(account_id);
    CREATE INDEX audit_chain_by_attempt ON audit_chain(attempt_id);
    """,
)

#: the schema version this code writes
SCHEMA_VERSION = len(MIGRATIONS)


class LedgerError(CollectRulesError):
    """The ledger file cannot be used (not a ledger, written by a newer version, …)."""

    default_code = "CR902"


def idempotency_key(policy_name: str, account_id: str, channel: str, template: str | None, stage: str | None,
                    local_date: _dt.date) -> str:
    """sha256 of the attempt's identity: one attempt per policy, account, channel, template, stage and day."""
    identity = json.dumps([policy_name, account_id, channel, template, stage, local_date.isoformat()],
                          ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def canonical_json(row: Mapping[str, Any]) -> str:
    """The row as hashed: sorted keys, no whitespace, ``row_hash`` and null columns left out.

    Leaving nulls out keeps old hashes valid when a migration adds a column (NULL on existing rows).
    """
    data = {key: value for key, value in row.items() if key != "row_hash" and value is not None}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(previous: str, payload: str) -> str:
    return hashlib.sha256((previous + payload).encode("utf-8")).hexdigest()


def _iso(at: _dt.datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("ledger times must carry a time zone")
    return at.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> _dt.datetime | None:
    return _dt.datetime.fromisoformat(text) if text else None


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def migrate(connection: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply the migrations the file has not had yet, each in its own transaction; returns the version.

    The connection must be in autocommit mode (``isolation_level=None``) so the transactions are ours.
    """
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise LedgerError(f"the ledger has schema version {version}, newer than this collectrules knows "
                          f"({len(migrations)})", hint="upgrade collectrules to read this ledger")
    for number in range(version + 1, len(migrations) + 1):
        script = migrations[number - 1]
        try:
            # executescript runs the whole script, BEGIN and COMMIT included, as written
            connection.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise LedgerError(f"ledger migration {number} failed: {exc}") from exc
        version = number
    return version


@dataclass(frozen=True)
class LedgerAttempt:
    """One attempt as the ledger holds it."""

    id: int
    idempotency_key: str
    run_id: int
    account_id: str
    person_id: str | None
    debt_id: str | None
    contact: str | None
    channel: str
    template: str | None
    stage: str | None
    subject: str
    subject_line: str | None
    body_sha256: str | None
    transport: str
    state: str  # planned | sent | failed
    outcome: str | None
    provider_reference: str | None
    detail: str | None
    created_at: _dt.datetime
    sent_at: _dt.datetime | None
    contact_at: _dt.datetime | None

    def to_event(self) -> ContactEvent:
        """The attempt as contact history (only meaningful for sent attempts)."""
        at = self.contact_at or self.sent_at or self.created_at
        return ContactEvent(self.account_id, self.channel, self.outcome or "sent", at, "outbound",
                            self.person_id, self.debt_id, self.contact, False, self.template, self.subject)


@dataclass(frozen=True)
class RunRecord:
    id: int
    policy_name: str
    policy_version: str
    as_of: _dt.datetime
    mode: str
    started_at: _dt.datetime
    finished_at: _dt.datetime | None
    chain_head: str | None


@dataclass
class ChainReport:
    """What :meth:`Ledger.verify_chain` found: ``ok`` when the chain and every row agree."""

    entries: int
    head: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


_ATTEMPT_COLUMNS = ("id", "idempotency_key", "run_id", "account_id", "person_id", "debt_id", "contact",
                    "channel", "template", "stage", "subject", "subject_line", "body_sha256", "transport",
                    "state", "outcome", "provider_reference", "detail", "created_at", "sent_at", "contact_at")


class Ledger:
    """A contact ledger file, created (and migrated) on open; a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path, *, clock: Any = _utc_now) -> None:
        self.path = Path(path)
        #: wall clock for created_at / sent_at / started_at (audit times, never the policy's as-of)
        self.clock = clock
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{self.path} cannot be used as a contact ledger: {exc}") from exc
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"{self.path}: the ledger needs WAL journaling, but SQLite chose {mode!r}")
            self.schema_version = migrate(self._db)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerError(f"{self.path} cannot be used as a contact ledger: {exc}") from exc
        except LedgerError:
            self._db.close()
            raise

    # ---- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: the chain's head is read and extended atomically
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def pragma(self, name: str) -> Any:
        """The value of a PRAGMA (``journal_mode``, ``foreign_keys``, ``user_version`` …)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    # ---- runs ---------------------------------------------------------------------------------------

    def start_run(self, policy_name: str, policy_version: str, as_of: _dt.datetime,
                  mode: str = "send") -> int:
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO runs (policy_name, policy_version, as_of, mode, started_at) "
                                "VALUES (?, ?, ?, ?, ?)", (policy_name, policy_version, _iso(as_of), mode,
                                                           _iso(self.clock())))
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET finished_at = ?, chain_head = ? WHERE id = ?",
                       (_iso(self.clock()), self._head(db), run_id))

    def runs(self) -> list[RunRecord]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY id").fetchall()
        return [RunRecord(r["id"], r["policy_name"], r["policy_version"], _parse(r["as_of"]),  # type: ignore[arg-type]
                          r["mode"], _parse(r["started_at"]), _parse(r["finished_at"]),  # type: ignore[arg-type]
                          r["chain_head"]) for r in rows]

    # ---- attempts -----------------------------------------------------------------------------------

    def get(self, key: str) -> LedgerAttempt | None:
        row = self._db.execute("SELECT * FROM attempts WHERE idempotency_key = ?", (key,)).fetchone()
        return _attempt(row) if row is not None else None

    def attempts(self, state: str | None = None) -> list[LedgerAttempt]:
        if state is None:
            rows = self._db.execute("SELECT * FROM attempts ORDER BY id").fetchall()
        else:
            rows = self._db.execute("SELECT * FROM attempts WHERE state = ? ORDER BY id", (state,)).fetchall()
        return [_attempt(row) for row in rows]

    def in_doubt(self) -> list[LedgerAttempt]:
        """Attempts planned but never confirmed: a run stopped (or its transport failed) in between."""
        return self.attempts("planned")

    def plan(self, run_id: int, *, key: str, account_id: str, person_id: str | None, debt_id: str | None,
             contact: str | None, channel: str, template: str | None, stage: str | None, subject: str,
             subject_line: str | None, body_sha256: str | None, transport: str) -> LedgerAttempt | None:
        """Record an attempt as ``planned`` before it is sent; None when the key is already in the ledger."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO attempts (idempotency_key, run_id, account_id, person_id, debt_id, contact, "
                "channel, template, stage, subject, subject_line, body_sha256, transport, state, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned', ?) "
                "ON CONFLICT (idempotency_key) DO NOTHING",
                (key, run_id, account_id, person_id, debt_id, contact, channel, template, stage, subject,
                 subject_line, body_sha256, transport, _iso(self.clock())))
            if cursor.rowcount == 0:
                return None
            return self._audit(db, int(cursor.lastrowid or 0))

    def replan(self, run_id: int, key: str, *, expected_state: str, contact: str | None,
               subject_line: str | None, body_sha256: str | None, transport: str) -> LedgerAttempt | None:
        """Plan a failed (or, on request, an in-doubt) attempt again; None if its state changed meanwhile."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE attempts SET state = 'planned', run_id = ?, contact = ?, subject_line = ?, "
                "body_sha256 = ?, transport = ?, outcome = NULL, provider_reference = NULL, detail = NULL, "
                "sent_at = NULL, contact_at = NULL WHERE idempotency_key = ? AND state = ?",
                (run_id, contact, subject_line, body_sha256, transport, key, expected_state))
            if cursor.rowcount == 0:
                return None
            row = db.execute("SELECT id FROM attempts WHERE idempotency_key = ?", (key,)).fetchone()
            return self._audit(db, int(row["id"]))

    def record(self, key: str, result: DeliveryResult, *, contact_at: _dt.datetime) -> LedgerAttempt:
        """Record a planned attempt's delivery result: ``sent``, or ``failed`` for a failed outcome.

        :param contact_at: when the contact happened on the policy's timeline (what caps and cadences see).
        """
        state = "failed" if result.outcome in FAILED_OUTCOMES else "sent"
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE attempts SET state = ?, outcome = ?, provider_reference = ?, detail = ?, "
                "sent_at = ?, contact_at = ? WHERE idempotency_key = ? AND state = 'planned'",
                (state, result.outcome, result.reference, result.detail, _iso(self.clock()),
                 _iso(contact_at) if state == "sent" else None, key))
            if cursor.rowcount == 0:
                raise LedgerError(f"attempt {key} is not planned in {self.path}; "
                                  "its result cannot be recorded")
            row = db.execute("SELECT id FROM attempts WHERE idempotency_key = ?", (key,)).fetchone()
            return self._audit(db, int(row["id"]))

    def history(self) -> list[ContactEvent]:
        """Every sent attempt as outbound contact history, so caps and cadences count them."""
        return [attempt.to_event() for attempt in self.attempts("sent")]

    # ---- the audit chain ----------------------------------------------------------------------------

    @staticmethod
    def _head(db: sqlite3.Connection) -> str:
        row = db.execute("SELECT hash FROM audit_chain ORDER BY seq DESC LIMIT 1").fetchone()
        return str(row["hash"]) if row is not None else GENESIS_HASH

    def _audit(self, db: sqlite3.Connection, attempt_id: int) -> LedgerAttempt:
        """Append the attempt's current row to the chain; store the entry's hash on the row."""
        row = db.execute("SELECT * FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        payload = canonical_json(dict(row))
        previous = self._head(db)
        digest = chain_hash(previous, payload)
        db.execute("INSERT INTO audit_chain (attempt_id, payload, prev_hash, hash) VALUES (?, ?, ?, ?)",
                   (attempt_id, payload, previous, digest))
        db.execute("UPDATE attempts SET row_hash = ? WHERE id = ?", (digest, attempt_id))
        return _attempt(row)

    def verify_chain(self) -> ChainReport:
        """Recompute the chain and compare each attempt row with its last audited state."""
        problems: list[str] = []
        previous = GENESIS_HASH
        latest: dict[int, tuple[str, str]] = {}
        hashes = {GENESIS_HASH}
        count = 0
        for entry in self._db.execute("SELECT * FROM audit_chain ORDER BY seq"):
            count += 1
            seq = entry["seq"]
            if entry["prev_hash"] != previous:
                problems.append(f"chain entry {seq} does not follow the entry before it "
                                "(an entry was removed, inserted or rewritten)")
            if chain_hash(entry["prev_hash"], entry["payload"]) != entry["hash"]:
                problems.append(f"chain entry {seq} does not match its hash (its content was changed)")
            try:
                audited_id = json.loads(entry["payload"]).get("id")
            except ValueError:
                audited_id = None
            if audited_id != entry["attempt_id"]:
                problems.append(f"chain entry {seq} names attempt {entry['attempt_id']} but holds attempt "
                                f"{audited_id}")
            latest[entry["attempt_id"]] = (entry["payload"], entry["hash"])
            hashes.add(entry["hash"])
            previous = entry["hash"]
        seen: set[int] = set()
        for row in self._db.execute("SELECT * FROM attempts ORDER BY id"):
            data = dict(row)
            seen.add(data["id"])
            audited = latest.get(data["id"])
            label = f"attempt {data['id']} ({data['idempotency_key'][:12]}…)"
            if audited is None:
                problems.append(f"{label} has no entry in the audit chain")
                continue
            if canonical_json(data) != audited[0]:
                recorded = json.loads(audited[0])
                changed = sorted(k for k in set(recorded) | set(data) - {"row_hash"}
                                 if recorded.get(k) != data.get(k))
                problems.append(f"{label} differs from its audited state in: {', '.join(changed)}")
            elif data["row_hash"] != audited[1]:
                problems.append(f"{label} carries a row hash that is not its last chain entry's")
        for missing in sorted(set(latest) - seen):
            problems.append(f"attempt {missing} is in the audit chain but was deleted from the attempts")
        for run in self._db.execute("SELECT id, chain_head FROM runs WHERE chain_head IS NOT NULL"):
            if run["chain_head"] not in hashes:
                problems.append(f"run {run['id']} recorded chain head {run['chain_head'][:12]}…, which is no "
                                "longer in the chain (the chain was rewritten)")
        return ChainReport(count, previous, problems)


def _attempt(row: sqlite3.Row) -> LedgerAttempt:
    data = dict(row)
    values: dict[str, Any] = {name: data.get(name) for name in _ATTEMPT_COLUMNS}
    for name in ("created_at", "sent_at", "contact_at"):
        values[name] = _parse(values[name])
    values["subject"] = values["subject"] or "debtor"
    return LedgerAttempt(**values)
