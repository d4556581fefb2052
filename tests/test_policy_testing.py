"""Policy test suites (``*.test.yaml``) and ``collectrules test``: loading and validation with located
errors, comparing decisions with expectations, the text, JSON and JUnit reports, path discovery and exit
codes."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from collectrules import cli as cli_module
from collectrules.testing.runner import run_suite
from collectrules.testing.suite import ProgramCache, Suite, find_suites, load_suite, suite_schema

REPO = Path(__file__).resolve().parents[1]
POLICIES = REPO / "policies"
CONSUMER = POLICIES / "consumer-lending.yaml"
EXAMPLE_SUITES = sorted(POLICIES.glob("*.test.yaml"))

HEADER = f"""\
apiVersion: collectrules/v1
kind: PolicyTest
policy: {CONSUMER}
defaults:
  as_of: "2026-11-23T15:00:00Z"
  account:
    timezone: America/New_York
    phone: "+12025550100"
    email: dana@example.com
    address: "12 Elm St"
    first_name: Dana
    product: card
    credit_limit: "5000.00"
    last_payment_date: "2026-09-15"
"""

# a small early balance on day 1 of the reminder stage: segment early_low, sms and e-mail due
EARLY_LOW = "{account_id: T1, dpd: 5, balance: \"800.00\"}"

TINY_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata: {name: tiny, version: "1"}
fields:
  dpd: int
  balance: decimal
  instalments: int
derive:
  per_instalment: balance / instalments
segments:
  rules:
    - {id: small, when: per_instalment < 100}
    - {id: large, when: dpd >= 1}
escalation:
  ladders:
    main:
      segments: [small, large]
      stages:
        - id: remind
          enter: dpd >= 1
          actions: [{channel: letter}]
"""


@pytest.fixture(scope="module", autouse=True)
def _commands_attached() -> None:
    cli_module._attach()


@pytest.fixture(scope="module")
def programs() -> ProgramCache:
    return ProgramCache()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


def write_suite(folder: Path, body: str, name: str = "case.test.yaml") -> Path:
    path = folder / name
    path.write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fragment in text:
            return number
    raise AssertionError(f"{fragment!r} not in {path}")


def loaded(path: Path, programs: ProgramCache) -> Suite:
    return load_suite(path, programs)


# ---- the example suites ------------------------------------------------------------------------------------


def test_the_example_policies_each_have_a_suite() -> None:
    assert [p.name for p in EXAMPLE_SUITES] == ["consumer-lending.test.yaml", "factoring.test.yaml",
                                                "project-finance.test.yaml"]


@pytest.mark.parametrize("path", EXAMPLE_SUITES, ids=lambda p: p.name)
def test_example_suites_are_valid_and_pass(path: Path, programs: ProgramCache) -> None:
    suite = loaded(path, programs)
    assert suite.ok, "\n".join(d.render() for d in suite.diagnostics)
    assert len(suite.cases) >= 20
    result = run_suite(suite)
    failures = [c.case.name for c in result.cases if not c.passed]
    assert failures == []


def test_cli_runs_every_suite_of_a_folder() -> None:
    result = run("test", str(POLICIES))
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.stdout
    assert "in 3 suites" in result.stdout


def test_the_shipped_schema_is_a_valid_json_schema() -> None:
    schema = suite_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["kind"] == {"const": "PolicyTest", "description": schema["properties"]["kind"]
                                            ["description"]}


# ---- loading -----------------------------------------------------------------------------------------------


def test_account_values_are_typed_by_the_policy_fields(tmp_path: Path, programs: ProgramCache) -> None:
    suite = loaded(write_suite(tmp_path, f"""\
        cases:
          - name: typed
            account: {EARLY_LOW}
            history: [{{channel: sms, outcome: delivered, at: "2026-11-20T15:00:00Z"}}]
            expect: {{segment: early_low}}
        """), programs)
    assert suite.ok, suite.diagnostics
    case = suite.cases[0]
    assert case.account.values["balance"] == Decimal("800.00")
    assert case.account.values["dpd"] == 5
    assert case.account.timezones == ("America/New_York",)
    # the event belongs to the case's account, its person and its debt
    event = case.history[0]
    assert (event.account_id, event.person_id, event.debt_id) == ("T1", "T1", "T1")
    assert event.direction == "outbound"


def test_cases_override_defaults_key_by_key(tmp_path: Path, programs: ProgramCache) -> None:
    suite = loaded(write_suite(tmp_path, """\
        cases:
          - name: own zone
            as_of: "2026-11-24T03:00:00Z"
            account: {account_id: T1, dpd: 5, balance: "800.00", timezone: America/Chicago}
            expect: {segment: early_low}
        """), programs)
    case = suite.cases[0]
    assert case.account.timezones == ("America/Chicago",)
    assert case.account.phone == "+12025550100"
    assert case.as_of.isoformat() == "2026-11-24T03:00:00+00:00"


@pytest.mark.parametrize(("expect", "fragment", "code", "message", "hint"), [
    ("{blocked: {phone: [reg-f-inconvenient-time]}}", "reg-f-inconvenient-time]", "CR402",
     "restriction 'reg-f-inconvenient-time' is not in the policy",
     "did you mean 'reg-f-inconvenient-times'?"),
    ("{segment: early_lo}", "early_lo}", "CR402", "segment 'early_lo' is not in the policy",
     "did you mean 'early_low'?"),
    ("{stage: remind}", "remind}", "CR402", "stage 'remind' is not in the policy",
     "did you mean 'reminder'?"),
    ("{due: [sms:reminder]}", "sms:reminder]", "CR402", "no action of the policy is 'sms:reminder'",
     "did you mean 'sms:reminder_sms'?"),
    ("{due: [fax]}", "fax]", "CR402", "no action of the policy is 'fax'", "actions:"),
    ("{errors: [CR520]}", "CR520", "CR204", "'CR520' is not a collectrules error code", None),
    ("{status: done}", "done", "CR204", "'done' is not allowed", None),
    ("{}", "{}", "CR207", "expect", None),
])
def test_unknown_ids_in_expectations_are_located_errors(tmp_path: Path, programs: ProgramCache, expect: str,
                                                        fragment: str, code: str, message: str,
                                                        hint: str | None) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: names something that does not exist
            account: {EARLY_LOW}
            expect: {expect}
        """)
    suite = loaded(path, programs)
    assert not suite.ok
    [diagnostic] = suite.errors
    assert diagnostic.code == code
    assert message in diagnostic.message
    assert diagnostic.location is not None
    assert diagnostic.location.file == str(path)
    assert diagnostic.location.line == line_of(path, fragment)
    if hint is not None:
        assert diagnostic.hint is not None and hint in diagnostic.hint


def test_unknown_restriction_in_cli_output_is_located(tmp_path: Path) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: typo in a restriction id
            account: {EARLY_LOW}
            expect:
              blocked: {{sms: [sms-gaps]}}
        """)
    result = run("test", str(path))
    assert result.exit_code == 1
    line = line_of(path, "sms-gaps")
    column = path.read_text(encoding="utf-8").splitlines()[line - 1].index("sms-gaps") + 1
    assert (f"{path}:{line}:{column}: error[CR402]: restriction 'sms-gaps' is not in the policy"
            in result.stdout)
    assert "hint: did you mean 'sms-gap'?" in result.stdout
    assert "invalid suite" in result.stdout


@pytest.mark.parametrize(("account", "fragment", "code", "message"), [
    ('{account_id: T1, dpd: five, balance: "800.00"}', "five", "CR608", "field 'dpd'"),
    ('{account_id: T1, dpd: 5, balanse: "800.00"}', "balanse", "CR201", "'balanse' is neither a field"),
    ('{account_id: T1, dpd: 5, balance: "800.00", stage: remind}', "remind", "CR402",
     "the account's stage 'remind' is not a stage"),
    ('{account_id: T1, dpd: 5, balance: "800.00", timezone: Mars/Olympus}', "Mars", "CR205",
     "account column 'timezone'"),
    ('{account_id: T1, dpd: 5}', "account_id: T1", "CR202", "required field 'balance'"),
])
def test_bad_account_values_are_located_errors(tmp_path: Path, programs: ProgramCache, account: str,
                                               fragment: str, code: str, message: str) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: bad account
            account: {account}
            expect: {{segment: early_low}}
        """)
    suite = loaded(path, programs)
    assert [d.code for d in suite.errors] == [code]
    assert message in suite.errors[0].message
    assert suite.errors[0].location is not None and suite.errors[0].location.line == line_of(path, fragment)


def test_bad_history_values_are_located(tmp_path: Path, programs: ProgramCache) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: bad history
            account: {EARLY_LOW}
            history:
              - {{channel: sms, outcome: delivered, at: "2026-11-20 15:00"}}
              - {{channel: carrier_pigeon, outcome: delivered, at: "2026-11-20T15:00:00Z"}}
              - {{channel: phone, outcome: answred, at: "2026-11-20T15:00:00Z"}}
            expect: {{segment: early_low}}
        """)
    suite = loaded(path, programs)
    by_code = {d.code: d for d in suite.diagnostics}
    location = by_code["CR205"].location
    assert location is not None and location.line == line_of(path, "15:00\"")
    assert "unknown channel 'carrier_pigeon'" in by_code["CR402"].message
    # a non-standard outcome is only a warning, like in policies
    assert by_code["CR412"].severity == "warning"
    assert sorted(d.code for d in suite.errors) == ["CR205", "CR402"]


def test_a_case_without_as_of_is_an_error(tmp_path: Path, programs: ProgramCache) -> None:
    path = tmp_path / "x.test.yaml"
    path.write_text(HEADER.replace('  as_of: "2026-11-23T15:00:00Z"\n', "") + textwrap.dedent(f"""\
        cases:
          - name: when?
            account: {EARLY_LOW}
            expect: {{segment: early_low}}
        """), encoding="utf-8")
    suite = loaded(path, programs)
    assert [(d.code, d.location.line if d.location else 0) for d in suite.errors] == [
        ("CR202", line_of(path, "- name: when?"))]


def test_schema_errors_are_located(tmp_path: Path, programs: ProgramCache) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: misspelt key
            acount: {EARLY_LOW}
            expect: {{segment: early_low}}
        """)
    suite = loaded(path, programs)
    [diagnostic] = suite.errors
    assert diagnostic.code == "CR201"
    assert diagnostic.hint == "did you mean 'account'?"
    assert diagnostic.location is not None and diagnostic.location.line == line_of(path, "acount")


def test_duplicate_case_names_are_an_error(tmp_path: Path, programs: ProgramCache) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: same
            account: {EARLY_LOW}
            expect: {{segment: early_low}}
          - name: same
            account: {EARLY_LOW}
            expect: {{segment: early_low}}
        """)
    suite = loaded(path, programs)
    assert [d.code for d in suite.errors] == ["CR401"]


def test_a_segment_and_stage_that_cannot_occur_together_are_an_error(tmp_path: Path,
                                                                     programs: ProgramCache) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: impossible
            account: {EARLY_LOW}
            expect: {{segment: early_low, stage: field_visit}}
        """)
    suite = loaded(path, programs)
    [diagnostic] = suite.errors
    assert diagnostic.message == ("stage 'field_visit' is not on ladder 'early', which segment 'early_low' "
                                  "climbs")


def test_missing_policy_is_located_at_the_policy_key(tmp_path: Path, programs: ProgramCache) -> None:
    path = tmp_path / "x.test.yaml"
    path.write_text("apiVersion: collectrules/v1\nkind: PolicyTest\npolicy: nowhere.yaml\ncases: []\n",
                    encoding="utf-8")
    suite = loaded(path, programs)
    [diagnostic] = suite.errors
    assert diagnostic.code == "CR402"
    assert f"policy file not found: {tmp_path / 'nowhere.yaml'}" == diagnostic.message
    assert diagnostic.location is not None and diagnostic.location.line == 3


def test_an_invalid_policy_makes_the_suite_invalid(tmp_path: Path, programs: ProgramCache) -> None:
    (tmp_path / "broken.yaml").write_text(TINY_POLICY.replace("dpd >= 1}", "dpdd >= 1}"), encoding="utf-8")
    path = tmp_path / "broken.test.yaml"
    path.write_text("apiVersion: collectrules/v1\nkind: PolicyTest\npolicy: broken.yaml\ncases: []\n",
                    encoding="utf-8")
    suite = loaded(path, programs)
    codes = [d.code for d in suite.errors]
    assert "CR351" in codes  # the policy's own error, located in the policy
    assert codes[-1] == "CR402"
    result = run("test", str(path))
    assert result.exit_code == 1
    assert "broken.yaml:" in result.stdout and "unknown name 'dpdd'" in result.stdout


# ---- comparing ---------------------------------------------------------------------------------------------


def test_a_wrong_stage_fails_showing_expected_actual_and_the_trace(tmp_path: Path) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: expects the wrong stage
            account: {EARLY_LOW}
            expect:
              segment: early_low
              stage: letter
        """)
    result = run("test", str(path))
    assert result.exit_code == 1
    out = result.stdout
    assert f"FAIL {path}:{line_of(path, '- name: expects')}: expects the wrong stage" in out
    assert "  stage  expected letter\n         actual   reminder\n" in out
    # the decision's explanation, with the policy lines of the rules that decided
    assert "Segment rules:" in out
    assert "early_low: match  — dpd between 0 and 30" in out
    assert f"[{CONSUMER}:{line_of(CONSUMER, '- id: reminder') }]" in out
    assert "1 test in 1 suite: 0 passed, 1 failed" in out


@pytest.mark.parametrize(("expect", "passes"), [
    ("{due: [sms:reminder_sms, email:reminder_email]}", True),
    ("{due: [sms, email]}", True),
    ("{due: [sms]}", False),  # exact: the e-mail is due too
    ("{due: [sms, email, phone]}", False),
    ("{due_includes: [sms]}", True),
    ("{due_includes: [sms:payment_link_sms]}", False),
    ("{blocked: {}}", True),
    ("{blocked: {sms: [reg-f-inconvenient-times]}}", False),
    ("{errors: []}", True),
    ("{segment: early_low, ladder: early, stage: reminder, status: active, day_in_stage: 1}", True),
    ("{stage_entered: \"2026-11-22\"}", False),
])
def test_due_and_blocked_are_exact_unless_includes(tmp_path: Path, programs: ProgramCache, expect: str,
                                                   passes: bool) -> None:
    suite = loaded(write_suite(tmp_path, f"""\
        cases:
          - name: day one of the reminder stage
            account: {EARLY_LOW}
            expect: {expect}
        """), programs)
    assert suite.ok, suite.diagnostics
    [case] = run_suite(suite).cases
    assert case.passed is passes, case.mismatches


@pytest.mark.parametrize(("expect", "passes"), [
    ("{blocked: {phone: [reg-f-inconvenient-times], sms: [reg-f-inconvenient-times]}}", True),
    ("{blocked: {phone: [reg-f-inconvenient-times]}}", False),  # the text is blocked too
    ("{blocked_includes: {phone: [reg-f-inconvenient-times]}}", True),
    ("{blocked_includes: {phone: [reg-f-inconvenient-times, reg-f-call-frequency]}}", False),
    ("{blocked: {phone: [reg-f-inconvenient-times, reg-f-call-frequency], sms: [reg-f-inconvenient-times]}}",
     False),
    ("{next_allowed: {phone: \"2026-11-24T13:00:00Z\"}}", True),
    ("{next_allowed: {phone: \"2026-11-24T08:00:00-05:00\"}}", True),  # the same instant
    ("{next_allowed: {phone: \"2026-11-24T14:00:00Z\"}}", False),
    ("{next_allowed: {phone: null}}", False),
])
def test_blocked_and_next_allowed(tmp_path: Path, programs: ProgramCache, expect: str, passes: bool) -> None:
    suite = loaded(write_suite(tmp_path, f"""\
        cases:
          - name: ten at night
            as_of: "2026-11-24T03:00:00Z"
            account: {{account_id: T2, dpd: 12, balance: "3000.00"}}
            expect: {expect}
        """), programs)
    assert suite.ok, suite.diagnostics
    [case] = run_suite(suite).cases
    assert case.passed is passes, case.mismatches


def test_evaluation_errors_fail_a_case_unless_expected(tmp_path: Path, programs: ProgramCache) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_POLICY, encoding="utf-8")
    path = tmp_path / "tiny.test.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: collectrules/v1
        kind: PolicyTest
        policy: tiny.yaml
        defaults: {as_of: "2026-11-23T15:00:00Z", account: {balance: "500", dpd: 3, address: here}}
        cases:
          - name: no instalments left divides by zero, and it is expected
            account: {account_id: Z1, instalments: 0}
            expect: {segment: large, errors: [CR502]}
          - name: no instalments left divides by zero, unexpectedly
            account: {account_id: Z2, instalments: 0}
            expect: {segment: large}
          - name: five instalments
            account: {account_id: Z3, instalments: 5}
            expect: {segment: large, due: [letter]}
        """), encoding="utf-8")
    suite = loaded(path, programs)
    assert suite.ok, suite.diagnostics
    results = run_suite(suite).cases
    assert [c.passed for c in results] == [True, False, True]
    [mismatch] = results[1].mismatches
    assert mismatch.key == "errors" and mismatch.expected == "nothing"
    assert mismatch.actual.startswith("CR502 (division by zero")


# ---- tables ------------------------------------------------------------------------------------------------


def test_table_rows_are_cases(tmp_path: Path, programs: ProgramCache) -> None:
    path = write_suite(tmp_path, """\
        tables:
          - name: boundaries
            columns: [dpd, balance, expect.segment, expect.stage, expect.due]
            rows:
              - [30, "2499.99", early_low, call, "phone, sms:payment_link_sms"]
              - [31, "100", mid, letter, [letter, phone]]
              - [31, "100", mid, call, letter]
        """)
    suite = loaded(path, programs)
    assert suite.ok, suite.diagnostics
    assert [c.name for c in suite.cases] == [
        "boundaries, row 1 (dpd=30, balance=2499.99)", "boundaries, row 2 (dpd=31, balance=100)",
        "boundaries, row 3 (dpd=31, balance=100)"]
    assert [c.location.line for c in suite.cases] == [line_of(path, "[30,"), line_of(path, "[letter, phone]"),
                                                      line_of(path, "call, letter]")]
    results = run_suite(suite).cases
    assert [c.passed for c in results] == [True, True, False]
    assert {m.key for m in results[2].mismatches} == {"stage", "due"}


def test_table_cells_may_hold_times_and_mappings(tmp_path: Path, programs: ProgramCache) -> None:
    path = write_suite(tmp_path, """\
        tables:
          - name: the clock
            account: {account_id: T9, dpd: 12, balance: "3000.00"}
            columns: [as_of, expect.blocked, expect.next_allowed]
            rows:
              - ["2026-11-23T15:00:00Z", {}, {}]
              - ["2026-11-24T03:00:00Z", {phone: [reg-f-inconvenient-times], sms: [reg-f-inconvenient-times]},
                 {phone: "2026-11-24T13:00:00Z"}]
              - ["2026-11-24T03:00:00Z", {}, {}]
        """)
    suite = loaded(path, programs)
    assert suite.ok, suite.diagnostics
    assert [c.as_of.hour for c in suite.cases] == [15, 3, 3]
    assert [c.passed for c in run_suite(suite).cases] == [True, True, False]


def test_table_problems_are_located_at_their_cell(tmp_path: Path, programs: ProgramCache) -> None:
    path = write_suite(tmp_path, """\
        tables:
          - name: problems
            columns: [dpd, balance, expect.segment, expect.status]
            rows:
              - [5, "100", erly_low, active]
              - [5, "100", early_low, activ]
              - [5, "100", early_low]
        """)
    suite = loaded(path, programs)
    found = [(d.code, d.location.line if d.location else 0, d.location.column if d.location else 0)
             for d in suite.errors]
    text = path.read_text(encoding="utf-8").splitlines()
    row1, row2, row3 = line_of(path, "erly_low"), line_of(path, "activ]"), line_of(path, "early_low]")
    assert found == [("CR402", row1, text[row1 - 1].index("erly_low") + 1),
                     ("CR204", row2, text[row2 - 1].index("activ]") + 1),
                     ("CR207", row3, text[row3 - 1].index("[5") + 1)]


def test_table_columns_are_checked(tmp_path: Path, programs: ProgramCache) -> None:
    path = write_suite(tmp_path, """\
        tables:
          - name: columns
            columns: [dpdd, balance, expect.segmnt]
            rows:
              - [5, "100", early_low]
          - name: checks nothing
            columns: [dpd, balance]
            rows:
              - [5, "100"]
        """)
    suite = loaded(path, programs)
    messages = [(d.code, d.message, d.hint) for d in suite.errors]
    assert messages == [
        ("CR201", "column 'dpdd' is neither a field of the policy nor a standard account column",
         "did you mean 'dpd'?"),
        ("CR201", "unknown expectation 'segmnt' in column 'expect.segmnt'", "did you mean 'segment'?"),
        ("CR202", "table 'checks nothing' has no expect.* column, so its rows would check nothing",
         "add a column such as expect.segment or expect.stage"),
    ]


# ---- reports -----------------------------------------------------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A folder with a passing suite, a suite with one failing case and an invalid suite."""
    write_suite(tmp_path, f"""\
        cases:
          - name: early low
            account: {EARLY_LOW}
            expect: {{segment: early_low, stage: reminder}}
        """, "a.test.yaml")
    write_suite(tmp_path, f"""\
        cases:
          - name: right
            account: {EARLY_LOW}
            expect: {{stage: reminder}}
          - name: wrong <stage> & "quotes"
            account: {EARLY_LOW}
            expect: {{stage: call}}
        """, "b.test.yaml")
    write_suite(tmp_path, f"""\
        cases:
          - name: invalid
            account: {EARLY_LOW}
            expect: {{stage: calls}}
        """, "c.test.yaml")
    return tmp_path


def test_junit_report_structure(mixed: Path) -> None:
    result = run("test", str(mixed), "--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(mixed / f"{n}.test.yaml") for n in "abc"]
    assert [(s.get("tests"), s.get("failures"), s.get("errors")) for s in suites] == [
        ("1", "0", "0"), ("2", "1", "0"), ("1", "0", "1")]
    cases = suites[1].findall("testcase")
    assert [c.get("name") for c in cases] == ["right", 'wrong <stage> & "quotes"']
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "stage: expected call, actual reminder"
    assert failure.text is not None and "Segment rules:" in failure.text
    assert cases[1].get("line") == str(line_of(mixed / "b.test.yaml", "- name: wrong"))
    error = suites[2].find("testcase/error")
    assert error is not None and error.text is not None and "error[CR402]" in error.text
    assert suites[0].find("properties/property").get("value") == str(CONSUMER)  # type: ignore[union-attr]


def test_json_report(mixed: Path) -> None:
    result = run("test", str(mixed), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["summary"] == {"suites": 3, "invalid_suites": 1, "tests": 3, "passed": 2, "failed": 1}
    failed = data["suites"][1]["cases"][1]
    assert failed["status"] == "failed"
    assert failed["mismatches"] == [{"key": "stage", "expected": "call", "actual": "reminder"}]
    assert failed["decision"]["stage"] == "reminder" and failed["decision"]["trace"]
    assert data["suites"][2]["valid"] is False
    assert data["suites"][2]["diagnostics"][0]["code"] == "CR402"


def test_output_file_gets_the_report_and_stdout_the_summary(mixed: Path, tmp_path: Path) -> None:
    report = tmp_path / "out" / "junit.xml"
    result = run("test", str(mixed / "a.test.yaml"), "--format", "junit", "-o", str(report))
    assert result.exit_code == 0
    assert result.stdout == "1 test in 1 suite: 1 passed, 0 failed\n"
    assert ET.parse(report).getroot().get("tests") == "1"


def test_verbose_lists_passing_cases(mixed: Path) -> None:
    result = run("test", str(mixed / "a.test.yaml"), "-v")
    assert "  PASS  early low" in result.stdout


# ---- finding suites and exit codes -------------------------------------------------------------------------


def test_find_suites(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("x: 1\n", encoding="utf-8")
    (tmp_path / "p.test.yaml").write_text("x: 1\n", encoding="utf-8")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "q.test.yml").write_text("x: 1\n", encoding="utf-8")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "r.test.yaml").write_text("x: 1\n", encoding="utf-8")
    assert find_suites([tmp_path]) == [tmp_path / "p.test.yaml", tmp_path / "deep" / "er" / "q.test.yml"]
    # a policy stands for the suite beside it; duplicates are dropped
    assert find_suites([tmp_path / "p.yaml", tmp_path / "p.test.yaml"]) == [tmp_path / "p.test.yaml"]
    (tmp_path / "lonely.yaml").write_text("x: 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lonely.test.yaml"):
        find_suites([tmp_path / "lonely.yaml"])
    with pytest.raises(FileNotFoundError):
        find_suites([tmp_path / "missing"])


def test_no_tests_found_is_an_error_unless_allowed(tmp_path: Path) -> None:
    result = run("test", str(tmp_path))
    assert result.exit_code == 1
    assert "no policy tests found" in result.stderr
    assert run("test", str(tmp_path), "--allow-empty").exit_code == 0


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = run("test", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_main_returns_the_exit_code(tmp_path: Path) -> None:
    path = write_suite(tmp_path, f"""\
        cases:
          - name: early low
            account: {EARLY_LOW}
            expect: {{segment: early_high}}
        """)
    assert cli_module.main(["test", str(path)]) == 1
