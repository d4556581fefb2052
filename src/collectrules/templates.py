"""Message templates: checked when a policy loads, rendered for one account when decisions are dispatched.

Templates are Jinja2 text rendered in a sandbox (no attribute access to Python internals) with strict
undefined names, so a misspelled placeholder is an error rather than an empty gap in a letter. A template
may use the policy's fields, its derived names and the standard account columns
(:data:`TEMPLATE_STANDARD_NAMES`). Values are shown as a policy owner writes them: decimals as plain
numbers (``1250.50``, never ``1.2505E+3``), null as nothing, booleans as ``true``/``false``, lists joined
with ", ".

Checking (:func:`check_template_source`) reports positions as character offsets into the template text;
the policy builder maps them onto the policy file. Rendering errors are raised as :class:`TemplateError`
(``CR422``) located at the policy line of the template that failed.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import traceback
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment

from .errors import CollectRulesError, Diagnostic, Location, read_source_line

if TYPE_CHECKING:
    from .engine.account import Account, ContactEvent, Hold, Promise
    from .engine.program import Program
    from .policy import model as M

#: account columns every template may use without declaring them as fields
TEMPLATE_STANDARD_NAMES: tuple[str, ...] = ("account_id", "person_id", "debt_id", "phone", "email", "address")

#: the file name Jinja gives the code of templates built from strings; frames with it are template lines
_TEMPLATE_FRAME = "<template>"
_TAG_OPEN = re.compile(r"\{[{%#]")
_MAX_MESSAGE = 250


class TemplateError(CollectRulesError):
    """A template could not be compiled or rendered for an account."""

    default_code = "CR422"


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """A problem found in a template's text, at a character offset of that text."""

    code: str  # CR420 syntax error, CR421 unknown name
    message: str
    offset: int
    length: int
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """A template rendered for one account."""

    template: str
    subject: str | None
    body: str


def _display(value: Any) -> Any:
    """How a value appears in a rendered message (Jinja's ``finalize``: output only, not arithmetic)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(_display(item)) for item in value)
    return value


@functools.cache
def template_environment() -> SandboxedEnvironment:
    """The one sandboxed environment every template is compiled in."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                                finalize=_display)


def line_starts(text: str) -> list[int]:
    """Character offset where each line of ``text`` starts (Jinja counts lines from 1 the same way)."""
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n" and index + 1 < len(text):
            starts.append(index + 1)
    return starts


def _one_line(message: str) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 1] + "…"


def _column_on_line(text: str, starts: Sequence[int], lineno: int,
                    name: str | None = None) -> tuple[int, int]:
    """Offset (and length) to point at on ``lineno``: the name if it appears in a tag there, else the first
    tag opening, else the first non-blank character."""
    index = min(max(lineno, 1), len(starts)) - 1
    start = starts[index]
    end = starts[index + 1] - 1 if index + 1 < len(starts) else len(text)
    line = text[start:end]
    if name:
        first_tag = _TAG_OPEN.search(line)
        pattern = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
        found = pattern.search(line, first_tag.start() if first_tag else 0)
        if found:
            return start + found.start(), len(name)
    tag = _TAG_OPEN.search(line)
    if tag:
        return start + tag.start(), 2
    stripped = len(line) - len(line.lstrip())
    return start + min(stripped, max(len(line) - 1, 0)), 1


_PRINT_TAG = re.compile(r"\{\{.*?\}\}")


def _syntax_error_at(text: str, starts: Sequence[int], lineno: int) -> tuple[int, int]:
    """Jinja names only the line of a syntax error: point at the first ``{{ … }}`` on it that does not
    compile on its own, else at the first tag of the line."""
    env = template_environment()
    index = min(max(lineno, 1), len(starts)) - 1
    start = starts[index]
    end = starts[index + 1] - 1 if index + 1 < len(starts) else len(text)
    for tag in _PRINT_TAG.finditer(text, start, end):
        try:
            env.compile(env.parse(tag.group()))
        except jinja2.TemplateSyntaxError:
            return tag.start(), len(tag.group())
    return _column_on_line(text, starts, lineno)


def _name_offsets(text: str) -> dict[str, int]:
    """Offset of the first use of each variable name in ``text``, from Jinja's own lexer.

    Attribute names (after ``.``) and filter or test names (after ``|`` or ``is``) are not variables.
    """
    env = template_environment()
    offsets: dict[str, int] = {}
    cursor = 0
    previous = ""
    for _, kind, value in env.lex(text):
        found = text.find(value, cursor) if value else -1
        if found >= 0:
            cursor = found + len(value)
        if kind == "name" and previous not in (".", "|", "is") and value not in offsets and found >= 0:
            offsets[value] = found
        if kind != "whitespace":
            previous = value
    return offsets


def check_template_source(text: str, known_names: Collection[str]) -> list[TemplateProblem]:
    """Compile ``text`` in the sandbox; report a syntax error (CR420) or each unknown name (CR421).

    :param known_names: the names a template may use (fields, derived names, standard columns).
    """
    env = template_environment()
    starts = line_starts(text)
    try:
        parsed = env.parse(text)
        env.compile(parsed)  # compiling, not only parsing, catches unknown filters and tests
    except jinja2.TemplateSyntaxError as exc:
        offset, length = _syntax_error_at(text, starts, exc.lineno or 1)
        message = _one_line(exc.message or str(exc))
        hint = "Jinja2's built-in filters and tests are available, no others" \
            if message.startswith(("No filter named", "No test named")) \
            else "placeholders are written {{ name }}, tags {% if … %} … {% endif %}"
        return [TemplateProblem("CR420", f"template syntax error: {message}", offset, length, hint)]
    unknown = meta.find_undeclared_variables(parsed) - set(known_names) - set(env.globals)
    if not unknown:
        return []
    offsets = _name_offsets(text)
    problems = []
    for name in sorted(unknown, key=lambda n: (offsets.get(n, len(text)), n)):
        close = _closest(name, known_names)
        hint = f"did you mean {close!r}?" if close else \
            ("a template can use the policy's fields, its derived names and the columns "
             + ", ".join(TEMPLATE_STANDARD_NAMES))
        problems.append(TemplateProblem("CR421", f"unknown name {name!r} in a template", offsets.get(name, 0),
                                        len(name), hint))
    return problems


def _closest(word: str, options: Iterable[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return close[0] if close else None


def template_names(policy: M.Policy) -> frozenset[str]:
    """Every name a template of ``policy`` may use."""
    derived = frozenset(d.name for d in policy.derive)
    return frozenset(policy.fields) | derived | frozenset(TEMPLATE_STANDARD_NAMES)


def _template_line(exc: BaseException) -> int | None:
    """The template line a rendering error was raised on (Jinja rewrites tracebacks to template lines)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _TEMPLATE_FRAME:
            line = frame.lineno
    return line


def _locate(lines: Sequence[Location], fallback: Location, text: str, lineno: int | None,
            name: str | None) -> Location:
    if lineno is None or not lines:
        return fallback
    starts = line_starts(text)
    offset, length = _column_on_line(text, starts, lineno, name)
    index = min(lineno, len(lines)) - 1
    column_in_line = offset - starts[min(lineno, len(starts)) - 1]
    start = lines[index]
    column = start.column + column_in_line
    return Location(start.file, start.line, column, column + length)


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


class TemplateRenderer:
    """Renders a policy's templates for accounts. Each template is compiled once, on first use."""

    def __init__(self, program: Program) -> None:
        from .backends.rows import compile_expr

        self.policy = program.policy
        functions = program.registry.functions
        self._derive = [(d, compile_expr(d.expr.typed, functions)) for d in self.policy.derive]
        self._compiled: dict[tuple[str, str], jinja2.Template] = {}

    def variables(self, account: Account, *, as_of: _dt.datetime, scores: Mapping[str, Any] | None = None,
                  history: Sequence[ContactEvent] = (), holds: Sequence[Hold] = (),
                  promises: Sequence[Promise] = ()) -> dict[str, Any]:
        """The names a template sees for ``account``: standard columns, fields and derived values.

        A derived value whose expression fails for this account is left out, so a template using it fails
        with a located error instead of printing a blank.
        """
        from .backends.rows import ExprRuntimeError
        from .engine.account import AccountContext

        ctx = AccountContext(account, as_of.astimezone(_dt.UTC), history, holds, promises)
        ctx.scores.update(scores or {})
        failed: set[str] = set()
        for derived, run in self._derive:
            try:
                ctx.values[derived.name] = run(ctx)
            except ExprRuntimeError:
                failed.add(derived.name)
                ctx.values[derived.name] = None
        standard = {"account_id": account.account_id, "person_id": account.person_id,
                    "debt_id": account.debt_id, "phone": account.phone, "email": account.email,
                    "address": account.address}
        values = {name: value for name, value in ctx.values.items() if name not in failed}
        return {**standard, **values}

    def render(self, template_id: str, variables: Mapping[str, Any], *, account_id: str | None = None
               ) -> RenderedMessage:
        """Render the policy's template ``template_id`` with ``variables`` (see :meth:`variables`)."""
        template = self.policy.templates.get(template_id)
        if template is None:
            raise TemplateError(f"the policy has no template {template_id!r}", code="CR402")
        subject = None
        if template.subject is not None:
            subject = self._render_part(template, "subject", template.subject, template.subject_lines,
                                        variables, account_id).strip()
        body = self._render_part(template, "body", template.body, template.body_lines, variables, account_id)
        return RenderedMessage(template_id, subject, body)

    def _compile(self, template: M.Template, part: str, text: str,
                 lines: Sequence[Location]) -> jinja2.Template:
        key = (template.id, part)
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = template_environment().from_string(text)
            except jinja2.TemplateSyntaxError as exc:
                where = _locate(lines, template.location, text, exc.lineno, None)
                raise _error("CR420", f"template {template.id!r} {part}: syntax error: "
                                      f"{_one_line(exc.message or str(exc))}", where) from None
            self._compiled[key] = compiled
        return compiled

    def _render_part(self, template: M.Template, part: str, text: str, lines: Sequence[Location],
                     variables: Mapping[str, Any], account_id: str | None) -> str:
        compiled = self._compile(template, part, text, lines)
        try:
            return compiled.render(dict(variables))
        except Exception as exc:  # noqa: BLE001 - any failure inside a template is the template's, located
            message = _one_line(str(exc)) or type(exc).__name__
            undefined = _UNDEFINED_NAME.match(message) if isinstance(exc, jinja2.UndefinedError) else None
            where = _locate(lines, template.location, text, _template_line(exc),
                            undefined.group(1) if undefined else None)
            for_whom = f" for account {account_id!r}" if account_id else ""
            raise _error("CR422", f"template {template.id!r} {part} failed{for_whom}: {message}", where,
                         hint="a value the template uses may be missing for this account, or of another type"
                         ) from exc


def _error(code: str, message: str, where: Location, hint: str | None = None) -> TemplateError:
    return TemplateError(diagnostics=[Diagnostic(code, message, where, hint,
                                                 source_line=read_source_line(where.file, where.line))])
