"""Every hook is specified completely, documented in docs/writing-plugins.md, and exercised by a test.

A hook without a test is found by looking for its name in the other test files, as datasette's
``test_plugin_hooks_have_tests`` does.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from collectrules import hookspecs

TESTS = Path(__file__).parent
GUIDE = TESTS.parent / "docs" / "writing-plugins.md"

HOOKS: list[str] = sorted(name for name, value in vars(hookspecs).items()
                          if name.startswith("collectrules_") and inspect.isfunction(value))

#: hooks the host declares but does not call yet, so no test can exercise them. Strict: once a test
#: names one of them, the expected failure turns into a failure, and the hook must leave this list.
NOT_CALLED_YET: dict[str, str] = {}


def _guide_sections() -> dict[str, str]:
    """Hook-named sections of the guide: heading text → the section's body."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^#{2,4} `?([A-Za-z_][\w]*)`?\s*$", line)
        if line.startswith("#"):
            current = heading.group(1) if heading and heading.group(1).startswith("collectrules_") else None
            if current is not None:
                sections[current] = ""
            continue
        if current is not None:
            sections[current] += line + "\n"
    return sections


def _parameters(hook: str) -> list[str]:
    return list(inspect.signature(getattr(hookspecs, hook)).parameters)


def test_there_are_hooks() -> None:
    assert "collectrules_register_channels" in HOOKS and len(HOOKS) >= 10


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_docstring_covers_parameters_firstresult_and_version(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    assert hasattr(spec, "collectrules_spec"), f"{hook} is not marked with @hookspec"
    doc = inspect.getdoc(spec) or ""
    for parameter in _parameters(hook):
        assert f":param {parameter}:" in doc, f"{hook}: no ':param {parameter}:'"
    assert "firstresult" in doc, f"{hook}: does not say whether firstresult applies"
    assert re.search(r"Added in \d+\.\d+", doc), f"{hook}: no 'Added in <version>'"
    assert ":return:" in doc, f"{hook}: does not say what a return value means"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_the_plugin_guide(hook: str) -> None:
    sections = _guide_sections()
    assert hook in sections, f"docs/writing-plugins.md has no section headed {hook}"
    body = sections[hook]
    for parameter in _parameters(hook):
        assert f"`{parameter}`" in body, f"{hook}: the guide does not describe parameter {parameter!r}"
    assert "**firstresult**" in body and "**Added in**" in body, hook
    assert f"def {hook}(" in body, f"{hook}: the guide's section has no example implementation"


def test_the_guide_documents_no_hook_that_does_not_exist() -> None:
    assert sorted(set(_guide_sections()) - set(HOOKS)) == []


def _test_files_naming(hook: str) -> list[Path]:
    return [path for path in sorted(TESTS.rglob("*.py"))
            if path.name != Path(__file__).name and hook in path.read_text(encoding="utf-8")]


@pytest.mark.parametrize("hook", [
    pytest.param(hook, marks=pytest.mark.xfail(strict=True, reason=NOT_CALLED_YET[hook]))
    if hook in NOT_CALLED_YET else hook
    for hook in HOOKS])
def test_every_hook_is_exercised_by_a_test(hook: str) -> None:
    assert _test_files_naming(hook), f"no test names {hook}"
