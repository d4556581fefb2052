"""What a metric computes and the building blocks the metrics share.

A metric's ``compute(outcomes, period, account_filter, params)`` (see
:class:`collectrules.registry.Metric`) returns a :class:`MetricValue`: the value with its numerator,
denominator and counts, so a report can show how it was reached. :func:`compute_metric` runs a metric and
turns missing data (:class:`NoData`, :class:`~collectrules.kpi.outcomes.MissingOutcomes`) into a value of
``None`` with the reason.

The shared definitions, used by every built-in metric (``docs/kpis.md``):

- the **opening** snapshot of a period is the latest balance snapshot dated on or before the day before
  the period starts; the **closing** snapshot is the latest dated on or before its last day, and must fall
  inside the period;
- the **cohort** of a period is the accounts on the book (not written off) in the opening snapshot that
  the KPI's filter selects on that snapshot;
- an account is **current** when its ``dpd`` is 0 or less, **delinquent** otherwise; **delinquency
  buckets** are ``current``, ``1-30``, ``31-60``, ``61-90``, ``91-180`` and ``180+`` unless a metric's
  ``buckets`` param gives other upper bounds.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ..registry import Metric
    from .outcomes import Outcomes, Snapshot
    from .periods import Period

__all__ = [
    "DEFAULT_BUCKET_BOUNDS",
    "EVERY_ACCOUNT",
    "AccountFilter",
    "BucketScheme",
    "MetricValue",
    "MissingOutcomes",
    "NoData",
    "Proportion",
    "closing_snapshot",
    "cohort",
    "compute_metric",
    "opening_snapshot",
    "ratio",
    "selector",
    "total",
]

#: upper ``dpd`` bounds of the delinquent buckets: 1-30, 31-60, 61-90, 91-180, then 180+
DEFAULT_BUCKET_BOUNDS: Final[tuple[int, ...]] = (30, 60, 90, 180)


class NoData(Exception):
    """The outcome data cannot give this metric a value for this period (and why)."""


#: the outcome tables by name, with what each holds (for messages)
TABLE_DESCRIPTIONS: Final[dict[str, str]] = {
    "balances": "balance snapshots", "accounts": "account attributes", "payments": "payments received",
    "writeoffs": "write-offs", "promises": "promises to pay", "agreements": "repayment agreements",
    "contacts": "contact history", "costs": "collection costs", "sales": "credit sales",
}


class MissingOutcomes(Exception):
    """A metric needs a table that the outcomes folder does not have."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table

    def __str__(self) -> str:
        what = TABLE_DESCRIPTIONS.get(self.table, self.table)
        return f"needs {what} ({self.table}.csv, .jsonl or .parquet in the outcomes folder)"


@dataclass(frozen=True)
class Proportion:
    """A count of successes out of trials behind a metric, for confidence intervals and tests."""

    successes: int
    trials: int
    #: what is counted, e.g. "accounts paying" or "promises kept"
    label: str

    @property
    def share(self) -> float | None:
        return self.successes / self.trials if self.trials else None


@dataclass(frozen=True)
class MetricValue:
    """A metric's value for one period, with what it was computed from.

    ``value`` is ``None`` when it cannot be computed; ``detail`` then says why.
    """

    value: Decimal | None
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    #: named counts behind the value (accounts, payments, promises …)
    counts: Mapping[str, int] = field(default_factory=dict)
    detail: str | None = None
    #: the value's natural count proportion, when it has one (experiment comparisons use it)
    proportion: Proportion | None = None


class AccountFilter:
    """Which accounts a KPI measures: every account unless a subclass says otherwise.

    :meth:`account` answers for an account on one snapshot date; :meth:`row` for a record that is not an
    account's (a cost line, whose only name is ``team``).
    """

    #: true when the filter keeps everything (metrics then need no opening snapshot to filter on)
    everything: bool = True

    def account(self, account_id: str, on: _dt.date) -> bool:
        """Whether the account, as it stood on the snapshot of ``on``, is measured."""
        return True

    def row(self, values: Mapping[str, Any], on: _dt.date) -> bool:
        """Whether a record dated ``on`` and described by ``values`` (other names are null) is measured."""
        return True


#: the filter of a KPI without ``where``
EVERY_ACCOUNT: Final[AccountFilter] = AccountFilter()


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """``numerator / denominator``, or ``None`` when the denominator is not positive."""
    if denominator <= 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class BucketScheme:
    """Delinquency buckets from upper ``dpd`` bounds: ``(30, 60)`` gives current, 1-30, 31-60, 60+."""

    bounds: tuple[int, ...] = DEFAULT_BUCKET_BOUNDS

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BucketScheme:
        bounds = params.get("buckets")
        return cls(tuple(sorted(int(b) for b in bounds))) if bounds else cls()

    @property
    def labels(self) -> list[str]:
        """Every bucket's name, from current to the most delinquent."""
        labels = ["current"]
        low = 1
        for bound in self.bounds:
            labels.append(f"{low}-{bound}")
            low = bound + 1
        labels.append(f"{self.bounds[-1]}+" if self.bounds else "1+")
        return labels

    def index(self, dpd: int) -> int:
        """0 for current, 1 for the first delinquent bucket, and so on."""
        if dpd <= 0:
            return 0
        return 1 + sum(1 for bound in self.bounds if dpd > bound)

    def label(self, dpd: int) -> str:
        return self.labels[self.index(dpd)]


def opening_snapshot(outcomes: Outcomes, period: Period) -> tuple[_dt.date, dict[str, Snapshot]]:
    """The opening snapshot's date and rows (written-off rows included)."""
    day = outcomes.snapshot_date_on_or_before(period.opening_date)
    if day is None:
        raise NoData(f"no balance snapshot on or before {period.opening_date.isoformat()}, the day before "
                     "the period starts")
    return day, outcomes.snapshot(day)


def closing_snapshot(outcomes: Outcomes, period: Period) -> tuple[_dt.date, dict[str, Snapshot]]:
    """The closing snapshot's date and rows (written-off rows included); it must fall inside the period."""
    day = outcomes.snapshot_date_on_or_before(period.end)
    if day is None or day < period.start:
        raise NoData(f"no balance snapshot from {period.start.isoformat()} to {period.end.isoformat()}")
    return day, outcomes.snapshot(day)


def cohort(outcomes: Outcomes, period: Period,
           account_filter: AccountFilter) -> tuple[_dt.date, dict[str, Snapshot]]:
    """The opening date and the accounts measured: on the book at the opening and selected by the filter."""
    day, rows = opening_snapshot(outcomes, period)
    return day, {a: s for a, s in rows.items() if s.on_book and account_filter.account(a, day)}


def selector(outcomes: Outcomes, period: Period, account_filter: AccountFilter) -> Callable[[str], bool]:
    """Whether an account is measured, by its state in the opening snapshot; for records (payments,
    contacts) that need not belong to an account on the book. Without a filter every account counts."""
    if account_filter.everything:
        return lambda account_id: True
    day, _ = opening_snapshot(outcomes, period)
    return lambda account_id: account_filter.account(account_id, day)


def compute_metric(metric: Metric, outcomes: Outcomes, period: Period,
                   account_filter: AccountFilter = EVERY_ACCOUNT,
                   params: Mapping[str, Any] | None = None) -> MetricValue:
    """Run ``metric`` for ``period``; missing data gives a value of ``None`` with the reason in ``detail``."""
    if metric.compute is None:
        return MetricValue(None, detail=f"metric {metric.name!r} (from plugin {metric.origin!r}) does not "
                                        "compute values")
    try:
        value: MetricValue = metric.compute(outcomes, period, account_filter, dict(params or {}))
    except (NoData, MissingOutcomes) as exc:
        return MetricValue(None, detail=str(exc))
    return value


def total(amounts: Sequence[Decimal]) -> Decimal:
    """The sum of amounts, exact (``sum`` of an empty list would be the int 0)."""
    return sum(amounts, Decimal(0))
