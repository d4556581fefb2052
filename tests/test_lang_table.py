"""Table-driven compliance suite of the expression language (cases in tests/data/expressions.yaml).

Each case is parsed, type-checked against the scope below and, unless it expects a load-time problem,
compiled by the rows backend and evaluated against one account with a small contact history. The format
of the table is described at the top of the YAML file.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectrules.backends.rows import ExprRuntimeError, compile_expr
from collectrules.lang import types as T
from collectrules.lang.checker import Scope, check
from collectrules.lang.functions import BUILTIN_FUNCTIONS, CHANNEL, FunctionRegistry
from collectrules.lang.parser import ExprProblem, parse, parse_duration_text
from collectrules.lang.types import Type

TABLE_PATH = Path(__file__).parent / "data" / "expressions.yaml"
TABLE: dict[str, Any] = yaml.safe_load(TABLE_PATH.read_text(encoding="utf-8"))

AS_OF = _dt.datetime(2026, 3, 15, 14, 30, tzinfo=_dt.UTC)
TODAY = AS_OF.date()

FIELD_TYPES: dict[str, Type] = {
    "dpd": T.INT,
    "balance": T.DECIMAL,
    "rate": T.DECIMAL,
    "name": T.STRING,
    "product": T.enum_of(("card", "personal_loan", "sme_loan")),
    "flag": T.BOOL,
    "opened": T.DATE,
    "last_call": T.DATETIME,
    "gap": T.DURATION,
    "tz": T.TIMEZONE,
    "tags": T.list_of(T.STRING),
    "maybe_int": T.INT,
    # names that start with a keyword of the language
    "order": T.INT,
    "notes": T.STRING,
    "iffy": T.BOOL,
    "nullable": T.INT,
    "between_x": T.INT,
}

CHANNELS = frozenset({"sms", "email", "phone", "letter", "field_visit", "lawyer_letter", "legal"})

CASE_KEYS = frozenset({"expr", "input", "condition", "result", "type", "error", "column", "runtime_error",
                       "xfail"})
OUTCOME_KEYS = ("result", "error", "runtime_error")
#: every code the parser and the checker can report for one expression
EXPRESSION_CODES = frozenset({*(f"CR{n}" for n in range(301, 306)), *(f"CR{n}" for n in range(351, 362))})


# ------------------------------------------------------------------------------------------------------------
# Values of the table
# ------------------------------------------------------------------------------------------------------------


def _signed_duration(text: str) -> _dt.timedelta:
    return -parse_duration_text(text[1:]) if text.startswith("-") else parse_duration_text(text)


_TAGGED: dict[str, Any] = {
    "decimal": Decimal,
    "date": _dt.date.fromisoformat,
    "datetime": lambda text: _dt.datetime.fromisoformat(text.replace("Z", "+00:00")),
    "duration": _signed_duration,
}


def to_value(raw: object) -> Any:
    """A runtime value from its table form (see the header of the YAML file)."""
    if raw is None or isinstance(raw, bool | int | str):
        return raw
    if isinstance(raw, list):
        return tuple(to_value(item) for item in raw)
    if isinstance(raw, dict) and len(raw) == 1:
        ((tag, text),) = raw.items()
        if tag in _TAGGED and isinstance(text, str):
            return _TAGGED[tag](text)
    # floats and bare YAML dates are rejected so that a case never depends on a binary float by accident
    raise TypeError(f"cannot read {raw!r} as a table value; write e.g. {{decimal: \"1.5\"}}")


def expression_text(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and set(raw) == {"join"}:
        parts = []
        for part in raw["join"]:
            if isinstance(part, str):
                parts.append(part)
            else:
                text, times = part
                parts.append(text * times)
        return "".join(parts)
    raise TypeError(f"expr must be a string or {{join: [...]}}, not {raw!r}")


def same_value(actual: Any, expected: Any) -> bool:
    """Equal and of the same kind: an int does not pass for a decimal, nor a date for a datetime."""
    if isinstance(expected, tuple):
        return (isinstance(actual, tuple) and len(actual) == len(expected)
                and all(same_value(a, e) for a, e in zip(actual, expected, strict=True)))
    if isinstance(expected, _dt.timedelta) and isinstance(actual, _dt.timedelta):
        # calendar (d, w) and sliding (h, m) durations are both durations at run time
        return actual == expected
    return type(actual) is type(expected) and bool(actual == expected)


def conforms(value: Any, static: Type) -> bool:
    """Whether a runtime value is of the static type the checker gave the expression."""
    if value is None or static.kind == "any":
        return True
    expected_class: dict[str, type | tuple[type, ...]] = {
        "bool": bool, "decimal": Decimal, "string": str, "enum": str, "timezone": str,
        "datetime": _dt.datetime, "duration": _dt.timedelta,
    }
    match static.kind:
        case "int":
            return isinstance(value, int) and not isinstance(value, bool)
        case "date":
            return isinstance(value, _dt.date) and not isinstance(value, _dt.datetime)
        case "list":
            assert static.item is not None
            return isinstance(value, tuple) and all(conforms(item, static.item) for item in value)
        case "null":
            return False
        case "enum":
            return value in static.enum_values
    return isinstance(value, expected_class[static.kind])


# ------------------------------------------------------------------------------------------------------------
# The account being evaluated
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactEvent:
    channel: str
    at: _dt.datetime


def _utc(text: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.UTC)


HISTORY = (
    ContactEvent("phone", _utc("2026-03-15T09:00")),
    ContactEvent("phone", _utc("2026-03-14T18:00")),
    ContactEvent("phone", _utc("2026-03-09T10:00")),
    ContactEvent("phone", _utc("2026-03-08T23:00")),
    ContactEvent("sms", _utc("2026-03-15T13:00")),
    ContactEvent("email", _utc("2026-02-01T08:00")),
    # after the as-of instant: not yet happened, so never counted
    ContactEvent("phone", _utc("2026-03-16T08:00")),
)
ACTIVE_HOLDS = frozenset({"dispute"})


@dataclass
class AccountContext:
    """What the rows backend reads while evaluating: values, scores and the account's history (UTC days)."""

    values: dict[str, Any]
    scores: dict[str, Any]
    as_of: _dt.datetime = AS_OF
    today: _dt.date = TODAY
    events: Sequence[ContactEvent] = HISTORY
    holds: frozenset[str] = field(default=ACTIVE_HOLDS)

    def _past(self, channel: str) -> list[_dt.datetime]:
        return sorted(e.at for e in self.events
                      if e.at <= self.as_of and (channel == "any" or e.channel == channel))

    def attempts(self, channel: str, window: _dt.timedelta) -> int:
        times = self._past(channel)
        if window % _dt.timedelta(days=1) == _dt.timedelta(0):
            # whole days count calendar days, today included
            first_day = self.today - _dt.timedelta(days=window.days - 1)
            return sum(1 for at in times if at.date() >= first_day)
        return sum(1 for at in times if at > self.as_of - window)

    def last_contact(self, channel: str) -> _dt.datetime | None:
        times = self._past(channel)
        return times[-1] if times else None

    def has_hold(self, hold_type: str) -> bool:
        return hold_type in self.holds


def _channel_check(name: str) -> str | None:
    return None if name == "any" or name in CHANNELS else f"unknown channel {name!r}"


REGISTRY = FunctionRegistry()
SCOPE = Scope(
    names=FIELD_TYPES,
    functions=REGISTRY,
    scores=frozenset(TABLE["scores"]),
    literal_checks={CHANNEL.description: _channel_check},
)
ACCOUNT: dict[str, Any] = {name: to_value(raw) for name, raw in TABLE["account"].items()}
SCORES: dict[str, Any] = {name: to_value(raw) for name, raw in TABLE["scores"].items() if raw is not None}


def context_for(case: Mapping[str, Any]) -> AccountContext:
    values = dict(ACCOUNT)
    values.update({name: to_value(raw) for name, raw in (case.get("input") or {}).items()})
    return AccountContext(values=values, scores=dict(SCORES))


# ------------------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------------------


def _params() -> list[Any]:
    params = []
    for index, case in enumerate(TABLE["cases"], start=1):
        text = expression_text(case["expr"])
        marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if "xfail" in case else []
        params.append(pytest.param(case, id=f"{index:03d}-{text[:40]}", marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_expression(case: dict[str, Any]) -> None:
    text = expression_text(case["expr"])
    expect = T.BOOL if case.get("condition") else None
    if "error" in case:
        with pytest.raises(ExprProblem) as caught:
            check(parse(text), SCOPE, source=text, expect=expect)
        problem = caught.value
        assert (problem.code, problem.start + 1) == (case["error"], case["column"]), problem
        return

    typed = check(parse(text), SCOPE, source=text, expect=expect)
    evaluate = compile_expr(typed, REGISTRY)
    context = context_for(case)
    if case.get("runtime_error"):
        with pytest.raises(ExprRuntimeError):
            evaluate(context)
        return

    actual = evaluate(context)
    expected = to_value(case["result"])
    assert same_value(actual, expected), f"{text!r} gave {actual!r}, expected {expected!r}"
    if "type" in case:
        assert str(typed.type) == case["type"]
    assert conforms(actual, typed.type), f"{actual!r} is not a {typed.type}"


# ------------------------------------------------------------------------------------------------------------
# The table itself
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TABLE["cases"], ids=[f"{i:03d}" for i in range(1, len(TABLE["cases"]) + 1)])
def test_case_is_well_formed(case: dict[str, Any]) -> None:
    assert set(case) <= CASE_KEYS, f"unknown keys {set(case) - CASE_KEYS}"
    assert sum(key in case for key in OUTCOME_KEYS) == 1, f"a case has exactly one of {OUTCOME_KEYS}"
    assert ("column" in case) == ("error" in case)
    assert "type" not in case or "result" in case
    assert set(case.get("input") or {}) <= set(FIELD_TYPES)
    expression_text(case["expr"])
    to_value(case.get("result"))


def test_table_covers_the_language() -> None:
    cases = TABLE["cases"]
    assert len(cases) >= 120
    texts = [expression_text(case["expr"]) for case in cases]
    codes = {case["error"] for case in cases if "error" in case and "xfail" not in case}
    assert codes >= EXPRESSION_CODES, f"no case for {sorted(EXPRESSION_CODES - codes)}"
    untested = [f.name for f in BUILTIN_FUNCTIONS
                if not any(f"{f.name}(" in text for text, case in zip(texts, cases, strict=True)
                           if "result" in case and "xfail" not in case)]
    assert not untested, f"no evaluated case calls {untested}"
    assert any(case.get("runtime_error") for case in cases)
    assert set(FIELD_TYPES) <= set(ACCOUNT)


def test_context_history_answers_follow_the_window_rules() -> None:
    # the history helpers are part of the fixture; check them directly so the table's counts can be trusted
    context = AccountContext(values={}, scores={})
    assert context.attempts("phone", _dt.timedelta(days=7)) == 3
    assert context.attempts("phone", _dt.timedelta(days=8)) == 4
    assert context.attempts("any", _dt.timedelta(hours=2)) == 1
    assert context.last_contact("phone") == _utc("2026-03-15T09:00")
    assert context.last_contact("letter") is None


def test_values_are_never_binary_floats() -> None:
    with pytest.raises(TypeError):
        to_value(0.1)
    with pytest.raises(TypeError):
        to_value(_dt.date(2026, 1, 31))
    assert to_value({"decimal": "0.1"}) == Decimal("0.1")
    assert to_value({"duration": "-5h"}) == -_dt.timedelta(hours=5)
