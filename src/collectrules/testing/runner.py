"""Running policy test suites: evaluate each case, with its trace, and compare the decision with the
expectation.

Only the expectation keys a case gives are compared, with one exception: a decision that carries
evaluation errors fails the case unless the case expects them (``errors: [CR502]``), because an
expression that fails for a test account is a defect whatever else the decision says. ``due`` and
``blocked`` are exact (every action due or blocked must be listed); ``due_includes`` and
``blocked_includes`` only require the listed ones.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..engine.decision import ActionRef, BlockedAction, Decision
from ..engine.program import Program
from .suite import ActionKey, Expectation, PolicyCase, Suite, action_label


@dataclass(frozen=True)
class Mismatch:
    """One expectation key the decision does not meet, both sides in words."""

    key: str
    expected: str
    actual: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "expected": self.expected, "actual": self.actual}


@dataclass
class CaseResult:
    case: PolicyCase
    decision: Decision
    mismatches: list[Mismatch]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.mismatches


@dataclass
class SuiteResult:
    suite: Suite
    cases: list[CaseResult]
    seconds: float

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed)

    @property
    def ok(self) -> bool:
        return self.suite.ok and self.failed == 0


def run_suite(suite: Suite) -> SuiteResult:
    """Run every case of a valid suite; an invalid suite runs nothing."""
    start = time.perf_counter()
    if not suite.ok or suite.program is None:
        return SuiteResult(suite, [], 0.0)
    results = [run_case(suite.program, case) for case in suite.cases]
    return SuiteResult(suite, results, time.perf_counter() - start)


def run_case(program: Program, case: PolicyCase) -> CaseResult:
    start = time.perf_counter()
    decision = program.evaluate(case.account, case.history, case.as_of, holds=case.holds,
                                promises=case.promises, trace=True)
    return CaseResult(case, decision, compare(case.expect, decision), time.perf_counter() - start)


# ---- comparing ---------------------------------------------------------------------------------------


def _word(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _set(items: Iterable[str]) -> str:
    ordered = sorted(set(items))
    return "{" + ", ".join(ordered) + "}" if ordered else "nothing"


def _blocked_map(entries: Iterable[tuple[str, Iterable[str]]]) -> str:
    ordered = sorted(entries, key=lambda e: e[0])
    shown = [f"{label}: [{', '.join(sorted(set(ids)))}]" for label, ids in ordered]
    return "{" + "; ".join(shown) + "}" if shown else "nothing blocked"


def _actual_blocked(decision: Decision) -> list[tuple[str, list[str]]]:
    return [(action_label(b.action), [r.restriction for r in b.reasons]) for b in decision.blocked]


def _matching(key: ActionKey, blocked: list[BlockedAction]) -> list[BlockedAction]:
    return [b for b in blocked if key.matches(b.action)]


def _unmatched(keys: Iterable[ActionKey], actions: list[ActionRef]) -> list[ActionKey]:
    return [k for k in keys if not any(k.matches(a) for a in actions)]


def compare(expect: Expectation, decision: Decision) -> list[Mismatch]:
    """Every way the decision differs from the expectation, in expectation-key order."""
    out: list[Mismatch] = []
    given = expect.given
    for name in ("segment", "ladder", "stage", "status", "day_in_stage", "stage_entered"):
        if name in given and getattr(expect, name) != getattr(decision, name):
            out.append(Mismatch(name, _word(getattr(expect, name)), _word(getattr(decision, name))))
    if "segments" in given:
        actual_segments = decision.segments or ((decision.segment,) if decision.segment else ())
        if set(expect.segments) != set(actual_segments):
            out.append(Mismatch("segments", _set(expect.segments), _set(actual_segments)))

    due_labels = [action_label(a) for a in decision.due]
    if "due" in given:
        missing = _unmatched(expect.due, decision.due)
        extra = [a for a in decision.due if not any(k.matches(a) for k in expect.due)]
        if missing or extra:
            out.append(Mismatch("due", _set(str(k) for k in expect.due), _set(due_labels)))
    if "due_includes" in given and _unmatched(expect.due_includes, decision.due):
        out.append(Mismatch("due_includes", "at least " + _set(str(k) for k in expect.due_includes),
                            _set(due_labels)))

    blocked = decision.blocked
    actual_blocked = _blocked_map(_actual_blocked(decision))
    if "blocked" in given:
        differs = any(not _matching(key, blocked) or _reasons(_matching(key, blocked)) != ids
                      for key, ids in expect.blocked)
        differs = differs or any(not any(key.matches(b.action) for key, _ in expect.blocked) for b in blocked)
        if differs:
            out.append(Mismatch("blocked", _blocked_map((str(k), ids) for k, ids in expect.blocked),
                                actual_blocked))
    if "blocked_includes" in given:
        short = any(not _matching(key, blocked) or not ids <= _reasons(_matching(key, blocked))
                    for key, ids in expect.blocked_includes)
        if short:
            wanted = _blocked_map((str(k), ids) for k, ids in expect.blocked_includes)
            out.append(Mismatch("blocked_includes", f"at least {wanted}", actual_blocked))

    if "next_allowed" in given:
        for key, when in expect.next_allowed:
            matching = _matching(key, decision.blocked)
            if not matching:
                out.append(Mismatch(f"next_allowed[{key}]", _word(when) if when else "not foreseeable",
                                    "not blocked"))
                continue
            actual = {b.next_allowed for b in matching}
            if actual != {when}:
                out.append(Mismatch(f"next_allowed[{key}]", _word(when) if when else "not foreseeable",
                                    ", ".join(sorted(_word(a) if a else "not foreseeable" for a in actual))))

    actual_codes = [e.code for e in decision.errors]
    if "errors" in given:
        if sorted(set(expect.errors)) != sorted(set(actual_codes)):
            out.append(Mismatch("errors", _set(expect.errors), _errors(decision)))
    elif actual_codes:
        out.append(Mismatch("errors", "nothing", _errors(decision)))
    return out


def _reasons(blocked: list[BlockedAction]) -> frozenset[str]:
    return frozenset(r.restriction for b in blocked for r in b.reasons)


def _errors(decision: Decision) -> str:
    if not decision.errors:
        return "nothing"
    return "; ".join(f"{e.code} ({e.message})" for e in decision.errors)
