"""Outcome data: what actually happened to the accounts, read from a folder of tables.

KPI metrics are computed from these tables (``docs/kpis.md`` documents every column). Each table is one
file named after it, in CSV, JSON Lines or Parquet (``balances.csv``, ``payments.parquet`` …), read with
:func:`collectrules.io.tables.read_table`, so a row that does not fit its types is rejected with its file,
row number and column while the other rows are used.

``balances``
    Balance snapshots, the only required table. Each date in it is a snapshot of the whole book at the
    close of that day: an account missing on a snapshot date is not on the book then (paid off, closed or
    sold). Columns ``account_id``, ``date``, ``balance``, ``dpd``, ``written_off``, plus optionally any of
    the policy's fields and ``team``, whose values at that date override the ``accounts`` table's.
``accounts``
    Optional attributes that do not change over time: ``account_id``, any policy field, ``team``.
``payments``, ``writeoffs``, ``promises``, ``agreements``, ``contacts`` (or ``history``), ``costs``,
``sales``
    Cash received, balances written off, promises to pay, repayment agreements, the contact history, the
    cost of collecting and the credit sales; each metric says which it needs.
"""

from __future__ import annotations

import bisect
import datetime as _dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from ..engine.account import ContactEvent, Promise
from ..engine.portfolio import InputReport
from ..errors import DataError
from ..io.tables import HISTORY_COLUMNS, PROMISE_COLUMNS, ColumnSpec, RowProblem, read_table
from ..io.values import ValueKind
from .metrics import MissingOutcomes

__all__ = [
    "AGREEMENT_COLUMNS",
    "BALANCE_COLUMNS",
    "COST_COLUMNS",
    "OUTCOME_ACCOUNT_COLUMNS",
    "PAYMENT_COLUMNS",
    "SALES_COLUMNS",
    "TABLES",
    "WRITEOFF_COLUMNS",
    "Agreement",
    "Cost",
    "Outcomes",
    "Payment",
    "Sale",
    "Snapshot",
    "WriteOff",
    "load_outcomes",
]

_S = ValueKind.STRING
_EXTENSIONS: Final[tuple[str, ...]] = (".csv", ".jsonl", ".ndjson", ".parquet")

BALANCE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("date", ValueKind.DATE, required=True),
    ColumnSpec("balance", ValueKind.DECIMAL, required=True),
    ColumnSpec("dpd", ValueKind.INT, required=True),
    ColumnSpec("written_off", ValueKind.BOOL, default=False),
    ColumnSpec("team", _S),
)
OUTCOME_ACCOUNT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("team", _S),
)
PAYMENT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("date", ValueKind.DATE, required=True),
    ColumnSpec("amount", ValueKind.DECIMAL, required=True),
)
WRITEOFF_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("date", ValueKind.DATE, required=True),
    ColumnSpec("amount", ValueKind.DECIMAL, required=True),
)
AGREEMENT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("account_id", _S, required=True),
    ColumnSpec("start", ValueKind.DATE, required=True),
    ColumnSpec("instalments", ValueKind.INT),
    ColumnSpec("instalment_amount", ValueKind.DECIMAL),
)
COST_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("date", ValueKind.DATE, required=True),
    ColumnSpec("amount", ValueKind.DECIMAL, required=True),
    ColumnSpec("team", _S),
)
SALES_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("date", ValueKind.DATE, required=True),
    ColumnSpec("credit_sales", ValueKind.DECIMAL, required=True),
)

#: table name → its columns; ``contacts`` may also be named ``history``
TABLES: Final[dict[str, tuple[ColumnSpec, ...]]] = {
    "balances": BALANCE_COLUMNS, "accounts": OUTCOME_ACCOUNT_COLUMNS, "payments": PAYMENT_COLUMNS,
    "writeoffs": WRITEOFF_COLUMNS, "promises": PROMISE_COLUMNS, "agreements": AGREEMENT_COLUMNS,
    "contacts": HISTORY_COLUMNS, "costs": COST_COLUMNS, "sales": SALES_COLUMNS,
}
_ALIASES: Final[dict[str, str]] = {"contacts": "history"}
_OPTIONAL_TABLES: Final[tuple[str, ...]] = ("payments", "writeoffs", "promises", "agreements", "contacts",
                                           "costs", "sales")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One account on one snapshot date, at the close of that day."""

    account_id: str
    date: _dt.date
    balance: Decimal
    dpd: int
    written_off: bool
    #: the policy's fields and ``team`` as of this date (the accounts table, overridden by this row)
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def on_book(self) -> bool:
        """Whether the account is still carried on the book (not written off)."""
        return not self.written_off


@dataclass(frozen=True, slots=True)
class Payment:
    account_id: str
    date: _dt.date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class WriteOff:
    account_id: str
    date: _dt.date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Agreement:
    account_id: str
    start: _dt.date
    instalments: int | None = None
    instalment_amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    date: _dt.date
    amount: Decimal
    team: str | None = None


@dataclass(frozen=True, slots=True)
class Sale:
    date: _dt.date
    credit_sales: Decimal


class Outcomes:
    """The outcome tables of a book, indexed for the questions metrics ask.

    A table that was not provided is ``None``; :meth:`require` turns that into :class:`MissingOutcomes`,
    which the report shows as "no data" for the metrics that needed it.
    """

    def __init__(self, snapshots: Iterable[Snapshot], *, payments: Sequence[Payment] | None = None,
                 writeoffs: Sequence[WriteOff] | None = None, promises: Sequence[Promise] | None = None,
                 agreements: Sequence[Agreement] | None = None,
                 contacts: Sequence[ContactEvent] | None = None, costs: Sequence[Cost] | None = None,
                 sales: Sequence[Sale] | None = None, inputs: Sequence[InputReport] = (),
                 source: str = "") -> None:
        self.by_date: dict[_dt.date, dict[str, Snapshot]] = defaultdict(dict)
        for snapshot in snapshots:
            self.by_date[snapshot.date][snapshot.account_id] = snapshot
        #: every snapshot date, oldest first
        self.dates: list[_dt.date] = sorted(self.by_date)
        self.payments = None if payments is None else sorted(payments, key=lambda p: (p.date, p.account_id))
        self.writeoffs = None if writeoffs is None else sorted(writeoffs,
                                                               key=lambda w: (w.date, w.account_id))
        self.promises = list(promises) if promises is not None else None
        self.agreements = list(agreements) if agreements is not None else None
        self.contacts = sorted(contacts, key=lambda c: (c.at, c.account_id)) if contacts is not None else None
        self.costs = list(costs) if costs is not None else None
        self.sales = list(sales) if sales is not None else None
        self.inputs = list(inputs)
        #: where the tables were read from, for messages
        self.source = source
        self._payment_days = [p.date for p in self.payments] if self.payments is not None else []
        self._payments_by_account: dict[str, list[Payment]] | None = None
        self._written_off_on: dict[str, _dt.date] | None = None

    # ---- tables --------------------------------------------------------------------------------------

    def require(self, table: str) -> Any:
        """The optional table ``table`` (payments, writeoffs, promises, agreements, contacts, costs or sales),
        or :class:`MissingOutcomes` when it was not provided."""
        if table not in _OPTIONAL_TABLES:
            raise ValueError(f"{table!r} is not an optional outcome table; expected one of "
                             f"{', '.join(_OPTIONAL_TABLES)}")
        value = getattr(self, table)
        if value is None:
            raise MissingOutcomes(table)
        return value

    # ---- snapshots -----------------------------------------------------------------------------------

    def snapshot_date_on_or_before(self, day: _dt.date) -> _dt.date | None:
        """The latest snapshot date not after ``day``."""
        index = bisect.bisect_right(self.dates, day)
        return self.dates[index - 1] if index else None

    def snapshot(self, day: _dt.date) -> dict[str, Snapshot]:
        """Every account on the snapshot of exactly ``day`` (empty when there is no snapshot that day)."""
        return self.by_date.get(day, {})

    def snapshot_dates_between(self, first: _dt.date, last: _dt.date) -> list[_dt.date]:
        """Snapshot dates from ``first`` to ``last``, both included."""
        return self.dates[bisect.bisect_left(self.dates, first):bisect.bisect_right(self.dates, last)]

    # ---- cash and write-offs -------------------------------------------------------------------------

    def payments_between(self, first: _dt.date, last: _dt.date) -> list[Payment]:
        """Payments dated from ``first`` to ``last``, both included (needs the payments table)."""
        payments: list[Payment] = self.require("payments")
        return payments[bisect.bisect_left(self._payment_days, first):
                        bisect.bisect_right(self._payment_days, last)]

    def payments_for(self, account_id: str, first: _dt.date, last: _dt.date) -> list[Payment]:
        """One account's payments dated from ``first`` to ``last``, both included."""
        if self._payments_by_account is None:
            index: dict[str, list[Payment]] = defaultdict(list)
            for payment in self.require("payments"):
                index[payment.account_id].append(payment)
            self._payments_by_account = index
        return [p for p in self._payments_by_account.get(account_id, ()) if first <= p.date <= last]

    def writeoffs_between(self, first: _dt.date, last: _dt.date) -> list[WriteOff]:
        writeoffs: list[WriteOff] = self.require("writeoffs")
        return [w for w in writeoffs if first <= w.date <= last]

    def written_off_on(self) -> dict[str, _dt.date]:
        """Each written-off account's first write-off date (from the write-offs table)."""
        if self._written_off_on is None:
            first: dict[str, _dt.date] = {}
            for writeoff in self.require("writeoffs"):
                if writeoff.account_id not in first:
                    first[writeoff.account_id] = writeoff.date
            self._written_off_on = first
        return self._written_off_on


# ---------------------------------------------------------------------------------------------------------
# reading a folder


def _find(directory: Path, table: str) -> Path | None:
    """The file holding ``table`` (or its alias); two files for one table are ambiguous."""
    names = [table] + ([_ALIASES[table]] if table in _ALIASES else [])
    found = [directory / f"{name}{ext}" for name in names for ext in _EXTENSIONS
             if (directory / f"{name}{ext}").is_file()]
    if len(found) > 1:
        raise DataError(f"the outcomes folder {directory} holds {len(found)} files for the {table} table: "
                        f"{', '.join(p.name for p in found)}", code="CR602",
                        hint="keep one file per table")
    return found[0] if found else None


def _field_columns(fields: Sequence[ColumnSpec], taken: Iterable[str]) -> list[ColumnSpec]:
    """The policy's fields as optional columns (a snapshot need not carry every field)."""
    skip = set(taken)
    return [ColumnSpec(c.name, c.kind, required=False, default=None, enum_values=c.enum_values,
                       item_kind=c.item_kind) for c in fields if c.name not in skip]


class _Reader:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.inputs: list[InputReport] = []

    def read(self, table: str,
             columns: Sequence[ColumnSpec]) -> tuple[str, list[tuple[int, dict[str, Any]]]] | None:
        path = _find(self.directory, table)
        if path is None:
            return None
        result = read_table(path, columns, keep_extra=False)
        self.inputs.append(InputReport(str(path), result.total_rows, result.rejected_rows, result.problems,
                                       result.omitted_problems))
        return str(path), result.rows

    def reject(self, problem: RowProblem) -> None:
        """A row that fits its types but not the table (a second balance for one account and date …)."""
        for report in self.inputs:
            if report.file == problem.file:
                report.problems.append(problem)
                report.rejected_rows += 1
                return


def load_outcomes(directory: str | Path, fields: Sequence[ColumnSpec] = (), *,
                  extra_contacts: Sequence[ContactEvent] = ()) -> Outcomes:
    """Read the outcome tables of ``directory``.

    :param fields: the policy's fields as columns (see :func:`collectrules.engine.portfolio.field_columns`);
        the balances and accounts tables may carry any of them, typed like the policy declares them.
    :param extra_contacts: contact events from elsewhere (a contact ledger), added to the contacts table.
    :raises DataError: when the folder or its balances table is missing, or a table cannot be read at all.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise DataError(f"the outcomes folder {folder} does not exist or is not a folder", code="CR602")
    reader = _Reader(folder)

    accounts: dict[str, dict[str, Any]] = {}
    read = reader.read("accounts", [*OUTCOME_ACCOUNT_COLUMNS,
                                     *_field_columns(fields, (c.name for c in OUTCOME_ACCOUNT_COLUMNS))])
    if read is not None:
        file, rows = read
        first_row: dict[str, int] = {}
        for number, row in rows:
            key = row["account_id"]
            if key in first_row:
                reader.reject(RowProblem(file, number, "account_id",
                                         f"account {key!r} already appears on row {first_row[key]}"))
                continue
            first_row[key] = number
            accounts[key] = {k: v for k, v in row.items() if k != "account_id" and v is not None}

    read = reader.read("balances", [*BALANCE_COLUMNS,
                                    *_field_columns(fields, (c.name for c in BALANCE_COLUMNS))])
    if read is None:
        raise DataError(f"the outcomes folder {folder} has no balances table", code="CR602",
                        hint="add balances.csv (account_id, date, balance, dpd, written_off); "
                             "see docs/kpis.md")
    file, rows = read
    snapshots: list[Snapshot] = []
    seen: dict[tuple[str, _dt.date], int] = {}
    standard = {"account_id", "date", "balance", "dpd", "written_off"}
    for number, row in rows:
        key = (row["account_id"], row["date"])
        if key in seen:
            reader.reject(RowProblem(file, number, "date", f"account {key[0]!r} already has a balance on "
                                                           f"{key[1].isoformat()} (row {seen[key]})"))
            continue
        seen[key] = number
        values = dict(accounts.get(row["account_id"], {}))
        values.update({k: v for k, v in row.items() if k not in standard and v is not None})
        snapshots.append(Snapshot(row["account_id"], row["date"], row["balance"], row["dpd"],
                                  bool(row["written_off"]), values))

    payments = _simple(reader, "payments", PAYMENT_COLUMNS,
                       lambda r: Payment(r["account_id"], r["date"], r["amount"]))
    writeoffs = _simple(reader, "writeoffs", WRITEOFF_COLUMNS,
                        lambda r: WriteOff(r["account_id"], r["date"], r["amount"]),
                        check=lambda r: "a write-off amount cannot be negative" if r["amount"] < 0 else None,
                        column="amount")
    promises = _simple(reader, "promises", PROMISE_COLUMNS,
                       lambda r: Promise(r["account_id"], r["promised_on"], r["due"], r["amount"], r["paid"],
                                         r["status"]),
                       check=lambda r: "the due date is before the date of the promise"
                       if r["due"] < r["promised_on"] else None, column="due")
    agreements = _simple(reader, "agreements", AGREEMENT_COLUMNS,
                         lambda r: Agreement(r["account_id"], r["start"], r.get("instalments"),
                                             r.get("instalment_amount")))
    contacts = _simple(reader, "contacts", HISTORY_COLUMNS, lambda r: ContactEvent(
        account_id=r["account_id"], channel=r["channel"], outcome=r["outcome"], at=r["at"],
        direction=r.get("direction") or "outbound", person_id=r.get("person_id"), debt_id=r.get("debt_id"),
        contact=r.get("contact"), consent=bool(r.get("consent")), template=r.get("template"),
        subject=r.get("subject") or "debtor"))
    if extra_contacts:
        contacts = [*(contacts or []), *extra_contacts]
    costs = _simple(reader, "costs", COST_COLUMNS, lambda r: Cost(r["date"], r["amount"], r.get("team")))
    sales = _sales(reader)
    return Outcomes(snapshots, payments=payments, writeoffs=writeoffs, promises=promises,
                    agreements=agreements, contacts=contacts, costs=costs, sales=sales, inputs=reader.inputs,
                    source=str(folder))


def _simple(reader: _Reader, table: str, columns: Sequence[ColumnSpec], build: Any, *,
            check: Any = None, column: str | None = None) -> list[Any] | None:
    read = reader.read(table, columns)
    if read is None:
        return None
    file, rows = read
    items = []
    for number, row in rows:
        problem = check(row) if check is not None else None
        if problem is not None:
            reader.reject(RowProblem(file, number, column, problem))
            continue
        items.append(build(row))
    return items


def _sales(reader: _Reader) -> list[Sale] | None:
    read = reader.read("sales", SALES_COLUMNS)
    if read is None:
        return None
    file, rows = read
    first_row: dict[_dt.date, int] = {}
    sales = []
    for number, row in rows:
        if row["credit_sales"] < 0:
            reader.reject(RowProblem(file, number, "credit_sales", "credit sales cannot be negative"))
            continue
        if row["date"] in first_row:
            reader.reject(RowProblem(file, number, "date", f"{row['date'].isoformat()} already has credit "
                                                           f"sales (row {first_row[row['date']]})"))
            continue
        first_row[row["date"]] = number
        sales.append(Sale(row["date"], row["credit_sales"]))
    return sales
