"""The built-in metrics: every worked example of docs/kpis.md, on the tiny book, through a policy's KPIs.

The tiny book (tests/kpi/data/tiny-book) is measured over July 2026; the expected values are worked out by
hand in the docs. Further tests cover the parts the examples do not: params schemas, missing tables,
quarters, metrics that take no `where`, and a metric registered by a plugin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectrules.builtin.metrics import BUILTIN_METRICS
from collectrules.engine.program import compile_policy
from collectrules.errors import PolicySchemaError
from collectrules.hookspecs import hookimpl
from collectrules.kpi.metrics import EVERY_ACCOUNT, MetricValue, cohort, compute_metric, ratio
from collectrules.kpi.outcomes import Outcomes, Sale, Snapshot, load_outcomes
from collectrules.kpi.periods import parse_period
from collectrules.kpi.targets import KpiEvaluator
from collectrules.plugins import get_plugin_manager
from collectrules.policy.check import check_policy_file, load_policy
from collectrules.registry import Metric, Registry, registry_from

JULY = parse_period("2026-07")

#: (KPI id, metric, where, params, expected value): the worked examples of docs/kpis.md
WORKED_EXAMPLES: list[tuple[str, str, str | None, dict[str, Any], Decimal]] = [
    ("recovery-1-30", "recovery_rate", 'bucket == "1-30"', {}, Decimal("0.75")),
    ("recovery-all", "recovery_rate", None, {}, Decimal("0.275")),
    ("roll", "roll_rate", None, {}, Decimal("0.2")),
    ("roll-count", "roll_rate", None, {"basis": "count"}, Decimal("0.4")),
    ("cure", "cure_rate", None, {}, Decimal("0.75")),
    ("cure-count", "cure_rate", None, {"basis": "count"}, Decimal("0.5")),
    ("rpc", "right_party_contact_rate", None, {}, Decimal("0.5")),
    ("rpc-accounts", "right_party_contact_rate", None, {"per": "account"}, Decimal("0.75")),
    ("ptp", "promise_to_pay_rate", None, {}, Decimal("0.5")),
    ("ptp-outbound", "promise_to_pay_rate", None, {"direction": "outbound"}, Decimal("0.75")),
    ("kept", "promise_kept_rate", None, {}, Decimal("0.25")),
    ("kept-tolerance", "promise_kept_rate", None, {"tolerance": 0.05}, Decimal("0.5")),
    ("kept-grace", "promise_kept_rate", None, {"tolerance": 0.05, "grace_days": 1}, Decimal("0.75")),
    ("agreements", "repayment_agreement_rate", None, {}, Decimal("0.25")),
    ("cycle-time", "collection_cycle_time", None, {}, Decimal("107")),
    ("bad-debt", "bad_debt_rate", None, {}, Decimal(1000 * 365) / Decimal(8125 * 31)),
    ("net-charge-off", "net_charge_off_rate", None, {}, Decimal(950 * 365) / Decimal(8125 * 31)),
    ("par-30", "portfolio_at_risk", None, {"days": 30}, Decimal("0.12")),
    ("par-60", "portfolio_at_risk", None, {"days": 60}, Decimal("0")),
    ("cei", "collection_effectiveness_index", None, {"variant": "total"}, Decimal("0.9")),
    ("cei-average", "collection_effectiveness_index", None, {"variant": "average"}, Decimal("0.9")),
    ("dso", "days_sales_outstanding", None, {}, Decimal(6250 * 31) / Decimal(3000)),
    ("cost", "cost_per_unit_collected", None, {}, Decimal("0.15")),
    ("cost-early", "cost_per_unit_collected", 'team == "early"', {}, Decimal("0.1")),
]


def _policy_text(kpis: list[dict[str, Any]]) -> str:
    document = {
        "apiVersion": "collectrules/v1", "kind": "Policy", "metadata": {"name": "examples", "version": "1"},
        "fields": {"dpd": "int", "balance": "decimal"},
        "segments": {"rules": [{"id": "early", "when": "dpd between 1 and 30"}], "default": "other"},
        "kpis": kpis,
    }
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory, tiny_book: Outcomes) -> KpiEvaluator:
    kpis = []
    for kpi_id, metric, where, params, _ in WORKED_EXAMPLES:
        kpi: dict[str, Any] = {"id": kpi_id, "metric": metric, "target": ">= 0", "period": "month"}
        if where is not None:
            kpi["where"] = where
        if params:
            kpi["params"] = params
        kpis.append(kpi)
    path = tmp_path_factory.mktemp("examples") / "examples.yaml"
    path.write_text(_policy_text(kpis), encoding="utf-8")
    return KpiEvaluator(compile_policy(load_policy(path)), tiny_book)


@pytest.mark.parametrize(("kpi_id", "metric", "where", "params", "expected"), WORKED_EXAMPLES,
                         ids=[e[0] for e in WORKED_EXAMPLES])
def test_worked_example(examples: KpiEvaluator, kpi_id: str, metric: str, where: str | None,
                        params: dict[str, Any], expected: Decimal) -> None:
    kpi = next(k for k in examples.policy.kpis if k.id == kpi_id)
    value = examples.value(kpi, JULY)
    assert value.detail is None
    assert value.value == expected


def test_worked_examples_show_what_they_were_computed_from(examples: KpiEvaluator) -> None:
    by_id = {k.id: k for k in examples.policy.kpis}
    recovery = examples.value(by_id["recovery-1-30"], JULY)
    assert (recovery.numerator, recovery.denominator) == (Decimal("2250"), Decimal("3000"))
    assert dict(recovery.counts) == {"accounts": 2, "accounts_paying": 2, "payments": 2}
    assert (recovery.proportion.successes, recovery.proportion.trials) == (2, 2)  # type: ignore[union-attr]
    cycle = examples.value(by_id["cycle-time"], JULY)
    assert (cycle.numerator, cycle.denominator) == (Decimal(25 + 65 + 231), Decimal(3))
    assert dict(cycle.counts) == {"accounts_resolved": 3, "accounts_cured": 2, "accounts_written_off": 1}
    kept = examples.value(by_id["kept-grace"], JULY)
    assert dict(kept.counts) == {"promises_due": 4, "promises_kept": 3}


def test_every_builtin_metric_computes_and_checks_its_params() -> None:
    registry = Registry.builtin_only()
    assert sorted(registry.metrics) == sorted(m.name for m in BUILTIN_METRICS)
    for metric in registry.metrics.values():
        assert metric.compute is not None, metric.name
        assert metric.params_schema is not None, metric.name
    documented = Path(__file__).resolve().parents[2].joinpath("docs", "kpis.md").read_text(encoding="utf-8")
    assert all(f"### {m.name}\n" in documented for m in BUILTIN_METRICS)


def test_a_table_the_metric_needs_is_reported_missing(tmp_path: Path) -> None:
    (tmp_path / "balances.csv").write_text(
        (Path(__file__).parent / "data" / "tiny-book" / "balances.csv").read_text(encoding="utf-8"),
        encoding="utf-8")
    book = load_outcomes(tmp_path)
    metric = Registry.builtin_only().metrics["promise_kept_rate"]
    value = compute_metric(metric, book, JULY)
    assert value.value is None
    assert value.detail == "needs promises to pay (promises.csv, .jsonl or .parquet in the outcomes folder)"
    # roll rate needs nothing but balances
    assert compute_metric(Registry.builtin_only().metrics["roll_rate"], book, JULY).value == Decimal("0.2")


def test_a_period_without_an_opening_snapshot_has_no_data(tiny_book: Outcomes) -> None:
    metric = Registry.builtin_only().metrics["recovery_rate"]
    value = compute_metric(metric, tiny_book, parse_period("2026-06"))
    assert value.value is None
    assert value.detail == ("no balance snapshot on or before 2026-05-31, the day before the period starts")
    august = compute_metric(Registry.builtin_only().metrics["roll_rate"], tiny_book, parse_period("2026-08"))
    assert august.detail == "no balance snapshot from 2026-08-01 to 2026-08-31"


def test_the_average_variant_of_cei_divides_credit_sales_by_the_months() -> None:
    def snapshot(day: str, balance: str, dpd: int) -> Snapshot:
        return Snapshot("A1", dt.date.fromisoformat(day), Decimal(balance), dpd, False)

    book = Outcomes([snapshot("2026-06-30", "10000", 0), snapshot("2026-09-30", "7000", 40)],
                    sales=[Sale(dt.date(2026, 8, 1), Decimal("3000"))])
    metric = Registry.builtin_only().metrics["collection_effectiveness_index"]
    q3 = parse_period("2026-Q3")
    # total: (10000 + 3000 - 7000) / (10000 + 3000 - 0); average: S = 3000 / 3 months
    total = compute_metric(metric, book, q3, params={"variant": "total"})
    average = compute_metric(metric, book, q3, params={"variant": "average"})
    assert (total.value, average.value) == (Decimal(6000) / Decimal(13000), Decimal(4000) / Decimal(11000))


def _check(tmp_path: Path, kpi: dict[str, Any]) -> list[str]:
    path = tmp_path / "policy.yaml"
    path.write_text(_policy_text([kpi]), encoding="utf-8")
    return [d.render() for d in check_policy_file(path).errors]


def test_cei_without_its_variant_is_a_located_error(tmp_path: Path) -> None:
    errors = _check(tmp_path, {"id": "cei", "metric": "collection_effectiveness_index", "target": ">= 80%",
                               "period": "quarter"})
    assert errors == [
        f"{tmp_path / 'policy.yaml'}:15:3: error[CR202]: missing required key 'variant' in kpis/0/params\n"
        "    - id: cei\n"
        "      ^\n"
        "  hint: variant: total (the period's credit sales) or average (its credit sales per month, divided "
        "by the number of months in the period); required"]
    errors = _check(tmp_path, {"id": "cei", "metric": "collection_effectiveness_index", "target": ">= 80%",
                               "period": "quarter", "params": {"variant": "monthly"}})
    assert [e.split("\n")[0] for e in errors] == [
        f"{tmp_path / 'policy.yaml'}:20:14: error[CR204]: 'monthly' is not allowed for "
        "kpis/0/params/variant; expected one of: total, average"]


def test_params_that_do_not_fit_the_metric_are_located_errors(tmp_path: Path) -> None:
    errors = _check(tmp_path, {"id": "kept", "metric": "promise_kept_rate", "target": ">= 70%",
                               "period": "month", "params": {"tolerance": 1.5, "grace": 2}})
    assert [e.split("\n")[0] for e in errors] == [
        f"{tmp_path / 'policy.yaml'}:20:16: error[CR207]: kpis/0/params/tolerance: 1.5 is greater than or "
        "equal to the maximum of 1",
        f"{tmp_path / 'policy.yaml'}:21:5: error[CR201]: unknown key 'grace' in kpis/0/params"]
    assert errors[1].endswith("hint: did you mean 'grace_days'?")


def test_metrics_on_book_totals_limit_where(tmp_path: Path) -> None:
    errors = _check(tmp_path, {"id": "dso", "metric": "days_sales_outstanding", "target": "<= 45",
                               "period": "month", "where": 'bucket == "1-30"'})
    assert [e.split("\n")[0].split(": ", 1)[1] for e in errors] == [
        "error[CR402]: metric 'days_sales_outstanding' is measured on book totals, not per account, so it "
        "cannot have a where filter"]
    errors = _check(tmp_path, {"id": "cost", "metric": "cost_per_unit_collected", "target": "<= 0.1",
                               "period": "month", "where": 'team == "early" and dpd > 30'})
    assert len(errors) == 1
    assert "error[CR402]: metric 'cost_per_unit_collected' can only be filtered by team, not by dpd" \
        in errors[0]
    # the caret points at the name inside the expression
    assert errors[0].split("\n")[2].index("^") == errors[0].split("\n")[1].index("dpd")


class _AverageBalancePlugin:
    """A plugin metric, written as docs/kpis.md shows."""

    @staticmethod
    def compute(outcomes: Outcomes, period: Any, account_filter: Any, params: Any) -> MetricValue:
        _, accounts = cohort(outcomes, period, account_filter)
        total = sum((s.balance for s in accounts.values()), Decimal(0))
        return MetricValue(ratio(total, Decimal(len(accounts))), total, Decimal(len(accounts)),
                           {"accounts": len(accounts)})

    @hookimpl
    def collectrules_register_metrics(self, register: Callable[[Metric], None]) -> None:
        register(Metric("average_opening_balance", "Average balance of the accounts measured.",
                        "cohort balance at the opening snapshot / cohort accounts", unit="currency",
                        compute=self.compute,
                        params_schema={"type": "object", "additionalProperties": False}))
        register(Metric("letters_per_cure", "Letters sent per cured account.", "letters / cures",
                        unit="count"))


def test_a_plugin_metric_is_measured_like_a_builtin_one(tmp_path: Path, tiny_book: Outcomes) -> None:
    pm = get_plugin_manager(autoload=False)
    pm.register(_AverageBalancePlugin(), name="average-balance")
    registry = registry_from(pm)
    assert registry.metrics["average_opening_balance"].origin == "average-balance"
    path = tmp_path / "policy.yaml"
    path.write_text(_policy_text([
        {"id": "average-1-30", "metric": "average_opening_balance", "where": 'bucket == "1-30"',
         "target": ">= 1000", "period": "month"},
        {"id": "letters", "metric": "letters_per_cure", "target": "<= 3", "period": "month"}]),
        encoding="utf-8")
    with pytest.raises(PolicySchemaError):
        load_policy(path)  # the built-in registry does not know the plugin's metrics
    evaluator = KpiEvaluator(compile_policy(load_policy(path, registry), registry), tiny_book)
    average, letters = evaluator.policy.kpis
    assert evaluator.value(average, JULY).value == Decimal("1500")  # (2000 + 1000) / 2
    assert evaluator.value(letters, JULY) == MetricValue(
        None, detail="metric 'letters_per_cure' (from plugin 'average-balance') does not compute values")


def test_every_account_filter_keeps_records_of_accounts_not_on_the_book(tiny_book: Outcomes) -> None:
    # A6 was written off in May: its July payment counts for cost per unit collected without a filter
    metric = Registry.builtin_only().metrics["cost_per_unit_collected"]
    value = compute_metric(metric, tiny_book, JULY, EVERY_ACCOUNT)
    assert (value.numerator, value.denominator) == (Decimal("420"), Decimal("2800"))
