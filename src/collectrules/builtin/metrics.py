"""Built-in KPI metrics: each with its pinned formula, the schema of its params, and its computation.

The formulas are documented, each with a worked example, in ``docs/kpis.md``; the shared terms (opening and
closing snapshot, cohort, current, delinquent, buckets) are defined in :mod:`collectrules.kpi.metrics`.
Every worked example of the documentation is a test in ``tests/kpi/test_metrics.py``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from ..kpi.metrics import (
    AccountFilter,
    BucketScheme,
    MetricValue,
    NoData,
    Proportion,
    closing_snapshot,
    cohort,
    opening_snapshot,
    ratio,
    selector,
    total,
)
from ..registry import Metric
from . import hookimpl

if TYPE_CHECKING:
    from ..kpi.outcomes import Outcomes, Snapshot
    from ..kpi.periods import Period

Params = Mapping[str, Any]

#: contact outcomes that mean the debtor was reached, unless the contact was with a third party
RIGHT_PARTY_OUTCOMES: Final[tuple[str, ...]] = ("right_party_contact", "conversation", "promise_to_pay")
#: days in a year, for annualised rates
YEAR_DAYS: Final[int] = 365


# ---------------------------------------------------------------------------------------------------------
# params schemas


def _params(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_BASIS = {"enum": ["balance", "count"],
          "description": "balance (default): weigh accounts by their opening balance; count: count accounts."}
_BUCKETS = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "uniqueItems": True,
            "description": "Upper dpd bounds of the delinquent buckets (default [30, 60, 90, 180])."}
_CHANNELS = {"type": "array", "items": {"type": "string"}, "minItems": 1,
             "description": "Channels whose contacts count (default [phone])."}
_OUTCOMES = {"type": "array", "items": {"type": "string"}, "minItems": 1,
             "description": "Contact outcomes that count as reaching the debtor (default "
                            "right_party_contact, conversation, promise_to_pay)."}


# ---------------------------------------------------------------------------------------------------------
# shared pieces


def _value(numerator: Decimal, denominator: Decimal, counts: dict[str, int], empty: str,
           proportion: Proportion | None = None, scale: tuple[int, int] = (1, 1)) -> MetricValue:
    """``numerator / denominator * scale[0] / scale[1]`` with a single rounding division."""
    value = ratio(numerator * scale[0], denominator * scale[1])
    return MetricValue(value, numerator, denominator, counts, None if value is not None else empty,
                       proportion)


def _written_off_by(outcomes: Outcomes, opening: _dt.date, closing: _dt.date,
                    closing_rows: Mapping[str, Snapshot]) -> Callable[[str], bool]:
    """Whether an account was written off between the opening and the closing snapshot: flagged in the
    closing snapshot, or (when the write-offs table is given) written off in between."""
    dates = outcomes.written_off_on() if outcomes.writeoffs is not None else {}

    def written_off(account_id: str) -> bool:
        row = closing_rows.get(account_id)
        if row is not None and row.written_off:
            return True
        day = dates.get(account_id)
        return day is not None and opening < day <= closing

    return written_off


def _utc_day(at: _dt.datetime) -> _dt.date:
    return at.astimezone(_dt.UTC).date()


def _reaches_debtor(outcome: str, subject: str, outcomes: frozenset[str]) -> bool:
    return outcome in outcomes and subject != "third_party"


def _months(period: Period) -> Decimal:
    """Calendar months in a period that runs from the first to the last day of months; otherwise its days
    in twelfths of a 365-day year."""
    following = period.end + _dt.timedelta(days=1)
    if period.start.day == 1 and following.day == 1:
        return Decimal((following.year - period.start.year) * 12 + following.month - period.start.month)
    return Decimal(period.days) * 12 / YEAR_DAYS


def _basis(params: Params) -> str:
    return str(params.get("basis", "balance"))


# ---------------------------------------------------------------------------------------------------------
# balance-based metrics


def recovery_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                  params: Params) -> MetricValue:
    opening, accounts = cohort(outcomes, period, account_filter)
    balance = total([s.balance for s in accounts.values()])
    payments = [p for p in outcomes.payments_between(period.start, period.end) if p.account_id in accounts]
    payers = len({p.account_id for p in payments})
    return _value(total([p.amount for p in payments]), balance,
                  {"accounts": len(accounts), "accounts_paying": payers, "payments": len(payments)},
                  "the accounts measured have no balance at the start of the period",
                  Proportion(payers, len(accounts), "accounts paying"))


def roll_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
              params: Params) -> MetricValue:
    scheme = BucketScheme.from_params(params)
    opening, accounts = cohort(outcomes, period, account_filter)
    closing, closing_rows = closing_snapshot(outcomes, period)
    written_off = _written_off_by(outcomes, opening, closing, closing_rows)
    rolled = []
    for account_id, start in accounts.items():
        end = closing_rows.get(account_id)
        if written_off(account_id) or (end is not None and scheme.index(end.dpd) > scheme.index(start.dpd)):
            rolled.append(start)
    counts = {"accounts": len(accounts), "accounts_rolled": len(rolled)}
    proportion = Proportion(len(rolled), len(accounts), "accounts rolled")
    if _basis(params) == "count":
        return _value(Decimal(len(rolled)), Decimal(len(accounts)), counts, "no account is measured",
                      proportion)
    return _value(total([s.balance for s in rolled]), total([s.balance for s in accounts.values()]), counts,
                  "the accounts measured have no balance at the start of the period", proportion)


def cure_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
              params: Params) -> MetricValue:
    opening, accounts = cohort(outcomes, period, account_filter)
    closing, closing_rows = closing_snapshot(outcomes, period)
    written_off = _written_off_by(outcomes, opening, closing, closing_rows)
    delinquent = {a: s for a, s in accounts.items() if s.dpd > 0}
    cured = [s for a, s in delinquent.items() if not written_off(a)
             and (closing_rows.get(a) is None or closing_rows[a].dpd <= 0)]
    counts = {"accounts_delinquent": len(delinquent), "accounts_cured": len(cured)}
    proportion = Proportion(len(cured), len(delinquent), "accounts cured")
    if _basis(params) == "count":
        return _value(Decimal(len(cured)), Decimal(len(delinquent)), counts,
                      "no delinquent account is measured", proportion)
    return _value(total([s.balance for s in cured]), total([s.balance for s in delinquent.values()]), counts,
                  "the delinquent accounts measured have no balance", proportion)


def repayment_agreement_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                             params: Params) -> MetricValue:
    opening, accounts = cohort(outcomes, period, account_filter)
    delinquent = {a for a, s in accounts.items() if s.dpd > 0}
    started = {a.account_id for a in outcomes.require("agreements") if period.contains(a.start)}
    agreed = len(delinquent & started)
    return _value(Decimal(agreed), Decimal(len(delinquent)),
                  {"accounts_delinquent": len(delinquent), "accounts_with_agreement": agreed},
                  "no delinquent account is measured",
                  Proportion(agreed, len(delinquent), "accounts agreeing"))


def collection_cycle_time(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                          params: Params) -> MetricValue:
    opening, accounts = cohort(outcomes, period, account_filter)
    closing, _ = closing_snapshot(outcomes, period)
    dates = outcomes.snapshot_dates_between(opening + _dt.timedelta(days=1), closing)
    written_on = outcomes.written_off_on() if outcomes.writeoffs is not None else {}
    days: list[int] = []
    cured = written = 0
    for account_id, start in accounts.items():
        if start.dpd <= 0:
            continue
        resolved: tuple[_dt.date, str] | None = None
        for day in dates:
            row = outcomes.snapshot(day).get(account_id)
            if row is not None and row.written_off:
                resolved = (day, "written_off")
            elif row is None:
                off = written_on.get(account_id)
                resolved = (day, "written_off" if off is not None and opening < off <= day else "cured")
            elif row.dpd <= 0:
                resolved = (day, "cured")
            if resolved is not None:
                break
        if resolved is None:
            continue
        seen_on, how = resolved
        when = seen_on
        if how == "written_off":
            written += 1
            off = written_on.get(account_id)
            if off is not None and opening < off <= seen_on:
                when = off
        else:
            cured += 1
            if outcomes.payments is not None:
                paid = outcomes.payments_for(account_id, opening + _dt.timedelta(days=1), seen_on)
                if paid:
                    when = max(p.date for p in paid)
        # the oldest unpaid amount fell due `dpd` days before the opening snapshot
        days.append((when - (opening - _dt.timedelta(days=start.dpd))).days)
    numerator = Decimal(sum(days))
    return _value(numerator, Decimal(len(days)),
                  {"accounts_resolved": len(days), "accounts_cured": cured, "accounts_written_off": written},
                  "no delinquent account measured was cured or written off in the period")


def _average_book(outcomes: Outcomes, period: Period,
                  account_filter: AccountFilter) -> tuple[Decimal, int, Callable[[str], bool]]:
    opening, _ = opening_snapshot(outcomes, period)
    closing, _ = closing_snapshot(outcomes, period)
    keep = selector(outcomes, period, account_filter)
    days = outcomes.snapshot_dates_between(opening, closing)
    totals = [total([s.balance for a, s in outcomes.snapshot(day).items() if s.on_book and keep(a)])
              for day in days]
    return total(totals) / len(days), len(days), keep


def bad_debt_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                  params: Params) -> MetricValue:
    average, snapshots, keep = _average_book(outcomes, period, account_filter)
    writeoffs = [w for w in outcomes.writeoffs_between(period.start, period.end) if keep(w.account_id)]
    return _value(total([w.amount for w in writeoffs]), average,
                  {"writeoffs": len(writeoffs), "snapshots": snapshots},
                  "the book measured has no balance in the period", scale=(YEAR_DAYS, period.days))


def net_charge_off_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                        params: Params) -> MetricValue:
    average, snapshots, keep = _average_book(outcomes, period, account_filter)
    writeoffs = [w for w in outcomes.writeoffs_between(period.start, period.end) if keep(w.account_id)]
    written_on = outcomes.written_off_on()
    recoveries = [p for p in outcomes.payments_between(period.start, period.end)
                  if keep(p.account_id) and p.account_id in written_on and written_on[p.account_id] < p.date]
    net = total([w.amount for w in writeoffs]) - total([p.amount for p in recoveries])
    return _value(net, average,
                  {"writeoffs": len(writeoffs), "recoveries": len(recoveries), "snapshots": snapshots},
                  "the book measured has no balance in the period", scale=(YEAR_DAYS, period.days))


def portfolio_at_risk(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                      params: Params) -> MetricValue:
    days = int(params.get("days", 30))
    closing, rows = closing_snapshot(outcomes, period)
    book = [s for a, s in rows.items() if s.on_book and account_filter.account(a, closing)]
    at_risk = [s for s in book if s.dpd > days]
    counts = {"accounts": len(book), "accounts_at_risk": len(at_risk)}
    proportion = Proportion(len(at_risk), len(book), f"accounts more than {days} days past due")
    if _basis(params) == "count":
        return _value(Decimal(len(at_risk)), Decimal(len(book)), counts, "no account is measured", proportion)
    return _value(total([s.balance for s in at_risk]), total([s.balance for s in book]), counts,
                  "the accounts measured have no balance at the end of the period", proportion)


# ---------------------------------------------------------------------------------------------------------
# book totals and credit sales


def _credit_sales(outcomes: Outcomes, period: Period) -> Decimal:
    return total([s.credit_sales for s in outcomes.require("sales") if period.contains(s.date)])


def collection_effectiveness_index(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                                   params: Params) -> MetricValue:
    variant = params.get("variant")
    if variant not in ("total", "average"):
        raise NoData("params.variant must be 'total' or 'average'")
    _, opening_rows = opening_snapshot(outcomes, period)
    _, closing_rows = closing_snapshot(outcomes, period)
    beginning = total([s.balance for s in opening_rows.values() if s.on_book])
    ending = total([s.balance for s in closing_rows.values() if s.on_book])
    ending_current = total([s.balance for s in closing_rows.values() if s.on_book and s.dpd <= 0])
    sales = _credit_sales(outcomes, period)
    months = _months(period)
    credit = sales if variant == "total" else sales / months
    counts = {"accounts_opening": sum(1 for s in opening_rows.values() if s.on_book),
              "accounts_closing": sum(1 for s in closing_rows.values() if s.on_book)}
    return _value(beginning + credit - ending, beginning + credit - ending_current, counts,
                  "nothing was collectable in the period")


def days_sales_outstanding(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                           params: Params) -> MetricValue:
    _, closing_rows = closing_snapshot(outcomes, period)
    receivables = total([s.balance for s in closing_rows.values() if s.on_book])
    return _value(receivables, _credit_sales(outcomes, period),
                  {"accounts": sum(1 for s in closing_rows.values() if s.on_book)},
                  "there were no credit sales in the period", scale=(period.days, 1))


def cost_per_unit_collected(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                            params: Params) -> MetricValue:
    costs = [c for c in outcomes.require("costs")
             if period.contains(c.date) and account_filter.row({"team": c.team}, c.date)]
    keep = selector(outcomes, period, account_filter)
    payments = [p for p in outcomes.payments_between(period.start, period.end) if keep(p.account_id)]
    return _value(total([c.amount for c in costs]), total([p.amount for p in payments]),
                  {"cost_lines": len(costs), "payments": len(payments)},
                  "nothing was collected in the period")


# ---------------------------------------------------------------------------------------------------------
# contact-based metrics


def right_party_contact_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                             params: Params) -> MetricValue:
    channels = frozenset(params.get("channels", ["phone"]))
    reached = frozenset(params.get("outcomes", RIGHT_PARTY_OUTCOMES))
    keep = selector(outcomes, period, account_filter)
    attempts = [e for e in outcomes.require("contacts") if e.direction == "outbound" and e.channel in channels
                and period.contains(_utc_day(e.at)) and keep(e.account_id)]
    hits = [e for e in attempts if _reaches_debtor(e.outcome, e.subject, reached)]
    if params.get("per", "attempt") == "account":
        tried = {e.account_id for e in attempts}
        reached_accounts = {e.account_id for e in hits}
        return _value(Decimal(len(reached_accounts)), Decimal(len(tried)),
                      {"accounts_attempted": len(tried), "accounts_reached": len(reached_accounts)},
                      "no account was attempted in the period",
                      Proportion(len(reached_accounts), len(tried), "accounts reached"))
    return _value(Decimal(len(hits)), Decimal(len(attempts)),
                  {"attempts": len(attempts), "right_party_contacts": len(hits)}, "no attempt in the period",
                  Proportion(len(hits), len(attempts), "attempts reaching the debtor"))


def promise_to_pay_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                        params: Params) -> MetricValue:
    channels = frozenset(params.get("channels", ["phone"]))
    reached = frozenset(params.get("outcomes", RIGHT_PARTY_OUTCOMES))
    any_direction = params.get("direction", "any") == "any"
    keep = selector(outcomes, period, account_filter)
    contacts = [e for e in outcomes.require("contacts") if e.channel in channels
                and (any_direction or e.direction == "outbound") and period.contains(_utc_day(e.at))
                and _reaches_debtor(e.outcome, e.subject, reached) and keep(e.account_id)]
    promises = [p for p in outcomes.require("promises")
                if period.contains(p.promised_on) and keep(p.account_id)]
    proportion = Proportion(len(promises), len(contacts), "right-party contacts with a promise") \
        if len(promises) <= len(contacts) else None
    return _value(Decimal(len(promises)), Decimal(len(contacts)),
                  {"promises": len(promises), "right_party_contacts": len(contacts)},
                  "no right-party contact in the period", proportion)


def promise_kept_rate(outcomes: Outcomes, period: Period, account_filter: AccountFilter,
                      params: Params) -> MetricValue:
    tolerance = Decimal(str(params.get("tolerance", 0)))
    grace = _dt.timedelta(days=int(params.get("grace_days", 0)))
    keep = selector(outcomes, period, account_filter)
    due = [p for p in outcomes.require("promises") if period.contains(p.due) and keep(p.account_id)]
    kept = []
    for promise in due:
        paid = total([p.amount for p in outcomes.payments_for(promise.account_id, promise.promised_on,
                                                               promise.due + grace)])
        if paid >= promise.amount * (1 - tolerance):
            kept.append(promise)
    counts = {"promises_due": len(due), "promises_kept": len(kept)}
    proportion = Proportion(len(kept), len(due), "promises kept")
    if params.get("basis", "count") == "amount":
        return _value(total([p.amount for p in kept]), total([p.amount for p in due]), counts,
                      "no promise fell due in the period", proportion)
    return _value(Decimal(len(kept)), Decimal(len(due)), counts, "no promise fell due in the period",
                  proportion)


# ---------------------------------------------------------------------------------------------------------
# the catalog

BUILTIN_METRICS: tuple[Metric, ...] = (
    Metric("recovery_rate", "Cash recovered from the accounts measured, as a share of their opening balance.",
           "cash collected in the period from the cohort / the cohort's balance at the opening snapshot "
           "(the cohort: accounts on the book at the period start that the where filter selects, such as "
           "bucket == \"1-30\")",
           compute=recovery_rate, params_schema=_params({})),
    Metric("roll_rate", "Share of the opening balance (or accounts) that rolled to a worse bucket.",
           "opening balance of cohort accounts in a worse bucket at the closing snapshot than at the "
           "opening, or written off in between / the cohort's opening balance (basis: count counts "
           "accounts instead)",
           higher_is_better=False, compute=roll_rate,
           params_schema=_params({"basis": _BASIS, "buckets": _BUCKETS})),
    Metric("cure_rate", "Share of the delinquent opening balance (or accounts) that returned to current.",
           "opening balance of delinquent cohort accounts that are current at the closing snapshot, or left "
           "the book without a write-off / the delinquent cohort's opening balance (basis: count counts "
           "accounts instead)",
           compute=cure_rate, params_schema=_params({"basis": _BASIS})),
    Metric("right_party_contact_rate",
           "Share of outbound call attempts (or attempted accounts) that reached the debtor.",
           "outbound attempts in the period on the channels whose outcome reaches the debtor "
           "(right_party_contact, conversation or promise_to_pay, not with a third party) / outbound "
           "attempts on the channels (per: account counts accounts instead)",
           compute=right_party_contact_rate,
           params_schema=_params({"channels": _CHANNELS, "outcomes": _OUTCOMES,
                                  "per": {"enum": ["attempt", "account"],
                                          "description": "attempt (default) or account."}})),
    Metric("promise_to_pay_rate", "Promises to pay made per right-party contact.",
           "promises made in the period / contacts in the period that reached the debtor",
           compute=promise_to_pay_rate,
           params_schema=_params({"channels": _CHANNELS, "outcomes": _OUTCOMES,
                                  "direction": {
                                      "enum": ["any", "outbound"],
                                      "description": "any (default): inbound contacts count too."}})),
    Metric("promise_kept_rate", "Share of the promises due in the period that were kept.",
           "promises due in the period whose account paid, from the promise date to the due date plus "
           "grace_days, at least the amount times (1 - tolerance) / promises due in the period",
           compute=promise_kept_rate,
           params_schema=_params({
               "tolerance": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                             "description": "Share of the promised amount that may be missing (default 0)."},
               "grace_days": {"type": "integer", "minimum": 0,
                              "description": "Days after the due date a payment still counts (default 0)."},
               "basis": {"enum": ["count", "amount"],
                         "description": "count (default) or amount: promised amounts instead of "
                                        "promises."}})),
    Metric("repayment_agreement_rate", "Share of delinquent accounts placed on a repayment agreement.",
           "delinquent cohort accounts with a repayment agreement starting in the period / delinquent cohort "
           "accounts",
           compute=repayment_agreement_rate, params_schema=_params({})),
    Metric("collection_cycle_time", "Average days from the missed due date to cure or write-off.",
           "mean, over the delinquent cohort accounts resolved (cured or written off) by the closing "
           "snapshot, of the days from the missed due date (opening date - opening dpd) to the resolution "
           "date (the last payment before the cure was seen, the write-off date, else the snapshot date)",
           unit="days", higher_is_better=False, compute=collection_cycle_time, params_schema=_params({})),
    Metric("bad_debt_rate", "Balances written off as a share of the average book, annualised.",
           "write-offs in the period / average on-book balance over the snapshots from the opening to the "
           "closing * 365 / days in the period",
           higher_is_better=False, compute=bad_debt_rate, params_schema=_params({})),
    Metric("net_charge_off_rate", "Write-offs net of recoveries as a share of the average book, annualised.",
           "(write-offs in the period - payments in the period on accounts written off before the payment) / "
           "average on-book balance * 365 / days in the period",
           higher_is_better=False, compute=net_charge_off_rate, params_schema=_params({})),
    Metric("portfolio_at_risk",
           "Share of the book more than n days past due at the end of the period (PAR-n).",
           "balance of on-book accounts with dpd > days at the closing snapshot / on-book balance at the "
           "closing snapshot (the where filter is read on the closing snapshot)",
           higher_is_better=False, compute=portfolio_at_risk,
           params_schema=_params({"days": {"type": "integer", "minimum": 0,
                                           "description": "n of PAR-n: days past due (default 30)."},
                                  "basis": _BASIS})),
    Metric("collection_effectiveness_index", "How much of what could be collected was collected.",
           "(opening receivables + S - closing receivables) / (opening receivables + S - closing current "
           "receivables), S being the credit sales of the period (variant: total) or the credit sales per "
           "month of the period (variant: average)",
           compute=collection_effectiveness_index, filter_names=frozenset(),
           params_schema=_params({"variant": {
               "enum": ["total", "average"],
               "description": "total (the period's credit sales) or average (its credit sales per month, "
                              "divided by the number of months in the period); required."}},
               required=("variant",))),
    Metric("days_sales_outstanding", "Average days to collect receivables.",
           "closing receivables / credit sales in the period * days in the period", unit="days",
           higher_is_better=False, compute=days_sales_outstanding, filter_names=frozenset(),
           params_schema=_params({})),
    Metric("cost_per_unit_collected", "Collection cost per currency unit recovered.",
           "collection costs in the period / cash collected in the period (a where filter may use team only)",
           unit="currency", higher_is_better=False, compute=cost_per_unit_collected,
           filter_names=frozenset({"team"}), params_schema=_params({})),
)


@hookimpl
def collectrules_register_metrics(register: Callable[[Metric], None]) -> None:
    for metric in BUILTIN_METRICS:
        register(metric)
