"""Portfolio evaluation: read accounts, history, holds and promises files; decide for every account.

Rows that do not fit their types are rejected with their file, row number and column, counted, and shown;
the other rows are evaluated. History is indexed once by account, person, debt and contact point, so each
account sees exactly the events its restrictions may count.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..io.tables import (
    ACCOUNT_STANDARD_COLUMNS,
    HISTORY_COLUMNS,
    HOLD_COLUMNS,
    PROMISE_COLUMNS,
    ColumnSpec,
    RowProblem,
    read_table,
)
from ..io.values import ValueKind
from ..policy import model as M
from .account import Account, ContactEvent, Hold, Promise
from .decision import Decision
from .program import Program


def field_columns(policy: M.Policy) -> list[ColumnSpec]:
    """The policy's fields as typed columns; a field that is neither optional nor defaulted is required."""
    standard = {c.name for c in ACCOUNT_STANDARD_COLUMNS}
    columns = []
    for name, spec in policy.fields.items():
        if name in standard:
            continue
        kind = ValueKind(spec.type.kind)
        item = ValueKind(spec.type.item.kind) if spec.type.item is not None else None
        required = not spec.optional and spec.default is None
        columns.append(ColumnSpec(name, kind, required=required, default=spec.default,
                                  enum_values=spec.type.enum_values, item_kind=item))
    return columns


@dataclass
class InputReport:
    """What was read from one input file."""

    file: str
    total_rows: int
    rejected_rows: int
    problems: list[RowProblem]
    omitted_problems: int = 0


@dataclass
class Portfolio:
    accounts: list[Account]
    history: list[ContactEvent]
    holds: list[Hold]
    promises: list[Promise]
    inputs: list[InputReport] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return sum(i.rejected_rows for i in self.inputs)


def load_portfolio(program: Program, accounts: str | Path, history: str | Path | None = None,
                   holds: str | Path | None = None, promises: str | Path | None = None) -> Portfolio:
    """Read the input files, typed by the policy's fields and the standard column sets."""
    inputs: list[InputReport] = []

    def read(path: str | Path, columns: list[ColumnSpec] | tuple[ColumnSpec, ...]) -> list[tuple[int, dict[str, Any]]]:
        table = read_table(path, columns)
        inputs.append(InputReport(str(path), table.total_rows, table.rejected_rows, table.problems,
                                  table.omitted_problems))
        return table.rows  # type: ignore[return-value]

    account_rows = read(accounts, [*ACCOUNT_STANDARD_COLUMNS, *field_columns(program.policy)])
    account_list = []
    seen: dict[str, int] = {}
    duplicates: list[RowProblem] = []
    for row_number, row in account_rows:
        account = program.account(row, row_number, typed=True)
        if account.account_id in seen:
            duplicates.append(RowProblem(str(accounts), row_number, "account_id",
                                         f"account {account.account_id!r} already appears on row "
                                         f"{seen[account.account_id]}"))
            continue
        seen[account.account_id] = row_number
        account_list.append(account)
    if duplicates:
        inputs[0].problems.extend(duplicates)
        inputs[0].rejected_rows += len(duplicates)

    events: list[ContactEvent] = []
    if history is not None:
        for _, row in read(history, HISTORY_COLUMNS):
            events.append(ContactEvent(
                account_id=row["account_id"], channel=row["channel"], outcome=row["outcome"], at=row["at"],
                direction=row.get("direction") or "outbound", person_id=row.get("person_id"),
                debt_id=row.get("debt_id"), contact=row.get("contact"), consent=bool(row.get("consent")),
                template=row.get("template"), subject=row.get("subject") or "debtor",
                debt_ids=tuple(row.get("debt_ids") or ())))
    hold_list = [Hold(row["account_id"], row["type"], row["start"], row.get("end"), tuple(row.get("channels") or ()),
                      row.get("note")) for _, row in (read(holds, HOLD_COLUMNS) if holds else [])]
    promise_list = [Promise(row["account_id"], row["promised_on"], row["due"], row["amount"], row["paid"],
                            row["status"]) for _, row in (read(promises, PROMISE_COLUMNS) if promises else [])]
    return Portfolio(account_list, _complete_events(events, account_list), hold_list, promise_list, inputs)


def _complete_events(events: list[ContactEvent], accounts: list[Account]) -> list[ContactEvent]:
    """Fill an event's missing person and debt from its account, so person and debt keys count it."""
    by_id = {a.account_id: a for a in accounts}
    out = []
    for event in events:
        account = by_id.get(event.account_id)
        if account is not None and (event.person_id is None or event.debt_id is None):
            event = replace(event, person_id=event.person_id or account.person,
                            debt_id=event.debt_id or account.debt)
        out.append(event)
    return out


class HistoryIndex:
    """Events by account, person, debt and contact point; an account sees the union of its four."""

    def __init__(self, events: list[ContactEvent]) -> None:
        self.by_account: dict[str, list[ContactEvent]] = defaultdict(list)
        self.by_person: dict[str, list[ContactEvent]] = defaultdict(list)
        self.by_debt: dict[str, list[ContactEvent]] = defaultdict(list)
        self.by_contact: dict[str, list[ContactEvent]] = defaultdict(list)
        for event in events:
            account_id = event.account_id
            self.by_account[account_id].append(event)
            self.by_person[event.person_id or account_id].append(event)
            debt = event.debt_id or account_id
            if event.debt_ids:
                for other in dict.fromkeys((debt, *event.debt_ids)):
                    self.by_debt[other].append(event)
            else:
                self.by_debt[debt].append(event)
            if event.contact:
                self.by_contact[event.contact].append(event)

    def for_account(self, account: Account) -> list[ContactEvent]:
        phone = self.by_contact.get(account.phone) if account.phone else None
        own = self.by_account.get(account.account_id)
        groups = [group for group in (own, self.by_person.get(account.person), self.by_debt.get(account.debt), phone)
                  if group]
        if len(groups) <= 1:
            return list(groups[0]) if groups else []
        # an event reaches the account through several groups: once is enough (events compare by identity)
        return list({id(event): event for group in groups for event in group}.values())


def evaluate_portfolio(program: Program, portfolio: Portfolio, as_of: _dt.datetime, *,
                       trace: bool = False) -> Iterator[Decision]:
    index = HistoryIndex(portfolio.history)
    holds: dict[str, list[Hold]] = defaultdict(list)
    for hold in portfolio.holds:
        holds[hold.account_id].append(hold)
    promises: dict[str, list[Promise]] = defaultdict(list)
    for promise in portfolio.promises:
        promises[promise.account_id].append(promise)
    return program.evaluate_many(portfolio.accounts, index.for_account, as_of,
                                 holds_for=lambda a: holds.get(a.account_id, ()),
                                 promises_for=lambda a: promises.get(a.account_id, ()), trace=trace)


@dataclass
class Summary:
    """Counts over a run's decisions, for the closing report."""

    accounts: int = 0
    by_segment: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    due_by_channel: Counter[str] = field(default_factory=Counter)
    blocked_by_channel: Counter[str] = field(default_factory=Counter)
    blocked_by_restriction: Counter[str] = field(default_factory=Counter)
    accounts_with_errors: int = 0
    error_codes: Counter[str] = field(default_factory=Counter)

    def add(self, decision: Decision) -> None:
        self.accounts += 1
        self.by_segment[decision.segment or "(none)"] += 1
        self.by_status[decision.status] += 1
        if decision.stage:
            self.by_stage[f"{decision.ladder}/{decision.stage}"] += 1
        for action in decision.due:
            self.due_by_channel[action.channel] += 1
        for blocked in decision.blocked:
            self.blocked_by_channel[blocked.action.channel] += 1
            for reason in blocked.reasons:
                self.blocked_by_restriction[reason.restriction] += 1
        if decision.errors:
            self.accounts_with_errors += 1
            for error in decision.errors:
                self.error_codes[error.code] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts, "by_segment": dict(self.by_segment), "by_stage": dict(self.by_stage),
            "by_status": dict(self.by_status), "due_by_channel": dict(self.due_by_channel),
            "blocked_by_channel": dict(self.blocked_by_channel),
            "blocked_by_restriction": dict(self.blocked_by_restriction),
            "accounts_with_errors": self.accounts_with_errors, "error_codes": dict(self.error_codes),
        }


def summarize(decisions: Iterator[Decision], sink: Callable[[Decision], None] | None = None) -> Summary:
    summary = Summary()
    for decision in decisions:
        summary.add(decision)
        if sink is not None:
            sink(decision)
    return summary
