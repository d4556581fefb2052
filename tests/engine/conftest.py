"""Fixtures of the engine's behaviour tests, and the loader of the scenario tables.

Scenario tables (``scenarios/*.yaml``) describe decisions with exact dates and times::

    policy: ../policies/contact-limits.yaml     # relative to the scenario file
    account:                                    # defaults merged under every case's account
      account_id: A1
      timezone: America/New_York
    cases:
      - name: quiet-hours-before-8am
        account: {dpd: "10"}                    # cells as in accounts.csv; null removes a default
        history:                                # "AT CHANNEL OUTCOME [column=value ...]" or a mapping
          - 2025-03-03T16:00:00Z phone no_answer consent=true
        holds: [{type: cease, start: 2025-03-01, end: 2025-03-12, channels: phone}]
        promises: [{promised_on: 2025-03-05, due: 2025-03-12, amount: "100", status: pending}]
        as_of: 2025-03-10T14:30:00Z
        expect:                                 # only the keys given are compared
          segment: early
          segments: [early, small]
          ladder: standard
          stage: calls
          status: active
          stage_entered: 2025-03-10
          day_in_stage: 1
          errors: [CR502]
          due: [phone, "letter:cease_ack"]      # CHANNEL or CHANNEL:TEMPLATE, in the decision's order
          blocked:                              # every blocked action, by the same key
            sms: {by: [quiet-hours], next_allowed: 2025-03-10T15:00:00Z}

The files are read with YAML's base loader, so every scalar stays text exactly as written (a date is not
turned into a ``date``, ``010`` stays ``010``) and account values are typed by the policy, the way the API
types them. ``null`` stands for "no value".
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectrules import compile_policy, load_policy
from collectrules.engine.account import ContactEvent, Hold, Promise
from collectrules.engine.decision import ActionRef, Decision
from collectrules.engine.program import Program

ENGINE_TESTS = Path(__file__).resolve().parent
POLICIES = ENGINE_TESTS / "policies"
SCENARIOS = ENGINE_TESTS / "scenarios"

NULL_WORDS = frozenset({"null", "~"})
EXPECT_KEYS = frozenset({"segment", "segments", "ladder", "stage", "status", "stage_entered", "day_in_stage",
                         "errors", "due", "blocked"})
CASE_KEYS = frozenset({"name", "account", "history", "holds", "promises", "as_of", "expect", "description"})
FILE_KEYS = frozenset({"policy", "account", "cases", "description"})
EVENT_COLUMNS = frozenset({"account_id", "person_id", "debt_id", "contact", "channel", "direction", "outcome",
                           "at", "consent", "template", "subject"})


class ScenarioFormatError(ValueError):
    """A scenario table that does not follow the format described in this module."""


# ---- values ------------------------------------------------------------------------------------------------


def instant(text: str) -> _dt.datetime:
    """An aware instant from ISO 8601 text (``2025-03-10T14:30:00Z``); a time without zone is refused."""
    value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ScenarioFormatError(f"{text!r} has no time zone")
    return value


def iso_utc(value: _dt.datetime | None) -> str | None:
    """How decisions write instants: UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def action_key(action: ActionRef) -> str:
    """``channel`` or ``channel:template``: how scenario tables name an action."""
    return f"{action.channel}:{action.template}" if action.template else action.channel


def _nullable(text: Any) -> Any:
    return None if isinstance(text, str) and text in NULL_WORDS else text


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ScenarioFormatError(f"expected true or false, got {text!r}")
    return text == "true"


def event_from(entry: str | Mapping[str, Any], account_id: str) -> ContactEvent:
    """A history event from ``"AT CHANNEL OUTCOME [column=value ...]"`` or from a mapping of columns."""
    if isinstance(entry, str):
        at, channel, outcome, *extras = entry.split()
        columns: dict[str, Any] = {"at": at, "channel": channel, "outcome": outcome}
        for extra in extras:
            name, separator, value = extra.partition("=")
            if not separator:
                raise ScenarioFormatError(f"history extra {extra!r} is not column=value")
            columns[name] = value
    else:
        columns = dict(entry)
    unknown = set(columns) - EVENT_COLUMNS
    if unknown:
        raise ScenarioFormatError(f"unknown history columns {sorted(unknown)}")
    return ContactEvent(
        account_id=columns.get("account_id", account_id), channel=columns["channel"],
        outcome=columns["outcome"], at=instant(columns["at"]), direction=columns.get("direction", "outbound"),
        person_id=columns.get("person_id"), debt_id=columns.get("debt_id"), contact=columns.get("contact"),
        consent=_bool(columns.get("consent", "false")), template=columns.get("template"),
        subject=columns.get("subject", "debtor"))


def hold_from(entry: Mapping[str, Any], account_id: str) -> Hold:
    channels = entry.get("channels") or ()
    if isinstance(channels, str):
        channels = tuple(c for c in channels.split(";") if c)
    end = _nullable(entry.get("end"))
    return Hold(entry.get("account_id", account_id), entry["type"], _dt.date.fromisoformat(entry["start"]),
                _dt.date.fromisoformat(end) if end else None, tuple(channels), entry.get("note"))


def promise_from(entry: Mapping[str, Any], account_id: str) -> Promise:
    return Promise(entry.get("account_id", account_id), _dt.date.fromisoformat(entry["promised_on"]),
                   _dt.date.fromisoformat(entry["due"]), Decimal(entry["amount"]),
                   Decimal(entry.get("paid", "0")), entry.get("status", "pending"))


# ---- programs ----------------------------------------------------------------------------------------------


@functools.cache
def compiled(path: Path) -> Program:
    """The policy at ``path``, loaded, checked and compiled once per test run."""
    return compile_policy(load_policy(path))


# ---- scenarios ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One case of a scenario table: inputs, the as-of instant, and the expected decision."""

    id: str
    policy: Path
    account: Mapping[str, Any]
    as_of: _dt.datetime
    expect: Mapping[str, Any]
    history: tuple[ContactEvent, ...] = ()
    holds: tuple[Hold, ...] = ()
    promises: tuple[Promise, ...] = ()
    description: str | None = field(default=None, compare=False)

    def evaluate(self) -> Decision:
        """The decision for this case."""
        return compiled(self.policy).evaluate(dict(self.account), self.history, self.as_of, holds=self.holds,
                                              promises=self.promises)

    def mismatches(self, decision: Decision) -> list[str]:
        """Every difference between ``decision`` and the expectation, in words (empty when they agree)."""
        found = _actual(decision)
        problems = []
        for key, wanted in self.expect.items():
            wanted = _normalise_expectation(key, wanted)
            if found[key] != wanted:
                problems.append(f"{key}: expected {wanted!r}, got {found[key]!r}")
        if problems:
            problems.append(f"(decision: {decision.to_json()})")
        return problems


def _actual(decision: Decision) -> dict[str, Any]:
    return {
        "segment": decision.segment,
        "segments": list(decision.segments),
        "ladder": decision.ladder,
        "stage": decision.stage,
        "status": decision.status,
        "stage_entered": decision.stage_entered.isoformat() if decision.stage_entered else None,
        "day_in_stage": decision.day_in_stage,
        "errors": [e.code for e in decision.errors],
        "due": [action_key(a) for a in decision.due],
        "blocked": {action_key(b.action): {"by": sorted(r.restriction for r in b.reasons),
                                           "next_allowed": iso_utc(b.next_allowed)}
                    for b in decision.blocked},
    }


def _normalise_expectation(key: str, wanted: Any) -> Any:
    if key == "day_in_stage":
        return None if _nullable(wanted) is None else int(wanted)
    if key in ("segments", "errors", "due"):
        return list(wanted)
    if key == "blocked":
        out = {}
        for action, spec in (wanted or {}).items():
            if set(spec) != {"by", "next_allowed"}:
                raise ScenarioFormatError(f"blocked {action!r} needs exactly 'by' and 'next_allowed'")
            by = [spec["by"]] if isinstance(spec["by"], str) else list(spec["by"])
            out[action] = {"by": sorted(by), "next_allowed": _nullable(spec["next_allowed"])}
        return out
    return _nullable(wanted)


def _check_keys(found: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = set(found) - allowed
    if unknown:
        raise ScenarioFormatError(f"{where}: unknown keys {sorted(unknown)}")


def load_scenario_file(path: Path) -> list[Scenario]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=yaml.BaseLoader)  # text only: see the module docstring
    _check_keys(document, FILE_KEYS, str(path))
    policy = (path.parent / document["policy"]).resolve()
    defaults = document.get("account") or {}
    scenarios = []
    for case in document["cases"]:
        where = f"{path.name}::{case.get('name')}"
        _check_keys(case, CASE_KEYS, where)
        _check_keys(case["expect"], EXPECT_KEYS, f"{where} expect")
        merged = {**defaults, **(case.get("account") or {})}
        account = {k: v for k, v in merged.items() if _nullable(v) is not None}
        account_id = account["account_id"]
        scenarios.append(Scenario(
            id=f"{path.stem}::{case['name']}", policy=policy, account=account, as_of=instant(case["as_of"]),
            expect=case["expect"],
            history=tuple(event_from(e, account_id) for e in case.get("history") or ()),
            holds=tuple(hold_from(h, account_id) for h in case.get("holds") or ()),
            promises=tuple(promise_from(p, account_id) for p in case.get("promises") or ()),
            description=case.get("description")))
    return scenarios


@functools.lru_cache(maxsize=1)
def all_scenarios() -> tuple[Scenario, ...]:
    scenarios = [s for path in sorted(SCENARIOS.glob("*.yaml")) for s in load_scenario_file(path)]
    ids = [s.id for s in scenarios]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ScenarioFormatError(f"duplicate scenario names: {duplicates}")
    return tuple(scenarios)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Any test asking for ``scenario`` runs once per case of ``scenarios/*.yaml``."""
    if "scenario" in metafunc.fixturenames:
        cases = all_scenarios()
        metafunc.parametrize("scenario", cases, ids=[c.id for c in cases])


# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def policy_file() -> Callable[[str], Program]:
    """Compile a policy of ``tests/engine/policies`` by file name."""

    def load(name: str) -> Program:
        return compiled(POLICIES / name)
    return load


@pytest.fixture
def policy_text(tmp_path: Path) -> Callable[[str], Program]:
    """Write a policy given as YAML text to a temporary file and compile it."""
    counter = itertools.count()

    def write(text: str) -> Program:
        path = tmp_path / f"policy-{next(counter)}.yaml"
        path.write_text(text, encoding="utf-8")
        return compile_policy(load_policy(path))
    return write


@pytest.fixture
def history() -> Callable[..., list[ContactEvent]]:
    """History events from scenario-style lines: ``history("A1", "2025-03-03T16:00:00Z phone busy")``."""

    def build(account_id: str, *lines: str) -> list[ContactEvent]:
        return [event_from(line, account_id) for line in lines]
    return build


@pytest.fixture
def scenario_cases() -> tuple[Scenario, ...]:
    """Every case of ``scenarios/*.yaml``."""
    return all_scenarios()


@pytest.fixture
def read_scenario_file() -> Callable[[Path], list[Scenario]]:
    """The scenario table reader, for tests of the table format itself."""
    return load_scenario_file
