"""KPI targets in the policy: the target grammar (absolute and relative), the `where` filter's names, and
how measurements are judged."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from collectrules.engine.portfolio import field_columns
from collectrules.engine.program import Program, compile_policy
from collectrules.kpi.outcomes import Outcomes, load_outcomes
from collectrules.kpi.periods import parse_period
from collectrules.kpi.targets import KpiEvaluator, evaluate_kpis
from collectrules.policy.check import check_policy_file, load_policy

#: the tiny book of docs/kpis.md and the small policy measured on it (also conftest.py's fixtures)
TINY_BOOK = Path(__file__).resolve().parent / "data" / "tiny-book"
TINY_POLICY = Path(__file__).resolve().parent / "data" / "tiny-policy.yaml"

JULY = parse_period("2026-07")

POLICY_HEAD = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: targets, version: "1"}
fields:
  dpd: int
  balance: decimal
  product: {enum: [card, loan], optional: true}
segments:
  rules:
    - {id: early, when: dpd between 1 and 30}
  default: other
kpis:
"""


def _write(tmp_path: Path, kpis: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_HEAD + kpis, encoding="utf-8")
    return path


@pytest.mark.parametrize(("target", "op", "threshold", "relative_to", "factor", "offset"), [
    (">= 90%", ">=", Decimal("0.9"), None, Decimal(1), Decimal(0)),
    ("<=45", "<=", Decimal(45), None, Decimal(1), Decimal(0)),
    (" < -0.5% ", "<", Decimal("-0.005"), None, Decimal(1), Decimal(0)),
    ("<= 0.9 * previous(quarter)", "<=", None, "quarter", Decimal("0.9"), Decimal(0)),
    (">= previous(month) + 1%", ">=", None, "month", Decimal(1), Decimal("0.01")),
    ("< 95% * previous( week ) - 2", "<", None, "week", Decimal("0.95"), Decimal(-2)),
    ("== previous(year)", "==", None, "year", Decimal(1), Decimal(0)),
])
def test_target_forms(tmp_path: Path, target: str, op: str, threshold: Decimal | None,
                      relative_to: str | None, factor: Decimal, offset: Decimal) -> None:
    path = _write(tmp_path, f'  - {{id: k, metric: roll_rate, target: "{target}", period: month}}\n')
    (kpi,) = load_policy(path).kpis
    assert (kpi.op, kpi.threshold, kpi.relative_to, kpi.factor, kpi.offset) == (op, threshold, relative_to,
                                                                                  factor, offset)


@pytest.mark.parametrize("target", ["90%", ">= previous(month", ">= previous(fortnight)",
                                    ">= -previous(month)", ">= previous(month) * 0.9",
                                    ">= 0.9 * previous(month) + ", "=> 90%"])
def test_a_bad_target_is_a_located_error(tmp_path: Path, target: str) -> None:
    path = _write(tmp_path, f'  - id: k\n    metric: roll_rate\n    target: "{target}"\n    period: month\n')
    errors = check_policy_file(path).errors
    found = [(e.code, e.location.line, e.location.column) for e in errors]  # type: ignore[union-attr]
    assert found == [("CR205", 15, 13)]
    assert "kpis/0/target" in errors[0].message


def test_where_may_use_the_outcome_names_and_the_segment(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
  - {id: a, metric: roll_rate, target: ">= 0", period: month,
     where: 'segment == "early" and bucket != "current" and not written_off and team == "x" and balance > 0'}
  - {id: b, metric: roll_rate, target: ">= 0", period: month, where: segment == "late"}
  - {id: c, metric: roll_rate, target: ">= 0", period: month, where: segmnt == "early"}
""")
    errors = check_policy_file(path).errors
    found = [(e.code, e.location.line) for e in errors]  # type: ignore[union-attr]
    assert found == [("CR354", 15), ("CR351", 16)]
    assert errors[1].hint == "did you mean 'segment'?"


def test_the_filter_reads_segments_derived_names_and_account_attributes(tmp_path: Path,
                                                                        tiny_program: Program) -> None:
    book = tmp_path / "book"
    shutil.copytree(TINY_BOOK, book)
    (book / "accounts.csv").write_text("account_id,product\nA2,card\nA3,loan\nA4,card\n", encoding="utf-8")
    policy = _write(tmp_path, """\
  - {id: cards, metric: recovery_rate, where: product == "card", target: ">= 0", period: month}
  - {id: early-cards, metric: recovery_rate, where: segment == "early" and product == "card", target: ">= 0",
     period: month}
""")
    program = compile_policy(load_policy(policy))
    evaluator = KpiEvaluator(program, load_outcomes(book, field_columns(program.policy)))
    cards, early_cards = evaluator.policy.kpis
    # A2 (2,000, paid 2,000) and A4 (4,000, paid 400); A1, A5 have no product, A3 is a loan
    assert evaluator.value(cards, JULY).value == Decimal(2400) / Decimal(6000)
    assert evaluator.value(early_cards, JULY).value == Decimal(1)

    results = {r.kpi.id: r for r in evaluate_kpis(tiny_program, load_outcomes(TINY_BOOK), JULY)}
    # recovery-early: segment == "early" is A2 and A3, as bucket == "1-30"; cure: `late` is a derived name
    assert results["recovery-early"].measurements[0].value.value == Decimal("0.75")
    assert results["cure"].measurements[0].value.value == Decimal("0.5")


def test_measurements_are_judged_against_absolute_and_relative_targets(tiny_program: Program,
                                                                       tiny_book: Outcomes) -> None:
    results = {r.kpi.id: r for r in evaluate_kpis(tiny_program, tiny_book, JULY)}
    assert {k: (r.status, r.measurements[0].status) for k, r in results.items()} == {
        "recovery-early": ("met", "met"), "cure": ("met", "met"),
        # roll: <= 0.9 * previous(month), and June has no opening snapshot
        "roll": ("no_data", "no_data"),
        # rpc: >= previous(month) + 1%: June's one call reached the debtor, so the threshold is 101%
        "rpc": ("missed", "missed")}
    rpc = results["rpc"].measurements[0]
    assert (rpc.value.value, rpc.threshold, str(rpc.previous_period)) == (Decimal("0.5"), Decimal("1.01"),
                                                                          "2026-06")
    roll = results["roll"].measurements[0]
    assert roll.value.value == Decimal("0.2") and roll.threshold is None
    assert roll.previous is not None and roll.previous.detail is not None
    assert [str(p) for p, _ in results["cure"].trend] == ["2026-03", "2026-04", "2026-05", "2026-06"]


def test_a_kpi_misses_when_any_of_its_periods_misses(tmp_path: Path, tiny_book: Outcomes) -> None:
    policy = _write(tmp_path, """\
  - {id: weekly-rpc, metric: right_party_contact_rate, target: ">= 50%", period: week}
""")
    (result,) = evaluate_kpis(compile_policy(load_policy(policy)), tiny_book, JULY)
    by_week = {str(m.period): (m.value.value, m.status) for m in result.measurements}
    # the weeks whose Sunday is in July; 07-27..08-02 belongs to August
    assert list(by_week) == ["2026-W27", "2026-W28", "2026-W29", "2026-W30"]
    # 06-29..07-05: A2 twice (reached once), A3 (a third party)
    assert by_week["2026-W27"] == (Decimal(1) / Decimal(3), "missed")
    assert by_week["2026-W28"] == (Decimal("0.5"), "met")
    # 07-13..07-19: only an inbound call, so no attempt to measure
    assert by_week["2026-W29"] == (None, "no_data")
    assert by_week["2026-W30"] == (Decimal(1), "met")
    assert result.status == "missed"


def test_the_tiny_policy_file_is_valid() -> None:
    assert check_policy_file(TINY_POLICY).ok
