"""Policy coverage: which parts of a policy a test suite exercised.

Coverage is read from the decisions the runner made with ``trace=True`` — the same evaluation the tests
checked, not a second one. A policy's coverage items are:

* each segment rule, twice: it **matched** some account, and it was tried and **did not match** another
  (a rule that always matches, or never, is not tested as a condition); the default segment when it was
  **reached**;
* each stage of each ladder: some account was **in** it;
* each action of each stage: its cadence made it **due** for some account (whether or not a restriction
  then blocked it);
* each contact restriction, twice: it **blocked** a due action and it **allowed** one.

Coverage of a policy tested by several suites is their union.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..engine.decision import Decision
from ..errors import Location
from ..policy import model as M

CATEGORIES = ("segment rules", "stages", "actions", "restrictions")


@dataclass(frozen=True)
class CoverageItem:
    """One thing a suite should exercise."""

    category: str  # one of CATEGORIES
    label: str  # what it is: "early_low", "early/call", "early/call: sms:payment_link_sms", "quiet-hours"
    outcome: str  # matched | not matched | reached | entered | due | blocks | allows
    location: Location

    def describe(self) -> str:
        wanted = {"matched": "never matched", "not matched": "never tried without matching",
                  "reached": "never reached (default segment)", "entered": "never entered",
                  "due": "never due", "blocks": "never blocked an action",
                  "allows": "never allowed an action"}[self.outcome]
        return f"{self.label}: {wanted}"

    @property
    def where(self) -> str:
        return f"{self.location.file}:{self.location.line}"


@dataclass
class PolicyCoverage:
    """Coverage items of one policy and which of them the decisions seen so far covered."""

    policy_file: str
    policy_name: str
    items: tuple[CoverageItem, ...]
    covered: set[CoverageItem] = field(default_factory=set)
    decisions: int = 0
    _rules: dict[tuple[str, str], CoverageItem] = field(default_factory=dict, repr=False)
    _stages: dict[tuple[str, str], CoverageItem] = field(default_factory=dict, repr=False)
    _actions: dict[Location, CoverageItem] = field(default_factory=dict, repr=False)
    _restrictions: dict[tuple[str, str], CoverageItem] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, policy: M.Policy) -> PolicyCoverage:
        """The coverage items of a policy, none covered yet."""
        rules: dict[tuple[str, str], CoverageItem] = {}
        for rule in policy.segments.rules:
            for outcome, result in (("matched", "match"), ("not matched", "no match")):
                rules[(rule.id, result)] = CoverageItem("segment rules", rule.id, outcome, rule.location)
        default = policy.segments.default
        if default is not None and default not in {r.id for r in policy.segments.rules}:
            rules[(default, "default")] = CoverageItem("segment rules", default, "reached",
                                                       policy.segments.location)
        stages: dict[tuple[str, str], CoverageItem] = {}
        actions: dict[Location, CoverageItem] = {}
        for ladder in policy.escalation.ladders:
            for stage in ladder.stages:
                label = f"{ladder.id}/{stage.id}"
                stages[(ladder.id, stage.id)] = CoverageItem("stages", label, "entered", stage.location)
                for action in stage.actions:
                    name = action.channel + (f":{action.template}" if action.template else "")
                    actions[action.location] = CoverageItem("actions", f"{label}: {name}", "due",
                                                            action.location)
        restrictions: dict[tuple[str, str], CoverageItem] = {}
        for restriction in policy.restrictions:
            for outcome in ("blocks", "allows"):
                restrictions[(restriction.id, outcome)] = CoverageItem(
                    "restrictions", restriction.id, outcome, restriction.location)
        items = (*rules.values(), *stages.values(), *actions.values(), *restrictions.values())
        coverage = cls(policy.file, policy.metadata.name, tuple(items))
        coverage._rules, coverage._stages = rules, stages
        coverage._actions, coverage._restrictions = actions, restrictions
        return coverage

    def add(self, decision: Decision) -> None:
        """Record what one decision exercised; the decision must have been made with ``trace=True``."""
        if decision.trace is None:
            raise ValueError(f"the decision for account {decision.account_id!r} has no trace; "
                             "evaluate with trace=True to measure coverage")
        self.decisions += 1
        if decision.ladder is not None and decision.stage is not None:
            self._cover(self._stages.get((decision.ladder, decision.stage)))
        for entry in decision.trace:
            if entry.step == "segment":
                self._cover(self._rules.get((entry.id, entry.result)))
            elif entry.step == "cadence" and entry.result == "due" and entry.location is not None:
                self._cover(self._actions.get(entry.location))
            elif entry.step == "restriction":
                self._cover(self._restrictions.get((entry.id, entry.result)))

    def _cover(self, item: CoverageItem | None) -> None:
        if item is not None:
            self.covered.add(item)

    # ---- figures ---------------------------------------------------------------------------------------

    def counts(self, category: str | None = None) -> tuple[int, int]:
        """(covered, total) over one category or all items."""
        items = [i for i in self.items if category is None or i.category == category]
        return sum(1 for i in items if i in self.covered), len(items)

    def percent(self, category: str | None = None) -> float:
        covered, total = self.counts(category)
        return 100.0 * covered / total if total else 100.0

    @property
    def uncovered(self) -> list[CoverageItem]:
        return [i for i in self.items if i not in self.covered]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_file, "name": self.policy_name, "decisions": self.decisions,
            "percent": round(self.percent(), 1),
            "categories": {c: {"covered": self.counts(c)[0], "total": self.counts(c)[1],
                               "percent": round(self.percent(c), 1)} for c in CATEGORIES},
            "uncovered": [{"category": i.category, "item": i.label, "missing": i.outcome,
                           "description": i.describe(), "file": i.location.file, "line": i.location.line}
                          for i in self.uncovered],
        }


def coverage_of(results: Iterable[Any]) -> list[PolicyCoverage]:
    """Coverage per policy over the results of :func:`~collectrules.testing.runner.run_suite`."""
    by_policy: dict[str, PolicyCoverage] = {}
    for result in results:
        program = result.suite.program
        if program is None or not result.suite.ok:
            # an invalid suite ran nothing; its policy is neither covered nor uncovered by it
            continue
        coverage = by_policy.get(program.policy.file)
        if coverage is None:
            coverage = by_policy[program.policy.file] = PolicyCoverage.of(program.policy)
        for case in result.cases:
            coverage.add(case.decision)
    return list(by_policy.values())
