"""The scenario tables of ``tests/engine/scenarios``: one test per case (format: see conftest.py), and checks
that the tables themselves cannot pass by accident."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from collectrules.engine.decision import Decision

ENGINE_TESTS = Path(__file__).resolve().parent


class ScenarioCase(Protocol):
    id: str
    policy: Path
    expect: Mapping[str, Any]

    def evaluate(self) -> Decision: ...

    def mismatches(self, decision: Decision) -> list[str]: ...


def test_scenario(scenario: ScenarioCase) -> None:
    decision = scenario.evaluate()
    assert scenario.mismatches(decision) == []


def test_every_test_policy_has_scenarios(scenario_cases: Sequence[ScenarioCase]) -> None:
    used = {case.policy.name for case in scenario_cases}
    assert {path.name for path in (ENGINE_TESTS / "policies").glob("*.yaml")} <= used
    examples = {case.policy.name for case in scenario_cases if case.policy.parent.name == "policies"
                and case.policy.parent.parent == ENGINE_TESTS.parents[1]}
    assert examples == {"consumer-lending.yaml", "factoring.yaml", "project-finance.yaml"}


def _case(scenario_cases: Sequence[ScenarioCase], case_id: str) -> Any:
    return next(case for case in scenario_cases if case.id == case_id)


@pytest.mark.parametrize(("key", "wrong"), [
    ("stage", "reminder"),
    ("due", ["phone"]),
    ("blocked", {"phone": {"by": ["quiet-hours"], "next_allowed": "2025-03-10T15:00:01Z"}}),
    ("blocked", {"phone": {"by": ["seven-in-seven"], "next_allowed": "2025-03-10T15:00:00Z"}}),
    ("blocked", {}),
    ("errors", ["CR502"]),
])
def test_a_wrong_expectation_is_reported(scenario_cases: Sequence[ScenarioCase], key: str,
                                         wrong: Any) -> None:
    case = _case(scenario_cases, "contact-limits::los-angeles-0730-pdt-is-blocked-until-0800")
    assert case.mismatches(case.evaluate()) == []
    altered = dataclasses.replace(case, expect={**case.expect, key: wrong})
    problems = altered.mismatches(altered.evaluate())
    assert problems and problems[0].startswith(f"{key}: expected")


def test_unknown_keys_in_a_table_are_refused(tmp_path: Path,
                                            read_scenario_file: Callable[[Path], list[Any]]) -> None:
    table = tmp_path / "typo.yaml"
    table.write_text(
        "policy: " + str(ENGINE_TESTS / "policies" / "ladder.yaml") + "\n"
        "cases:\n"
        "  - name: typo\n"
        "    account: {account_id: A1, dpd: '3'}\n"
        "    as_of: 2025-03-10T15:00:00Z\n"
        "    expect: {stgae: reminder}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="stgae"):
        read_scenario_file(table)


def test_table_instants_must_carry_a_zone(tmp_path: Path,
                                          read_scenario_file: Callable[[Path], list[Any]]) -> None:
    table = tmp_path / "naive.yaml"
    table.write_text(
        "policy: " + str(ENGINE_TESTS / "policies" / "ladder.yaml") + "\n"
        "cases:\n"
        "  - name: naive\n"
        "    account: {account_id: A1, dpd: '3'}\n"
        "    as_of: 2025-03-10T15:00:00\n"
        "    expect: {stage: reminder}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no time zone"):
        read_scenario_file(table)
