"""The broken-policy corpus: every file under ``tests/corpus/broken`` shows one realistic mistake.

Each file starts with header comments naming the errors it must produce::

    # expect: CR351 at 14:23
    # why: a misspelled field name inside a segment condition

The checker must report exactly that set of (code, line, column) errors, every diagnostic must carry a
readable one-line message with a catalogued code, the source line it shows must be the line it names, and
rendering in every output format must work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectrules.cli.output import DIAGNOSTIC_FORMATS, render_diagnostics
from collectrules.errors_catalog import ERROR_CODES
from collectrules.policy.check import CheckResult, check_policy_file

CORPUS = Path(__file__).parent / "corpus" / "broken"
CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))

EXPECT_LINE = re.compile(r"^# expect: (CR\d{3}) at (\d+):(\d+)$")
WHY_LINE = re.compile(r"^# why: (\S.*)$")

#: a diagnostic message is one line a person reads in a terminal or a CI annotation, not a data dump
MAX_MESSAGE_LENGTH = 300

MIN_FILES = 45
MIN_DISTINCT_CODES = 40

Finding = tuple[str, int, int]


@dataclass(frozen=True)
class CorpusCase:
    """One corpus file with the errors its header promises."""

    path: Path
    expected: frozenset[Finding]
    why: str


def read_case(path: Path) -> CorpusCase:
    """Parse the header comments of a corpus file (its bytes need not be valid UTF-8 after the header)."""
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    expected: set[Finding] = set()
    index = 0
    while index < len(lines) and (match := EXPECT_LINE.match(lines[index])):
        expected.add((match.group(1), int(match.group(2)), int(match.group(3))))
        index += 1
    why = WHY_LINE.match(lines[index]) if index < len(lines) else None
    if not expected or why is None:
        raise ValueError(f"{path.name}: the file must start with '# expect: CRnnn at L:C' lines "
                         "and a '# why: …' line")
    return CorpusCase(path, frozenset(expected), why.group(1))


def file_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff").splitlines()


def error_findings(result: CheckResult) -> set[Finding]:
    return {(d.code, d.location.line if d.location else 0, d.location.column if d.location else 0)
            for d in result.errors}


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CORPUS_FILES])
def test_broken_policy_reports_expected_errors(path: Path) -> None:
    case = read_case(path)
    result = check_policy_file(path)

    assert not result.ok
    assert error_findings(result) == case.expected, "\n".join(d.render() for d in result.diagnostics)

    lines = file_lines(path)
    for diagnostic in result.diagnostics:
        assert diagnostic.code in ERROR_CODES
        assert diagnostic.message.strip(), f"{diagnostic.code} has no message"
        assert "\n" not in diagnostic.message
        assert len(diagnostic.message) <= MAX_MESSAGE_LENGTH, \
            f"{diagnostic.code} message is {len(diagnostic.message):,} characters long"
        assert diagnostic.location is not None
        assert diagnostic.location.file == str(path)
        if diagnostic.source_line is not None:
            # the line shown under the message must be the line the location names
            assert 1 <= diagnostic.location.line <= len(lines)
            assert diagnostic.source_line.rstrip("\r\n") == lines[diagnostic.location.line - 1]
        rendered = diagnostic.render()
        assert rendered.startswith(f"{diagnostic.location}: {diagnostic.severity}[{diagnostic.code}]: ")

    for fmt in DIAGNOSTIC_FORMATS:
        output = render_diagnostics([result], fmt)
        for code, _, _ in case.expected:
            assert code in output


def test_corpus_is_large_and_varied() -> None:
    cases = [read_case(path) for path in CORPUS_FILES]
    codes = {code for case in cases for code, _, _ in case.expected}

    assert len(cases) >= MIN_FILES
    assert len(codes) >= MIN_DISTINCT_CODES, f"only {len(codes)} distinct codes: {sorted(codes)}"
    assert codes <= set(ERROR_CODES), f"codes missing from the catalog: {sorted(codes - set(ERROR_CODES))}"
    assert len({case.why for case in cases}) == len(cases), "two corpus files describe the same mistake"
