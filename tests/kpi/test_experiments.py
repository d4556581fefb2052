"""Champion/challenger experiments: stable assignment, the engine following the arm's ladder, the policy
checks, and the arm comparison of the report."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import statistics
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from collectrules.engine.program import Program, compile_policy
from collectrules.kpi.experiments import compare_arms, two_proportion_p_value, wilson_interval
from collectrules.kpi.outcomes import Outcomes
from collectrules.kpi.periods import parse_period
from collectrules.kpi.targets import KpiEvaluator
from collectrules.policy.check import check_policy_file, load_policy
from collectrules.policy.model import Experiment

#: the tiny book of docs/kpis.md and the small policy measured on it (also conftest.py's fixtures)
TINY_POLICY = Path(__file__).resolve().parent / "data" / "tiny-policy.yaml"

AS_OF = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
#: the arms of the tiny policy's experiment, as written in the file
ARMS = ("      - {id: champion, share: 50}\n"
        "      - {id: challenger, share: 50, overrides: {ladders: {early: fast}}}")


def _with_arms(tmp_path: Path, arms: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(TINY_POLICY.read_text(encoding="utf-8").replace(ARMS, arms), encoding="utf-8")
    return path


def test_assignment_is_the_documented_hash() -> None:
    for account in ("A1", "A2", "B0000123", "acct-42", "Ünïcode"):
        digest = hashlib.sha256(f"early-fast:{account}".encode()).hexdigest()
        assert Experiment.bucket("early-fast", account) == int(digest, 16) % 10_000


def test_assignment_is_stable(tiny_program: Program) -> None:
    (experiment,) = tiny_program.policy.experiments
    assert [(a.id, a.low, a.high) for a in experiment.arms] == [("champion", 0, 5000),
                                                                ("challenger", 5000, 10000)]
    expected = {"A1": (9146, "challenger"), "A2": (798, "champion"), "A3": (1560, "champion"),
                "acct-42": (3893, "champion"), "B0000123": (3476, "champion")}
    assert {a: (Experiment.bucket(experiment.id, a), experiment.arm_for(a).id) for a in expected} == expected


def test_splits_follow_the_declared_shares(tmp_path: Path) -> None:
    path = _with_arms(tmp_path, "      - {id: champion, share: 70}\n"
                                "      - {id: challenger, share: 20, overrides: {ladders: {early: fast}}}\n"
                                "      - {id: control, share: 10}")
    (experiment,) = load_policy(path).experiments
    counts = Counter(experiment.arm_for(f"C{n:08d}").id for n in range(100_000))
    for arm, share in (("champion", 0.70), ("challenger", 0.20), ("control", 0.10)):
        # five standard deviations of a binomial count: a stable hash passes, a skewed one does not
        deviation = 5 * math.sqrt(100_000 * share * (1 - share))
        assert abs(counts[arm] - share * 100_000) < deviation, (arm, counts)


def test_the_engine_follows_the_arms_ladder_and_records_the_arm(tiny_program: Program) -> None:
    decisions = {a: tiny_program.evaluate({"account_id": a, "dpd": "10", "balance": "100"}, as_of=AS_OF,
                                          trace=True) for a in ("A1", "A2")}
    assert {a: (d.segment, d.ladder, d.stage, d.experiment_arms) for a, d in decisions.items()} == {
        "A1": ("early", "fast", "call", {"early-fast": "challenger"}),
        "A2": ("early", "standard", "remind", {"early-fast": "champion"})}
    assert decisions["A1"].to_dict()["experiments"] == {"early-fast": "challenger"}
    (entry,) = [t for t in decisions["A1"].trace or [] if t.step == "experiment"]
    assert (entry.id, entry.result, entry.detail) == ("early-fast", "challenger", "hash bucket 9146 of 10000")
    # the override is for the early segment only: a late account of the challenger arm keeps its ladder
    late = tiny_program.evaluate({"account_id": "A1", "dpd": "45", "balance": "100"}, as_of=AS_OF)
    assert (late.segment, late.ladder, late.experiment_arms) == ("late", "standard",
                                                                 {"early-fast": "challenger"})


EXPERIMENT_ERRORS = {
    "shares": ("      - {id: champion, share: 50}\n      - {id: challenger, share: 40}",
               [("CR207", 52, 7, "the shares of experiment 'early-fast' add up to 90, not 100")]),
    "too fine": ("      - {id: champion, share: 49.995}\n      - {id: challenger, share: 50.005}",
                 [("CR207", 52, 31, "share 49.995 of arm 'champion' is finer than 0.01 percent"),
                  ("CR207", 53, 33, "share 50.005 of arm 'challenger' is finer than 0.01 percent")]),
    "unknown segment and ladder": (
        "      - {id: champion, share: 50}\n"
        "      - {id: challenger, share: 50, overrides: {ladders: {erly: fst}}}",
        [("CR402", 53, 59, "arm 'challenger' overrides the ladder of unknown segment 'erly'"),
         ("CR402", 53, 65, "unknown ladder 'fst'")]),
    "duplicate arm": ("      - {id: champion, share: 50}\n      - {id: champion, share: 50}",
                      [("CR401", 53, 14, "duplicate arm id 'champion' (first used on line 52)")]),
}


@pytest.mark.parametrize("case", list(EXPERIMENT_ERRORS))
def test_experiment_mistakes_are_located_errors(tmp_path: Path, case: str) -> None:
    arms, expected = EXPERIMENT_ERRORS[case]
    errors = check_policy_file(_with_arms(tmp_path, arms)).errors
    found = [(e.code, e.location.line, e.location.column, e.message) for e in errors]  # type: ignore[union-attr]
    assert found == expected


def test_two_experiments_cannot_override_one_segment_and_compare_needs_known_kpis(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(TINY_POLICY.read_text(encoding="utf-8") + """\
  - id: second
    arms:
      - {id: a, share: 60, overrides: {ladders: {early: standard}}}
      - {id: b, share: 40}
    compare: [recovery-erly]
""", encoding="utf-8")
    errors = check_policy_file(path).errors
    assert [(e.code, e.location.line, e.message) for e in errors] == [  # type: ignore[union-attr]
        ("CR407", 57, "segment 'early' is already overridden by experiment 'early-fast'"),
        ("CR402", 59, "experiment 'second' compares unknown KPI 'recovery-erly'")]
    assert errors[1].hint == "did you mean 'recovery-early'?"


def test_wilson_interval_and_two_proportion_test() -> None:
    assert wilson_interval(8, 10) == pytest.approx((0.4901624, 0.9433178), abs=1e-6)
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 20) or (None, None)
    assert low == 0.0 and high == pytest.approx(0.1611252, abs=1e-6)
    # 50/100 against 65/100, pooled: z = -0.15 / sqrt(0.575 * 0.425 * 0.02)
    z = 0.15 / math.sqrt(0.575 * 0.425 * 0.02)
    expected = 2 * (1 - statistics.NormalDist().cdf(z))
    assert two_proportion_p_value(50, 100, 65, 100) == pytest.approx(expected, rel=1e-9)
    assert two_proportion_p_value(0, 10, 0, 12) == 1.0
    assert two_proportion_p_value(3, 0, 1, 2) is None


def test_the_report_compares_the_arms_on_a_kpi(tmp_path: Path, tiny_book: Outcomes) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(TINY_POLICY.read_text(encoding="utf-8").replace("id: early-fast", "id: split").replace(
        "compare: [recovery-early]", "compare: [rpc, recovery-early]"), encoding="utf-8")
    program = compile_policy(load_policy(path))
    evaluator = KpiEvaluator(program, tiny_book)
    (experiment,) = program.policy.experiments
    rpc = next(k for k in program.policy.kpis if k.id == "rpc")
    comparison = compare_arms(evaluator, experiment, rpc, parse_period("2026-07"))
    champion, challenger = comparison.arms
    # split: A1, A3, A4 are champions, A2 and A5 challengers; A3 and A4 reached the debtor once in 4 calls,
    # A2 and A5 three times in 4
    assert (champion.value.value, challenger.value.value) == (Decimal("0.25"), Decimal("0.75"))
    assert champion.interval == pytest.approx(wilson_interval(1, 4))
    assert (champion.p_value, challenger.p_value) == (None, pytest.approx(math.erfc(1.0)))
