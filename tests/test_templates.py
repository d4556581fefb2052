"""Message templates: checked at load time with exact positions (a corpus of broken policies), rendered for
an account in the sandbox with values shown as written, and rendering errors located in the policy."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from collectrules.engine.account import Account
from collectrules.engine.program import Program
from collectrules.policy.check import check_policy_file
from collectrules.registry import Registry
from collectrules.templates import TemplateError, TemplateRenderer, check_template_source

CORPUS = Path(__file__).parent / "corpus" / "templates"
CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT_LINE = re.compile(r"^# expect: (CR\d{3}) at (\d+):(\d+)$")
AS_OF = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.builtin_only()


def _expected(path: Path) -> set[tuple[str, int, int]]:
    expected = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = EXPECT_LINE.match(line)
        if match is None:
            break
        expected.add((match.group(1), int(match.group(2)), int(match.group(3))))
    assert expected, f"{path.name} has no '# expect:' header"
    return expected


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in CORPUS_FILES])
def test_corpus_reports_exact_positions(path: Path, registry: Registry) -> None:
    result = check_policy_file(path, registry)
    found = {(d.code, d.location.line, d.location.column) for d in result.errors if d.location}
    assert found == _expected(path), "\n".join(d.render() for d in result.diagnostics)
    lines = path.read_text(encoding="utf-8").splitlines()
    for diagnostic in result.errors:
        assert "\n" not in diagnostic.message and diagnostic.location is not None
        assert diagnostic.source_line == lines[diagnostic.location.line - 1]


def test_corpus_covers_every_template_and_channel_check() -> None:
    codes = {code for path in CORPUS_FILES for code, _, _ in _expected(path)}
    assert {"CR420", "CR421", "CR402", "CR201"} <= codes


POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: tiny, version: "1"}
fields:
  dpd: int
  balance: decimal
  first_name: string
  last_payment_date: {type: date, optional: true}
  vip: {type: bool, default: false}
  zero: {type: int, default: 0}
derive:
  bucket: if dpd <= 30 then "early" else "late"
  per_day: balance / zero
segments:
  rules:
    - {id: early, when: dpd >= 1}
templates:
  full:
    channel: letter
    subject: "  Account {{ account_id }} ({{ bucket }})  "
    body: |
      Dear {{ first_name }} ({{ person_id }}, {{ email }}),
      balance {{ balance }}, last paid {{ last_payment_date }}, vip {{ vip }}.
      {% for n in range(2) %}[{{ n }}]{% endfor %}{% if phone %} call {{ phone }}{% endif %}
  divide:
    body: |
      Dear {{ first_name }},
      per day: {{ balance / zero }}
  failed_derived:
    body: |
      Hello {{ first_name }},
      about {{ per_day }} a day
  escape:
    body: "{{ first_name.__class__ }}"
"""


@pytest.fixture()
def program(tmp_path: Path, registry: Registry) -> Program:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    result = check_policy_file(path, registry)
    assert result.ok, "\n".join(d.render() for d in result.diagnostics)
    assert result.policy is not None
    return Program(result.policy, registry)


def _account(program: Program, **values: object) -> Account:
    row = {"account_id": "A-17", "dpd": 12, "balance": Decimal("1.2505E+3"), "first_name": "Ann",
           "email": "ann@example.com", "last_payment_date": None, **values}
    return program.account(row)


def test_render_shows_values_as_written(program: Program) -> None:
    renderer = TemplateRenderer(program)
    variables = renderer.variables(_account(program), as_of=AS_OF)
    message = renderer.render("full", variables)
    assert message.subject == "Account A-17 (early)"
    assert message.body == ("Dear Ann (, ann@example.com),\n"
                            "balance 1250.5, last paid , vip false.\n"
                            "[0][1]\n")


def test_render_dates_and_contact_points(program: Program) -> None:
    renderer = TemplateRenderer(program)
    account = _account(program, last_payment_date=dt.date(2026, 10, 1), vip=True, phone="+15550001",
                       person_id="P-1")
    message = renderer.render("full", renderer.variables(account, as_of=AS_OF))
    assert "Dear Ann (P-1, ann@example.com)" in message.body
    assert "last paid 2026-10-01, vip true." in message.body
    assert message.body.endswith("[0][1] call +15550001\n")


def test_rendering_error_points_at_the_template_line(program: Program, tmp_path: Path) -> None:
    renderer = TemplateRenderer(program)
    variables = renderer.variables(_account(program), as_of=AS_OF)
    with pytest.raises(TemplateError) as caught:
        renderer.render("divide", variables, account_id="A-17")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "CR422" and diagnostic.location is not None
    # body line 2 ("per day: {{ balance / zero }}") stands on line 28 of the file, its tag at column 16
    assert (diagnostic.location.file, diagnostic.location.line, diagnostic.location.column) == \
        (str(tmp_path / "policy.yaml"), 28, 16)
    assert "A-17" in diagnostic.message
    assert diagnostic.source_line is not None and "{{ balance / zero }}" in diagnostic.source_line


def test_a_derived_value_that_failed_is_an_error_not_a_blank(program: Program) -> None:
    renderer = TemplateRenderer(program)
    variables = renderer.variables(_account(program), as_of=AS_OF)
    assert "per_day" not in variables and variables["bucket"] == "early"
    with pytest.raises(TemplateError) as caught:
        renderer.render("failed_derived", variables)
    location = caught.value.diagnostics[0].location
    # the name per_day on "about {{ per_day }} a day"
    assert location is not None and (location.line, location.column) == (32, 16)


def test_the_sandbox_refuses_python_internals(program: Program) -> None:
    renderer = TemplateRenderer(program)
    variables = renderer.variables(_account(program), as_of=AS_OF)
    with pytest.raises(TemplateError, match="unsafe"):
        renderer.render("escape", variables)


def test_check_accepts_known_names_loops_and_globals() -> None:
    source = ("{% for x in tags %}{{ x | upper }}{% endfor %}{{ range(3) | list }}{{ account_id }}"
              "{% set y = 1 %}{{ y }}")
    assert check_template_source(source, {"tags", "account_id"}) == []
    problems = check_template_source(source, {"account_id"})
    assert [(p.code, p.offset, p.length) for p in problems] == [("CR421", 12, 4)]


def test_check_ignores_attribute_and_filter_names_when_locating() -> None:
    source = "{{ a.upper }} {{ b | upper }} {{ upper }}"
    problems = check_template_source(source, {"a", "b"})
    assert [(p.message, p.offset) for p in problems] == [("unknown name 'upper' in a template", 33)]


def test_check_compiles_so_an_unknown_filter_is_a_syntax_error() -> None:
    source = "Dear {{ first_name }},\nyou owe {{ balance | money }}."
    problems = check_template_source(source, {"first_name", "balance"})
    assert [(p.code, p.offset, p.length) for p in problems] == [("CR420", 31, 21)]
    assert "money" in problems[0].message
