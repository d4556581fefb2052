"""``collectrules fmt``: the canonical layout keeps comments and meaning, is stable, and is checked in CI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from collectrules import cli as cli_module
from collectrules.errors import CollectRulesError
from collectrules.policy import model as M
from collectrules.policy.check import check_policy_file
from collectrules.policy.fmt import TOP_LEVEL_ORDER, FormatError, format_policy_file, format_policy_text
from collectrules.policy.load import load_yaml, load_yaml_text

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (REPO / "policies").glob("*.yaml") if not p.name.endswith(".test.yaml"))
CORPUS = sorted((REPO / "tests" / "corpus").rglob("*.yaml"))


#: the valid policies: the examples, and the lint corpus (flawed, but valid)
VALID = [*EXAMPLES, *sorted((REPO / "tests" / "corpus" / "lint").glob("*.yaml"))]


def _readable(path: Path) -> bool:
    try:
        load_yaml(path)
    except CollectRulesError:
        return False
    return True


#: every example and corpus policy the loader can read (the rest are broken YAML on purpose)
FORMATTABLE = [p for p in [*EXAMPLES, *CORPUS] if _readable(p)]


def _ids(paths: list[Path]) -> list[Any]:
    return [pytest.param(p, id=str(p.relative_to(REPO))) for p in paths]


def _without_locations(value: Any) -> Any:
    """A policy model as plain data, without the positions that formatting may shift."""
    if isinstance(value, M.Expression):
        return ("expression", value.source, value.path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {f.name: _without_locations(getattr(value, f.name))
                                       for f in dataclasses.fields(value)
                                       if f.name not in ("location", "file", "body_lines", "subject_lines")})
    if isinstance(value, dict):
        return {k: _without_locations(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_locations(v) for v in value]
    return value


def test_the_corpus_is_exercised() -> None:
    assert len(FORMATTABLE) >= 60 and len(VALID) >= 18
    assert set(VALID) <= set(FORMATTABLE)


@pytest.mark.parametrize("path", _ids(FORMATTABLE))
def test_formatting_is_idempotent_and_keeps_the_data(path: Path) -> None:
    result = format_policy_file(path)

    assert format_policy_text(result.formatted, str(path)) == result.formatted
    assert load_yaml_text(result.formatted).data == load_yaml_text(result.original).data
    assert result.formatted.endswith("\n") and not result.formatted.endswith("\n\n")
    assert not any(line != line.rstrip() for line in result.formatted.splitlines() if "|" not in line)


@pytest.mark.parametrize("path", _ids(VALID))
def test_a_formatted_valid_policy_validates_to_the_same_model(path: Path, tmp_path: Path) -> None:
    formatted = tmp_path / path.name
    formatted.write_text(format_policy_file(path).formatted, encoding="utf-8")

    before, after = check_policy_file(path), check_policy_file(formatted)

    assert before.ok and after.ok, "\n".join(d.render() for d in after.diagnostics)
    assert _without_locations(after.policy) == _without_locations(before.policy)


@pytest.mark.parametrize("path", _ids(EXAMPLES))
def test_example_policies_are_already_canonical(path: Path) -> None:
    assert not format_policy_file(path).changed


# ---- the layout ----------------------------------------------------------------------------------------

MESSY = """\
# Policy for the tests: every line of this header stays on top.
kind: Policy
apiVersion: collectrules/v1
segments:
    hit_policy: first\x20\x20\x20
    rules:
    - id: early    # why early matters
      when: 'dpd between 1 and 30'

          # about the default
    default: other
# Fields come before segments in the canonical layout.
# This comment block moves with them.
fields:
    dpd: int
    note: {type: string, optional: true, default: ~}
    letter:
        type: string
        default: |
           Dear customer,\x20\x20\x20
           # this line is text, not a comment
metadata:
    name: "messy"
    version: '1'
x-owner-notes: kept last, as written


"""

CANONICAL = """\
# Policy for the tests: every line of this header stays on top.
apiVersion: collectrules/v1
kind: Policy
metadata:
  name: "messy"
  version: '1'
# Fields come before segments in the canonical layout.
# This comment block moves with them.
fields:
  dpd: int
  note: {type: string, optional: true, default: null}
  letter:
    type: string
    default: |
      Dear customer,\x20\x20\x20
      # this line is text, not a comment
segments:
  hit_policy: first
  rules:
    - id: early    # why early matters
      when: 'dpd between 1 and 30'

  # about the default
  default: other
x-owner-notes: kept last, as written
"""


def test_messy_policy_gets_the_canonical_layout() -> None:
    assert format_policy_text(MESSY) == CANONICAL


def test_line_endings_and_byte_order_mark_are_normalized() -> None:
    text = "\ufeffkind: Policy\r\napiVersion: collectrules/v1\r\n"

    assert format_policy_text(text) == "apiVersion: collectrules/v1\nkind: Policy\n"


def test_schema_order_is_the_documented_one() -> None:
    shuffled = "".join(f"{key}: {i}\n" for i, key in reversed(list(enumerate(TOP_LEVEL_ORDER))))

    formatted = format_policy_text("zzz: last\n" + shuffled)

    assert [line.split(":")[0] for line in formatted.splitlines()] == [*TOP_LEVEL_ORDER, "zzz"]


def test_flow_style_top_level_is_reordered_too() -> None:
    assert format_policy_text("{kind: Policy, apiVersion: v1}\n") == "{apiVersion: v1, kind: Policy}\n"


def test_unreadable_yaml_is_a_located_error() -> None:
    with pytest.raises(CollectRulesError) as caught:
        format_policy_text("fields:\n  dpd: int\n  dpd: decimal\n", "p.yaml")

    assert str(caught.value.location) == "p.yaml:3:3"
    assert caught.value.code == "CR105"
    assert issubclass(FormatError, CollectRulesError)


# ---- the command ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _commands_attached() -> None:
    cli_module._attach()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_module.cli, list(args))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_lists_files_that_would_change_and_writes_nothing(in_tmp: Path) -> None:
    (in_tmp / "messy.yaml").write_text(MESSY, encoding="utf-8")
    (in_tmp / "tidy.yaml").write_text(CANONICAL, encoding="utf-8")

    result = run("fmt", "--check", ".")

    assert result.exit_code == 1
    assert "would reformat messy.yaml" in result.output
    assert "tidy.yaml" not in result.output
    assert "1 file would be reformatted, 1 unchanged" in result.output
    assert (in_tmp / "messy.yaml").read_text(encoding="utf-8") == MESSY


def test_check_passes_on_canonical_files() -> None:
    result = run("fmt", "--check", *map(str, EXAMPLES))

    assert result.exit_code == 0, result.output


def test_diff_prints_a_unified_diff(in_tmp: Path) -> None:
    (in_tmp / "messy.yaml").write_text(MESSY, encoding="utf-8")

    result = run("fmt", "--check", "--diff", "messy.yaml")

    assert result.exit_code == 1
    assert "--- messy.yaml (original)\n+++ messy.yaml (formatted)\n" in result.stdout
    assert "-apiVersion: collectrules/v1\n" in result.stdout and "+  hit_policy: first\n" in result.stdout
    assert (in_tmp / "messy.yaml").read_text(encoding="utf-8") == MESSY


def test_fmt_rewrites_files_in_place(in_tmp: Path) -> None:
    (in_tmp / "messy.yaml").write_text(MESSY, encoding="utf-8")

    first = run("fmt", "messy.yaml")
    second = run("fmt", "--check", "messy.yaml")

    assert first.exit_code == 0 and "reformatted messy.yaml" in first.output
    assert (in_tmp / "messy.yaml").read_bytes() == CANONICAL.encode("utf-8")
    assert second.exit_code == 0


def test_a_file_that_cannot_be_read_fails_and_stays_untouched(in_tmp: Path) -> None:
    broken = "fields:\n  dpd: int\n   balance: decimal\n"
    (in_tmp / "broken.yaml").write_text(broken, encoding="utf-8")

    result = run("fmt", "broken.yaml")

    assert result.exit_code == 1
    assert "broken.yaml:3:" in result.output and "error[CR104]" in result.output
    assert "0 files reformatted, 0 unchanged, 1 could not be formatted" in result.output
    assert (in_tmp / "broken.yaml").read_text(encoding="utf-8") == broken


def test_ruamel_is_imported_only_by_the_formatter() -> None:
    code = ("import sys, collectrules.cli, collectrules.cli.fmt, collectrules.policy.fmt, "
            "collectrules.analysis.lint\n"
            "from collectrules.analysis.lint import lint_file\n"
            f"lint_file({str(EXAMPLES[0])!r})\n"
            "assert not any(m.startswith('ruamel') for m in sys.modules), 'imported too early'\n"
            "from collectrules.policy.fmt import format_policy_text\n"
            "format_policy_text('kind: Policy\\n')\n"
            "assert 'ruamel.yaml' in sys.modules\n")

    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
