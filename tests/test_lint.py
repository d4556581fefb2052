"""``collectrules lint``: the static analysis of policies, its corpus of flawed policies and its command.

Every file under ``tests/corpus/lint`` plants one flaw and starts with header comments::

    # expect: CR801 at 16:7
    # why: two dpd ranges share their boundary day under hit_policy unique
    # counterexample: dpd=30

Lint must report exactly the expected (code, line, column) findings. For an overlap or a gap the reported
counterexample must be the one in the header, and the rows engine, evaluating the policy on that account,
must agree: both rules match (the engine's own CR501 overlap error) or no rule does.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner, Result

from collectrules import cli as cli_module
from collectrules.analysis.conditions import ConditionAnalyzer
from collectrules.analysis.domain import FieldDomain, Interval, NumberSet, domain_for
from collectrules.analysis.lint import EXAMPLE_MARKER, lint_file, parse_counterexample
from collectrules.backends.rows import compile_expr
from collectrules.engine.program import compile_policy
from collectrules.errors_catalog import ERROR_CODES
from collectrules.lang import types as T
from collectrules.policy import model as M
from collectrules.policy.check import check_policy_file
from collectrules.registry import Registry

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus" / "lint"
CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))
EXAMPLES = sorted(p for p in (REPO / "policies").glob("*.yaml") if not p.name.endswith(".test.yaml"))

EXPECT_LINE = re.compile(r"^# expect: (CR8\d\d) at (\d+):(\d+)$")
WHY_LINE = re.compile(r"^# why: (\S.*)$")
COUNTEREXAMPLE_LINE = re.compile(r"^# counterexample: (\S.*)$")

#: findings the example policies may have: none — lint must report nothing on them
EXAMPLE_UNUSED_FIELDS: set[tuple[str, str, str]] = set()

AS_OF = _dt.datetime(2026, 11, 23, 15, 0, tzinfo=_dt.UTC)

Finding = tuple[str, int, int]


@dataclass(frozen=True)
class LintCase:
    path: Path
    expected: frozenset[Finding]
    why: str
    counterexample: dict[str, str] | None


def read_case(path: Path) -> LintCase:
    lines = path.read_text(encoding="utf-8").splitlines()
    expected: set[Finding] = set()
    index = 0
    while index < len(lines) and (match := EXPECT_LINE.match(lines[index])):
        expected.add((match.group(1), int(match.group(2)), int(match.group(3))))
        index += 1
    why = WHY_LINE.match(lines[index]) if index < len(lines) else None
    if not expected or why is None:
        raise ValueError(f"{path.name}: the file must start with '# expect: CR8nn at L:C' lines "
                         "and a '# why: …' line")
    example = COUNTEREXAMPLE_LINE.match(lines[index + 1]) if index + 1 < len(lines) else None
    counterexample = parse_counterexample(EXAMPLE_MARKER + example.group(1)) if example else None
    return LintCase(path, frozenset(expected), why.group(1), counterexample)


def findings(result: Any) -> set[Finding]:
    return {(d.code, d.location.line, d.location.column) for d in result.diagnostics}


# ---- the corpus ----------------------------------------------------------------------------------------


def test_the_corpus_is_large_and_varied() -> None:
    cases = [read_case(p) for p in CORPUS_FILES]
    codes = {code for case in cases for code, _, _ in case.expected}

    assert len(cases) >= 15
    assert codes >= {f"CR80{n}" for n in range(1, 10)}, sorted(codes)
    assert sum(1 for c in cases if c.counterexample) >= 6


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CORPUS_FILES])
def test_corpus_policy_reports_the_planted_flaw(path: Path) -> None:
    case = read_case(path)

    result = lint_file(path)

    assert result.ok, "\n".join(d.render() for d in result.diagnostics)
    assert findings(result) == case.expected, "\n".join(d.render() for d in result.diagnostics)
    for diagnostic in result.diagnostics:
        assert diagnostic.severity == "warning"
        assert diagnostic.code in ERROR_CODES
        lines = path.read_text(encoding="utf-8").splitlines()
        assert diagnostic.source_line == lines[diagnostic.location.line - 1]


def _account(policy: M.Policy, values: dict[str, str]) -> dict[str, Any]:
    """A data row with the counterexample's values; fields it does not name take any valid value."""
    filler = {"int": "7", "decimal": "7", "bool": "false", "string": "x", "date": "2026-01-01"}
    row: dict[str, Any] = {"account_id": "A-1"}
    for name, spec in policy.fields.items():
        if name in values:
            row[name] = None if values[name] == "null" else values[name]
        elif spec.type.kind == "enum":
            row[name] = spec.type.enum_values[-1]
        else:
            row[name] = None if spec.optional else filler[spec.type.kind]
    return row


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CORPUS_FILES
                                  if read_case(p).counterexample is not None])
def test_counterexample_is_reported_and_real(path: Path) -> None:
    case = read_case(path)
    result = lint_file(path)
    [diagnostic] = [d for d in result.diagnostics if d.code in ("CR801", "CR803")]
    assert result.policy is not None and case.counterexample is not None

    assert parse_counterexample(diagnostic.message) == case.counterexample
    program = compile_policy(result.policy)
    decision = program.evaluate(_account(result.policy, case.counterexample), as_of=AS_OF)
    if diagnostic.code == "CR801":
        first, second = re.findall(r"'([a-z0-9_-]+)'", diagnostic.message)[:2]
        overlap = [e for e in decision.errors if e.code == "CR501"]
        assert overlap and f"'{first}'" in overlap[0].message and f"'{second}'" in overlap[0].message
    else:
        assert decision.segment is None and not decision.errors


# ---- the example policies --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in EXAMPLES])
def test_example_policies_have_no_findings_but_their_unused_fields(path: Path) -> None:
    result = lint_file(path, explain_unknown=False)

    assert result.ok
    reported = {(path.name, d.code, re.search(r"'([a-z_]+)'", d.message).group(1))  # type: ignore[union-attr]
                for d in result.diagnostics}
    assert reported <= EXAMPLE_UNUSED_FIELDS, "\n".join(d.render() for d in result.diagnostics)


# ---- unknown is never guessed --------------------------------------------------------------------------

POLICY_HEAD = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: t, version: "1"}
"""

ARITHMETIC_OVERLAP = POLICY_HEAD + """\
fields:
  balance: decimal
  limit: decimal
segments:
  hit_policy: unique
  rules:
    - id: maxed_out
      when: balance / limit > 0.9
    - id: large
      when: balance > 1000
  default: other
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_undecidable_overlap_is_not_reported(tmp_path: Path) -> None:
    result = lint_file(write(tmp_path, "p.yaml", ARITHMETIC_OVERLAP))

    assert result.ok
    assert not result.diagnostics, [d.render() for d in result.diagnostics]


def test_explain_unknown_names_what_stopped_the_analysis(tmp_path: Path) -> None:
    result = lint_file(write(tmp_path, "p.yaml", ARITHMETIC_OVERLAP), explain_unknown=True)

    [note] = result.diagnostics
    assert (note.code, note.severity) == ("CR800", "note")
    assert "'maxed_out' and 'large'" in note.message
    assert "'balance / limit' (arithmetic)" in note.message
    assert (note.location.line, note.location.column) == (12, 7)


def test_a_disjunct_that_is_analyzable_still_decides(tmp_path: Path) -> None:
    # with `or balance > 5000` the rule certainly overlaps `large`, whatever the arithmetic part says
    text = ARITHMETIC_OVERLAP.replace("balance / limit > 0.9", "balance / limit > 0.9 or balance > 5000")

    result = lint_file(write(tmp_path, "p.yaml", text))

    [overlap] = result.diagnostics
    assert overlap.code == "CR801" and result.policy is not None
    # the divisor is not 0 in the example: the engine evaluates the arithmetic part first, and a division
    # by zero there would make the rule fail instead of match
    example = parse_counterexample(overlap.message)
    assert example == {"balance": "5001", "limit": "1"}
    decision = compile_policy(result.policy).evaluate(_account(result.policy, example), as_of=AS_OF)
    assert [e.code for e in decision.errors] == ["CR501"]


# ---- soundness against the engine ---------------------------------------------------------------------

FUZZ_FIELDS = """\
fields:
  dpd: int
  bal: decimal
  prod: {enum: [card, loan, auto]}
  band: {enum: [a, b], optional: true}
  flag: {type: bool, optional: true}
  paid: {type: bool, default: false}
  lim: {type: decimal, optional: true}
  note: {type: string, optional: true}
derive:
  bucket: if dpd <= 0 then "current" else if dpd <= 30 then "1-30" else "31+"
  big: bal >= 100
  safe_lim: coalesce(lim, 0)
  ratio: if lim is not null and lim > 0 then bal / lim else 0.0
  tri: if flag is null then null else flag and dpd > 2
"""

ATOMS = [
    "dpd {op} {k}", "{k} {op} dpd", "bal {op} {d}", "dpd between {k} and {k2}", 'prod == "card"',
    'prod != "auto"', 'prod in ["card", "loan"]', 'prod not in ["loan"]', 'prod in []', "band is null",
    "band is not null", 'band == "a"', 'band not in ["b"]', 'band < "b"', "flag", "not flag", "flag == true",
    "flag != false", "paid", "lim is not null", "lim > 50", "lim <= 50.5", "note is null", 'note == "x"',
    'bucket == "1-30"', 'bucket != "current"', 'bucket in ["31+", "current"]', "bucket is null", "big",
    "safe_lim >= 10", "safe_lim == 0", 'coalesce(band, "b") == "b"', "bal / 2 > 10", "abs(dpd) > 3",
    "len(note) > 3", "dpd > lim", "ratio > 0.5", "tri", "tri == false", "true", "false", "null",
    "(if flag then dpd > 3 else bal < 100)",
]


def _random_condition(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.35:
        k = rng.choice([-1, 0, 1, 5, 30])
        return rng.choice(ATOMS).format(op=rng.choice(["==", "!=", "<", "<=", ">", ">="]), k=k,
                                        k2=k + rng.choice([-1, 0, 4, 30]),
                                        d=rng.choice(["0", "99.5", "100", "100.5"]))
    if roll < 0.6:
        return f"({_random_condition(rng, depth + 1)} and {_random_condition(rng, depth + 1)})"
    if roll < 0.85:
        return f"({_random_condition(rng, depth + 1)} or {_random_condition(rng, depth + 1)})"
    if roll < 0.95:
        return f"not ({_random_condition(rng, depth + 1)})"
    return (f"(if {_random_condition(rng, depth + 1)} then {_random_condition(rng, depth + 1)} "
            f"else {_random_condition(rng, depth + 1)})")


def test_regions_agree_with_the_rows_engine(tmp_path: Path) -> None:
    """For random conditions and accounts: wherever the analysis is sure, the engine agrees; where it is
    exact, it agrees everywhere; and an account the engine decides is never outside its bounds."""
    rng = random.Random(20261123)
    conditions = [_random_condition(rng) for _ in range(120)]
    rules = "".join(f"    - id: r{i}\n      when: '{c}'\n" for i, c in enumerate(conditions))
    result = check_policy_file(write(tmp_path, "fuzz.yaml",
                                     POLICY_HEAD + FUZZ_FIELDS + "segments:\n  rules:\n" + rules))
    assert result.ok and result.policy is not None, [d.render() for d in result.errors][:3]
    policy = result.policy
    functions = Registry.builtin_only().functions
    analyzer = ConditionAnalyzer(policy)
    derived = [(d.name, compile_expr(d.expr.typed, functions)) for d in policy.derive]
    grid = list(itertools.product(
        [-2, -1, 0, 1, 2, 3, 5, 6, 29, 30, 31], [Decimal(x) for x in ("0", "99.5", "100", "100.5", "250")],
        ["card", "loan", "auto"], [None, "a", "b"], [None, False, True], [False, True],
        [None, Decimal(0), Decimal(50), Decimal("50.5"), Decimal(60)], [None, "x", "long"]))
    names = list(policy.fields)
    contexts = []
    for row in rng.sample(grid, 300):
        context = SimpleNamespace(values=dict(zip(names, row, strict=True)), scores={})
        for name, run in derived:
            context.values[name] = run(context)
        contexts.append(context)
    exact_conditions = 0

    for rule in policy.segments.rules:
        truth = analyzer.condition(rule.when)
        run = compile_expr(rule.when.typed, functions)
        exact = truth.true.exact and truth.false.exact
        exact_conditions += exact
        for context in contexts:
            value = run(context)
            fields = {n: context.values[n] for n in names}
            inside = {part: analyzer.space.contains(region, fields) for part, region in (
                ("true_under", truth.true.under), ("true_over", truth.true.over),
                ("false_under", truth.false.under), ("false_over", truth.false.over))}
            where = f"{rule.when.source} on {fields} = {value}"
            assert inside["true_under"] <= (value is True) <= inside["true_over"], where
            assert inside["false_under"] <= (value is False) <= inside["false_over"], where
            if exact:
                assert inside["true_under"] == (value is True), where
                assert inside["false_under"] == (value is False), where
    assert exact_conditions >= 80


# ---- domains -------------------------------------------------------------------------------------------


def test_int_bounds_are_integer_and_decimal_bounds_keep_open_ends() -> None:
    dpd = domain_for("dpd", T.INT, nullable=False)
    balance = domain_for("balance", T.DECIMAL, nullable=True)

    assert dpd.numbers([Interval(Decimal(30), False, None, False)]) == \
        dpd.numbers([Interval(Decimal(31), True, None, False)])
    assert dpd.numbers([Interval(Decimal(1), True, Decimal("2.5"), True)]).intervals == \
        (Interval(Decimal(1), True, Decimal(2), True),)
    below = balance.numbers([Interval(None, False, Decimal(1000), False)])
    rest = balance.complement(below)
    assert isinstance(rest, NumberSet) and rest.null
    assert rest.intervals == (Interval(Decimal(1000), True, None, False),)
    assert balance.pick(rest) == Decimal(1000)
    assert dpd.pick(dpd.numbers([Interval(Decimal(-40), True, Decimal(-5), False)])) == -6
    assert balance.pick(balance.numbers([Interval(Decimal(2500), False, None, False)])) == Decimal(2501)


def test_adjacent_intervals_merge_only_when_no_number_is_missing() -> None:
    dpd = domain_for("dpd", T.INT, nullable=False)
    balance = domain_for("balance", T.DECIMAL, nullable=False)
    touching = [Interval(Decimal(1), True, Decimal(5), True), Interval(Decimal(6), True, Decimal(9), True)]

    assert len(dpd.numbers(touching).intervals) == 1
    assert len(balance.numbers(touching).intervals) == 2
    assert len(balance.numbers([Interval(None, False, Decimal(5), False),
                                Interval(Decimal(5), True, None, False)]).intervals) == 1
    assert balance.is_full(balance.union(balance.numbers([Interval(None, False, Decimal(5), False)]),
                                         balance.numbers([Interval(Decimal(5), True, None, False)])))


def test_enum_and_optional_domains_include_null_only_when_optional() -> None:
    status = FieldDomain("status", "finite", values=("active", "closed"), nullable=False)
    band = domain_for("band", T.enum_of(("a", "b")), nullable=True)

    assert status.full() == frozenset({"active", "closed"})
    assert band.full() == frozenset({"a", "b", None})
    assert band.complement(frozenset({"a", "b"})) == frozenset({None})
    assert band.pick(frozenset({None})) is None


# ---- the command ---------------------------------------------------------------------------------------

CLEAN_POLICY = POLICY_HEAD + """\
fields:
  dpd: int
segments:
  rules:
    - id: early
      when: dpd between 1 and 30
  default: other
"""

GAP_POLICY = CLEAN_POLICY.replace("  default: other\n", "")


@pytest.fixture(scope="module", autouse=True)
def _commands_attached() -> None:
    cli_module._attach()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_clean_policy_exits_0(in_tmp: Path) -> None:
    write(in_tmp, "clean.yaml", CLEAN_POLICY)

    result = run("lint", "clean.yaml")

    assert result.exit_code == 0, result.output
    assert result.output == "clean.yaml: clean\n1 policy linted: 1 clean, 0 with findings, 0 invalid; " \
                            "0 errors, 0 warnings\n"


def test_findings_exit_1_unless_only_errors_fail(in_tmp: Path) -> None:
    write(in_tmp, "gap.yaml", GAP_POLICY)

    default = run("lint", "gap.yaml")
    relaxed = run("lint", "--fail-on", "error", "gap.yaml")

    assert default.exit_code == 1
    assert "gap.yaml:6:1: warning[CR803]: some accounts match no segment rule and there is no default " \
           "segment; for example dpd=0" in default.output
    assert "1 policy linted: 0 clean, 1 with findings, 0 invalid; 0 errors, 1 warning" in default.output
    assert relaxed.exit_code == 0
    assert "warning[CR803]" in relaxed.output


def test_invalid_policy_is_reported_not_analyzed(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", GAP_POLICY.replace("dpd between", "dpdd between"))

    result = run("lint", "--fail-on", "error", "broken.yaml")

    assert result.exit_code == 1
    assert "broken.yaml:9:13: error[CR351]: unknown name 'dpdd'" in result.output
    assert "CR8" not in result.output


def test_machine_formats_carry_lint_codes(in_tmp: Path) -> None:
    write(in_tmp, "gap.yaml", GAP_POLICY)

    as_json = json.loads(run("lint", "--format", "json", "gap.yaml").output)
    github = run("lint", "--format", "github", "gap.yaml").output
    sarif = json.loads(run("lint", "--format", "sarif", "gap.yaml").output)

    [diagnostic] = as_json["files"][0]["diagnostics"]
    assert (diagnostic["code"], diagnostic["severity"], diagnostic["line"]) == ("CR803", "warning", 6)
    assert github.startswith("::warning file=gap.yaml,line=6,col=1,title=CR803,endColumn=9::some accounts")
    [rule] = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rule["shortDescription"]["text"] == ERROR_CODES["CR803"]


def test_validate_strict_runs_lint(in_tmp: Path) -> None:
    write(in_tmp, "gap.yaml", GAP_POLICY)

    relaxed = run("validate", "gap.yaml")
    strict = run("validate", "--strict", "gap.yaml")

    assert relaxed.exit_code == 0 and "CR803" not in relaxed.output
    assert strict.exit_code == 1
    assert "gap.yaml:6:1: warning[CR803]" in strict.output


def test_every_lint_code_is_catalogued() -> None:
    assert all(f"CR80{n}" in ERROR_CODES for n in range(10))
