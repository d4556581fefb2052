"""Evidence tests of the shipped restriction packs.

Each ``<pack>.scenarios.yaml`` beside this file is a policy test suite (the format ``collectrules test``
runs) whose policy, ``<pack>.policy.yaml``, is the smallest policy importing ``compliance/<pack>.yaml``. Its
cases are dated situations with the decision the rule text calls for: allowed or blocked, by which rule, and
when contact is next allowed, across daylight saving changes and public holidays.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collectrules.policy.packs import shipped_packs_dir
from collectrules.testing.coverage import coverage_of
from collectrules.testing.runner import SuiteResult, run_suite
from collectrules.testing.suite import ProgramCache, load_suite

HERE = Path(__file__).resolve().parent
SCENARIOS = sorted(HERE.glob("*.scenarios.yaml"))


@pytest.fixture(scope="module")
def programs() -> ProgramCache:
    return ProgramCache()


def _run(path: Path, programs: ProgramCache) -> SuiteResult:
    suite = load_suite(path, programs)
    assert suite.ok, "\n".join(d.render() for d in suite.diagnostics)
    return run_suite(suite)


def test_every_shipped_pack_has_scenarios() -> None:
    packs = {p.name.removesuffix(".yaml") for p in shipped_packs_dir().glob("*.yaml")}
    assert packs == {"us-reg-f", "cn-collection", "uk-conc"}
    assert {p.name.removesuffix(".scenarios.yaml") for p in SCENARIOS} == packs


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name.removesuffix(".scenarios.yaml") for p in SCENARIOS])
def test_pack_scenarios(path: Path, programs: ProgramCache) -> None:
    result = _run(path, programs)
    failures = [f"{case.case.name}: " + "; ".join(f"{m.key}: expected {m.expected}, got {m.actual}"
                                                  for m in case.mismatches)
                for case in result.cases if not case.passed]
    assert failures == []
    pack = path.name.removesuffix(".scenarios.yaml")
    policy = result.suite.program.policy  # type: ignore[union-attr]
    assert [p.name for p in policy.imports] == [pack]
    # every rule of the pack blocks in at least one scenario, so none of them goes untested
    [coverage] = coverage_of([result])
    blocked = {item.label for item in coverage.covered if item.outcome == "blocks"}
    rules = {r.id for r in policy.restrictions if r.pack == pack}
    assert rules and rules <= blocked, f"rules without a blocking scenario: {sorted(rules - blocked)}"
