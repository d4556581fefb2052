"""Rendering test results: text for people, JSON for tools, JUnit XML for CI systems.

A failed case shows each expectation it missed (expected against actual) followed by the decision's
explanation — the same rendering as ``collectrules explain`` — so the reader sees which rule, stage or
restriction produced the unexpected result and on which policy line. An invalid suite shows its located
diagnostics; in JUnit it is a test suite with one errored test case.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..cli.explain import render_explanation
from ..cli.output import diagnostic_json
from .coverage import CATEGORIES, PolicyCoverage
from .runner import CaseResult, SuiteResult

REPORT_FORMATS = ("text", "json", "junit")


@dataclass(frozen=True)
class Totals:
    suites: int
    invalid_suites: int
    tests: int
    passed: int
    failed: int
    seconds: float

    @property
    def ok(self) -> bool:
        return self.invalid_suites == 0 and self.failed == 0


def totals(results: Sequence[SuiteResult]) -> Totals:
    return Totals(
        suites=len(results), invalid_suites=sum(1 for r in results if not r.suite.ok),
        tests=sum(len(r.cases) for r in results), passed=sum(r.passed for r in results),
        failed=sum(r.failed for r in results), seconds=sum(r.seconds for r in results))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(t: Totals) -> str:
    line = f"{_plural(t.tests, 'test')} in {_plural(t.suites, 'suite')}: {t.passed} passed, {t.failed} failed"
    if t.invalid_suites:
        line += f", {t.invalid_suites} invalid suite{'' if t.invalid_suites == 1 else 's'}"
    return line


# ---- text --------------------------------------------------------------------------------------------


def failure_text(result: CaseResult) -> str:
    """Expected against actual for each missed expectation, then the decision's explanation."""
    case = result.case
    lines = [f"{case.location.file}:{case.location.line}: {case.name}"]
    width = max(len(m.key) for m in result.mismatches)
    for mismatch in result.mismatches:
        lines.append(f"  {mismatch.key:<{width}}  expected {mismatch.expected}")
        lines.append(f"  {'':<{width}}  actual   {mismatch.actual}")
    lines.append("  decision:")
    lines.append(textwrap.indent(render_explanation(result.decision, case.account), "    "))
    return "\n".join(lines)


def render_text(results: Sequence[SuiteResult], coverage: Sequence[PolicyCoverage] | None = None,
                *, verbose: bool = False) -> str:
    lines: list[str] = []
    for result in results:
        suite = result.suite
        for diagnostic in suite.diagnostics:
            lines.append(diagnostic.render())
        if not suite.ok:
            lines.append(f"{suite.file}: invalid suite, no test run")
            continue
        for case in result.cases:
            if verbose:
                lines.append(f"  {'PASS' if case.passed else 'FAIL'}  {case.case.name}")
            if not case.passed:
                lines.append("FAIL " + failure_text(case))
        state = "ok" if result.ok else "FAILED"
        lines.append(f"{suite.file}: {state}, {result.passed} passed, {result.failed} failed "
                     f"(policy {suite.policy_file})")
    if coverage:
        lines.append(render_coverage_text(coverage).rstrip("\n"))
    lines.append(summary_line(totals(results)))
    return "\n".join(lines) + "\n"


def render_coverage_text(coverage: Sequence[PolicyCoverage]) -> str:
    lines = ["coverage:"]
    for policy in coverage:
        covered, total = policy.counts()
        lines.append(f"  {policy.policy_file} ({policy.policy_name}): {policy.percent():.1f}% "
                     f"({covered}/{total} items, {_plural(policy.decisions, 'decision')})")
        for category in CATEGORIES:
            c, n = policy.counts(category)
            if n:
                lines.append(f"    {category:<14} {policy.percent(category):5.1f}%  ({c}/{n})")
        uncovered = policy.uncovered
        if uncovered:
            lines.append("    not covered:")
            width = max(len(i.where) for i in uncovered)
            for item in uncovered:
                lines.append(f"      {item.where:<{width}}  {item.category[:-1]} {item.describe()}")
    return "\n".join(lines) + "\n"


# ---- JSON --------------------------------------------------------------------------------------------


def _case_json(result: CaseResult) -> dict[str, Any]:
    case = result.case
    out: dict[str, Any] = {
        "name": case.name, "file": case.location.file, "line": case.location.line, "table": case.table,
        "account_id": case.account.account_id, "status": "passed" if result.passed else "failed",
        "seconds": round(result.seconds, 6),
    }
    if not result.passed:
        out["mismatches"] = [m.to_dict() for m in result.mismatches]
        out["decision"] = result.decision.to_dict()
    return out


def render_json(results: Sequence[SuiteResult], coverage: Sequence[PolicyCoverage] | None = None) -> str:
    t = totals(results)
    data: dict[str, Any] = {
        "ok": t.ok,
        "summary": {"suites": t.suites, "invalid_suites": t.invalid_suites, "tests": t.tests,
                    "passed": t.passed, "failed": t.failed},
        "suites": [{
            "file": r.suite.file, "policy": r.suite.policy_file, "valid": r.suite.ok,
            "passed": r.passed, "failed": r.failed,
            "diagnostics": [diagnostic_json(d) for d in r.suite.diagnostics],
            "cases": [_case_json(c) for c in r.cases],
        } for r in results],
    }
    if coverage is not None:
        data["coverage"] = [c.to_dict() for c in coverage]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# ---- JUnit XML ---------------------------------------------------------------------------------------


def render_junit(results: Sequence[SuiteResult]) -> str:
    """JUnit XML: one <testsuite> per suite file, one <testcase> per case, <failure> with the details."""
    t = totals(results)
    root = ET.Element("testsuites", name="collectrules", tests=str(t.tests + t.invalid_suites),
                      failures=str(t.failed), errors=str(t.invalid_suites), time=f"{t.seconds:.3f}")
    for result in results:
        suite = result.suite
        element = ET.SubElement(root, "testsuite", name=suite.file,
                                tests=str(len(result.cases) if suite.ok else 1),
                                failures=str(result.failed), errors="0" if suite.ok else "1", skipped="0",
                                time=f"{result.seconds:.3f}")
        if suite.policy_file:
            properties = ET.SubElement(element, "properties")
            ET.SubElement(properties, "property", name="policy", value=suite.policy_file)
        if not suite.ok:
            loading = ET.SubElement(element, "testcase", name="load suite", classname=suite.file,
                                    file=suite.file, time="0")
            error = ET.SubElement(loading, "error", message=f"invalid suite: {len(suite.errors)} error(s)",
                                  type="invalid-suite")
            error.text = "\n".join(d.render() for d in suite.diagnostics)
            continue
        for case_result in result.cases:
            case = case_result.case
            item = ET.SubElement(element, "testcase", name=case.name, classname=suite.file,
                                 file=case.location.file, line=str(case.location.line),
                                 time=f"{case_result.seconds:.3f}")
            if not case_result.passed:
                message = "; ".join(f"{m.key}: expected {m.expected}, actual {m.actual}"
                                    for m in case_result.mismatches)
                failure = ET.SubElement(item, "failure", message=message, type="expectation")
                failure.text = failure_text(case_result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
