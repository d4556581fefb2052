"""Errors and diagnostics.

Every problem a user can cause is a :class:`Diagnostic`: a location in one of their files, a stable code,
a message that says what was expected and what was found, and a hint. Errors raised by the library are
subclasses of :class:`CollectRulesError` and carry one or more diagnostics; only the CLI turns them into
exit codes. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a user's file. ``line`` and ``column`` are 1-based."""

    file: str
    line: int
    column: int
    #: one past the last column of the offending text on ``line``, when known (for carets and SARIF)
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def shifted(self, columns: int) -> Location:
        return Location(self.file, self.line, self.column + columns, self.end_column)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located finding about a user's input."""

    code: str
    message: str
    location: Location | None = None
    hint: str | None = None
    severity: Severity = "error"
    #: the offending source line, kept so the finding can be shown without re-reading the file
    source_line: str | None = field(default=None, compare=False)

    def render(self) -> str:
        """``file:line:col: error[CODE]: message``, the source line with a caret, then ``hint: …``."""
        where = f"{self.location}: " if self.location else ""
        lines = [f"{where}{self.severity}[{self.code}]: {self.message}"]
        if self.location and self.source_line is not None:
            text = self.source_line.rstrip("\n").expandtabs(1)
            if len(text) > 200:
                text = text[:200] + "…"
            lines.append(f"    {text}")
            width = 1
            if self.location.end_column and self.location.end_column > self.location.column:
                width = min(self.location.end_column - self.location.column, max(1, len(text)))
            lines.append("    " + " " * (self.location.column - 1) + "^" * width)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class CollectRulesError(Exception):
    """Root of every error the library raises about user input."""

    default_code = "CR000"

    def __init__(self, message: str | None = None, *, diagnostics: list[Diagnostic] | None = None,
                 location: Location | None = None, code: str | None = None, hint: str | None = None,
                 source_line: str | None = None) -> None:
        if diagnostics is None:
            diagnostics = [Diagnostic(code or self.default_code, message or "", location, hint,
                                      source_line=source_line)]
        self.diagnostics = diagnostics
        super().__init__(message or (diagnostics[0].message if diagnostics else ""))

    @property
    def location(self) -> Location | None:
        return self.diagnostics[0].location if self.diagnostics else None

    @property
    def code(self) -> str:
        return self.diagnostics[0].code if self.diagnostics else self.default_code

    def __str__(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class PolicyLoadError(CollectRulesError):
    """The file could not be read as YAML (encoding, size, syntax, duplicate keys, alias bombs)."""

    default_code = "CR100"


class PolicySchemaError(CollectRulesError):
    """The YAML does not follow the policy schema."""

    default_code = "CR200"


class PolicySemanticError(CollectRulesError):
    """Ids, references, ordering or cycles are wrong although the schema is satisfied."""

    default_code = "CR400"


class ExprSyntaxError(CollectRulesError):
    """An expression could not be parsed."""

    default_code = "CR300"


class ExprTypeError(CollectRulesError):
    """An expression is well-formed but ill-typed."""

    default_code = "CR350"


class EvaluationError(CollectRulesError):
    """Evaluating a policy for an account failed (for example an overlap under the ``unique`` hit policy)."""

    default_code = "CR500"


class DataError(CollectRulesError):
    """An input data file (accounts, history, holds, promises) is unreadable or malformed."""

    default_code = "CR600"


class PluginError(CollectRulesError):
    """A plugin failed to load, registered a duplicate name, or broke a hook's contract."""

    default_code = "CR700"


def read_source_line(file: str, line: int) -> str | None:
    """The text of ``line`` in ``file``, or ``None`` when the file cannot be read."""
    try:
        with Path(file).open(encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if number == line:
                    return text
    except OSError:
        return None
    return None
