"""Comparing the arms of a champion/challenger experiment on a KPI.

Each arm's accounts are measured like the KPI's own (same metric, ``where``, params and period), restricted
to the accounts the experiment assigns to the arm. Where the metric has a count proportion behind it
(accounts paying, promises kept …; :class:`~collectrules.kpi.metrics.Proportion`) the comparison adds:

- the **Wilson score interval** at 95% for that proportion,
  ``(p + z²/2n ± z·√(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``z = 1.959963984540054``;
- the two-sided **p-value of the two-proportion z-test** of each arm against the first arm (the champion):
  ``z = (p₁ - p₂) / √(p(1-p)(1/n₁ + 1/n₂))`` with the pooled ``p = (x₁ + x₂) / (n₁ + n₂)``,
  and ``p-value = erfc(|z| / √2)``.

Statistics are floating point: they describe uncertainty and are never money.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ..policy import model as M
from .metrics import MetricValue
from .periods import Period
from .targets import ArmFilter, KpiEvaluator

__all__ = ["Z_95", "ArmResult", "Comparison", "compare_arms", "two_proportion_p_value", "wilson_interval"]

#: the standard normal quantile for a two-sided 95% interval
Z_95: Final[float] = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / trials``; ``None`` without trials."""
    if trials <= 0:
        return None
    share = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (share + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; ``None`` when an arm has no trials."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    difference = successes_a / trials_a - successes_b / trials_b
    if variance == 0:
        # every trial of both arms failed, or every one succeeded: the shares are equal
        return 1.0
    return math.erfc(abs(difference) / math.sqrt(variance) / math.sqrt(2))


@dataclass(frozen=True)
class ArmResult:
    """One arm measured on the KPI."""

    arm: M.ExperimentArm
    value: MetricValue
    #: Wilson 95% interval of the arm's proportion, when the metric has one
    interval: tuple[float, float] | None
    #: p-value against the first arm (``None`` for the first arm itself, or without a proportion)
    p_value: float | None


@dataclass(frozen=True)
class Comparison:
    """An experiment's arms compared on one KPI over one period."""

    experiment: M.Experiment
    kpi: M.Kpi
    period: Period
    arms: tuple[ArmResult, ...]


def compare_arms(evaluator: KpiEvaluator, experiment: M.Experiment, kpi: M.Kpi, period: Period) -> Comparison:
    """Measure ``kpi`` over ``period`` for each arm of ``experiment`` and compare the arms."""
    values = [evaluator.value(kpi, period, ArmFilter(evaluator.filters[kpi.id], experiment, arm.id),
                              key=f"{experiment.id}:{arm.id}") for arm in experiment.arms]
    champion = values[0].proportion
    results = []
    for index, (arm, value) in enumerate(zip(experiment.arms, values, strict=True)):
        proportion = value.proportion
        interval = None if proportion is None else wilson_interval(proportion.successes, proportion.trials)
        p_value = None
        if index > 0 and proportion is not None and champion is not None:
            p_value = two_proportion_p_value(champion.successes, champion.trials, proportion.successes,
                                             proportion.trials)
        results.append(ArmResult(arm, value, interval, p_value))
    return Comparison(experiment, kpi, period, tuple(results))
