"""Built-in KPI metrics with their pinned formulas."""

from __future__ import annotations

from collections.abc import Callable

from ..registry import Metric
from . import hookimpl

BUILTIN_METRICS: tuple[Metric, ...] = (
    Metric("recovery_rate", "Cash recovered from accounts in a bucket, as a share of their starting balance.",
           "cash collected in the period from accounts in bucket b at period start / their balance at period start"),
    Metric("roll_rate", "Share of balance (or accounts) that rolled to the next delinquency bucket.",
           "balance in bucket b at period start that is in bucket b+1 at period end / balance in b at period start"),
    Metric("cure_rate", "Share of delinquent balance (or accounts) that returned to current.",
           "balance delinquent at period start that is current at period end / balance delinquent at period start"),
    Metric("right_party_contact_rate", "Share of call attempts that reached the debtor.",
           "outbound attempts with outcome right_party_contact or conversation / outbound call attempts"),
    Metric("promise_to_pay_rate", "Share of right-party contacts that produced a promise to pay.",
           "promises made in the period / right-party contacts in the period"),
    Metric("promise_kept_rate", "Share of promises due in the period that were kept.",
           "promises due in the period paid in full (within tolerance and grace days) / promises due"),
    Metric("repayment_agreement_rate", "Share of delinquent accounts placed on a repayment agreement.",
           "accounts with a repayment agreement started in the period / delinquent accounts at period start"),
    Metric("collection_cycle_time", "Average days from delinquency to cure or resolution.",
           "mean over accounts resolved in the period of (resolution date - delinquency start date)",
           unit="days", higher_is_better=False),
    Metric("bad_debt_rate", "Written-off balance as a share of the average portfolio, annualised.",
           "write-offs in the period / average balance in the period * (365 / days in period)",
           higher_is_better=False),
    Metric("net_charge_off_rate", "Write-offs net of recoveries as a share of the average portfolio, annualised.",
           "(write-offs - recoveries on written-off accounts) / average balance * (365 / days in period)",
           higher_is_better=False),
    Metric("portfolio_at_risk", "Share of the portfolio more than n days past due (PAR-n, n from params).",
           "balance of accounts with dpd > n at period end / total balance at period end", higher_is_better=False),
    Metric("collection_effectiveness_index", "How much of what could be collected was collected.",
           "(opening receivables + credit sales - closing receivables) / (opening receivables + credit sales "
           "- closing current receivables); the credit-sales variant is a required parameter"),
    Metric("days_sales_outstanding", "Average days to collect receivables.",
           "closing receivables / credit sales in the period * days in period", unit="days",
           higher_is_better=False),
    Metric("cost_per_unit_collected", "Collection cost per currency unit recovered.",
           "collection costs in the period / cash collected in the period", unit="currency",
           higher_is_better=False),
)


@hookimpl
def collectrules_register_metrics(register: Callable[[Metric], None]) -> None:
    for metric in BUILTIN_METRICS:
        register(metric)
