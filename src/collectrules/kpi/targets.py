"""Judging a policy's KPI targets against outcome data.

For a report period (``--period 2026-Q3``) every KPI is measured over the periods of its own kind that end
inside the report period: a monthly KPI over July, August and September, a quarterly one over the quarter;
a KPI whose periods are longer than the report's (yearly, in a quarterly report) is measured over its
period up to the report's last day ("to date"). Each measurement is *met*, *missed* or *no data*; the
trend is the same metric over the four periods before the first measurement.

The ``where`` filter reads an account as it stood on a balance snapshot (:class:`AccountStates`): the policy
is evaluated for the account as of midnight UTC at the end of the snapshot's date, which gives its derived
names and its ``segment``; the snapshot adds ``dpd``, ``balance``, ``bucket``, ``written_off`` and
``team`` (see :func:`collectrules.policy.model.kpi_names`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from ..backends.rows import ExprRuntimeError, compile_expr
from ..engine.account import Account, AccountContext
from ..policy import model as M
from .metrics import EVERY_ACCOUNT, AccountFilter, BucketScheme, MetricValue, compute_metric
from .outcomes import Outcomes
from .periods import Period, period_of, periods_ending_in

if TYPE_CHECKING:
    from ..engine.program import Program
    from ..registry import Metric

__all__ = ["TREND_PERIODS", "AccountStates", "ArmFilter", "KpiEvaluator", "KpiResult", "Measurement",
           "WhereFilter", "compare", "evaluate_kpis"]

#: how many periods before the first measurement the trend shows
TREND_PERIODS: Final[int] = 4

_COMPARE: Final[dict[str, Any]] = {
    ">=": Decimal.__ge__, "<=": Decimal.__le__, ">": Decimal.__gt__, "<": Decimal.__lt__,
    "==": Decimal.__eq__,
}


def compare(op: str, actual: Decimal, threshold: Decimal) -> bool:
    """Whether ``actual op threshold`` holds (``op`` one of ``>= <= > < ==``)."""
    return bool(_COMPARE[op](actual, threshold))


def _as_of(day: _dt.date) -> _dt.datetime:
    """Midnight UTC at the end of ``day``: when a close-of-day snapshot is read."""
    return _dt.datetime.combine(day + _dt.timedelta(days=1), _dt.time(), tzinfo=_dt.UTC)


class _NullValues(dict[str, Any]):
    """Values of a record that is not an account: every name it does not have is null."""

    def __missing__(self, key: str) -> None:
        return None


class AccountStates:
    """Accounts as they stood on balance snapshots, evaluated with the policy (cached by account and date)."""

    def __init__(self, program: Program, outcomes: Outcomes) -> None:
        self.program = program
        self.outcomes = outcomes
        policy = program.policy
        self._own_names = set(policy.fields) | {d.name for d in policy.derive}
        self._standard: list[str] = [name for name in ("dpd", "balance") if name in policy.fields]
        self._scheme = BucketScheme()
        self._cache: dict[tuple[str, _dt.date], AccountContext | None] = {}

    def context(self, account_id: str, on: _dt.date) -> AccountContext | None:
        """The evaluation context of the account on the snapshot of ``on``; ``None`` when it is not in it."""
        key = (account_id, on)
        if key in self._cache:
            return self._cache[key]
        snapshot = self.outcomes.snapshot(on).get(account_id)
        ctx: AccountContext | None = None
        if snapshot is not None:
            row: dict[str, Any] = {"account_id": account_id, **snapshot.values}
            for name in self._standard:
                row[name] = getattr(snapshot, name)
            account = self.program.account(row, typed=True)
            ctx, decision = self.program.classify(account, _as_of(on))
            extra = {"dpd": snapshot.dpd, "balance": snapshot.balance,
                     "bucket": self._scheme.label(snapshot.dpd), "written_off": snapshot.written_off,
                     "team": snapshot.values.get("team"), "segment": decision.segment}
            for name, value in extra.items():
                if name not in self._own_names:
                    ctx.values[name] = value
        self._cache[key] = ctx
        return ctx

    def record_context(self, values: Mapping[str, Any], on: _dt.date) -> AccountContext:
        """A context for a record that is not an account (a cost line): only ``values`` are known."""
        account = Account(account_id="", values=_NullValues(values))
        ctx = AccountContext(account, _as_of(on), (), (), ())
        ctx.values = _NullValues(values)
        return ctx


class WhereFilter(AccountFilter):
    """A KPI's ``where``: an account is measured when the condition is true on the snapshot asked about."""

    everything = False

    def __init__(self, where: M.Expression, states: AccountStates) -> None:
        self.where = where
        self.states = states
        self._run = compile_expr(where.typed, states.program.registry.functions)
        self._cache: dict[tuple[str, _dt.date], bool] = {}
        #: accounts whose evaluation failed (division by zero …); they are not measured
        self.errors = 0

    def _holds(self, ctx: AccountContext) -> bool:
        try:
            return self._run(ctx) is True
        except ExprRuntimeError:
            self.errors += 1
            return False

    def account(self, account_id: str, on: _dt.date) -> bool:
        key = (account_id, on)
        found = self._cache.get(key)
        if found is None:
            ctx = self.states.context(account_id, on)
            found = ctx is not None and self._holds(ctx)
            self._cache[key] = found
        return found

    def row(self, values: Mapping[str, Any], on: _dt.date) -> bool:
        return self._holds(self.states.record_context(values, on))


class ArmFilter(AccountFilter):
    """The accounts of one experiment arm among those another filter keeps.

    Records that are not accounts (cost lines) cannot be told apart by arm: :meth:`row` keeps what the
    other filter keeps.
    """

    everything = False

    def __init__(self, inner: AccountFilter, experiment: M.Experiment, arm: str) -> None:
        self.inner = inner
        self.experiment = experiment
        self.arm = arm
        self._arms: dict[str, str] = {}

    def account(self, account_id: str, on: _dt.date) -> bool:
        arm = self._arms.get(account_id)
        if arm is None:
            arm = self._arms[account_id] = self.experiment.arm_for(account_id).id
        return arm == self.arm and self.inner.account(account_id, on)

    def row(self, values: Mapping[str, Any], on: _dt.date) -> bool:
        return self.inner.row(values, on)


@dataclass(frozen=True)
class Measurement:
    """A KPI measured over one period."""

    period: Period
    value: MetricValue
    #: what the value is compared with; ``None`` when a relative target has no previous value
    threshold: Decimal | None
    status: str  # met | missed | no_data
    #: for a relative target, the metric over the previous period it is compared with
    previous: MetricValue | None = None
    previous_period: Period | None = None

    @property
    def note(self) -> str | None:
        """Why the measurement has no data, if it has none."""
        if self.value.detail is not None:
            return self.value.detail
        if self.threshold is None and self.previous is not None and self.previous_period is not None:
            return (f"the target needs the value of {self.previous_period}, which has none: "
                    f"{self.previous.detail}")
        return None


@dataclass
class KpiResult:
    """A KPI's measurements in the report period and its trend before them."""

    kpi: M.Kpi
    metric: Metric | None
    measurements: list[Measurement]
    trend: list[tuple[Period, MetricValue]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``missed`` when any measurement missed; else ``no_data`` when any has no value; else ``met``."""
        statuses = {m.status for m in self.measurements}
        if "missed" in statuses:
            return "missed"
        if "no_data" in statuses or not statuses:
            return "no_data"
        return "met"


class KpiEvaluator:
    """Measures a policy's KPIs on one book's outcome data, caching every metric value it computes."""

    def __init__(self, program: Program, outcomes: Outcomes) -> None:
        self.program = program
        self.policy = program.policy
        self.outcomes = outcomes
        self.states = AccountStates(program, outcomes)
        self.filters: dict[str, AccountFilter] = {
            kpi.id: WhereFilter(kpi.where, self.states) if kpi.where is not None else EVERY_ACCOUNT
            for kpi in self.policy.kpis}
        self._values: dict[tuple[str, Period, str | None], MetricValue] = {}

    def metric(self, kpi: M.Kpi) -> Metric | None:
        return self.program.registry.metrics.get(kpi.metric)

    def value(self, kpi: M.Kpi, period: Period, account_filter: AccountFilter | None = None,
              key: str | None = None) -> MetricValue:
        """The KPI's metric over ``period`` for the accounts its ``where`` keeps (or ``account_filter``,
        cached under ``key``)."""
        cache_key = (kpi.id, period, key)
        found = self._values.get(cache_key)
        if found is None:
            metric = self.metric(kpi)
            if metric is None:
                found = MetricValue(None, detail=f"unknown metric {kpi.metric!r}")
            else:
                found = compute_metric(metric, self.outcomes, period, account_filter or self.filters[kpi.id],
                                       kpi.params)
            self._values[cache_key] = found
        return found

    def measure(self, kpi: M.Kpi, period: Period) -> Measurement:
        """The KPI over one period, judged against its target."""
        value = self.value(kpi, period)
        previous: MetricValue | None = None
        previous_period: Period | None = None
        if kpi.relative_to is not None:
            previous_period = period_of(kpi.relative_to, period.start - _dt.timedelta(days=1))
            previous = self.value(kpi, previous_period)
        threshold = kpi.threshold_for(previous.value if previous is not None else None)
        if value.value is None or threshold is None:
            status = "no_data"
        else:
            status = "met" if compare(kpi.op, value.value, threshold) else "missed"
        return Measurement(period, value, threshold, status, previous, previous_period)

    def evaluate(self, kpi: M.Kpi, report_period: Period) -> KpiResult:
        periods = periods_ending_in(kpi.period, report_period)
        measurements = [self.measure(kpi, period) for period in periods]
        first = periods[0]
        trend = []
        for back in range(TREND_PERIODS, 0, -1):
            earlier = first.previous(back)
            trend.append((earlier, self.value(kpi, earlier)))
        return KpiResult(kpi, self.metric(kpi), measurements, trend)


def evaluate_kpis(program: Program, outcomes: Outcomes, report_period: Period) -> list[KpiResult]:
    """Every KPI of the program's policy, measured for ``report_period``."""
    evaluator = KpiEvaluator(program, outcomes)
    return [evaluator.evaluate(kpi, report_period) for kpi in program.policy.kpis]
