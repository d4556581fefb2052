"""Properties of contact restrictions over random policies, histories and as-of instants.

The policies are drawn from a small space: windows (random hours, the debtor's zones or a fixed zone, with or
without a holiday calendar), caps, cool-downs, gaps and holds (with or without an end date), applied to calls,
texts or both. Accounts live in one or two zones chosen for their daylight-saving quirks, and as-of instants
cluster around the clock changes of 2024-2026.

The stage calls and texts ``every: 1m`` and every history event lies at least a minute before the as-of
instant, so the cadence keeps both actions due and whatever changes comes from the restrictions alone.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectrules import compile_policy, load_policy
from collectrules.engine.account import ContactEvent, Hold
from collectrules.engine.decision import Decision
from collectrules.engine.program import Program
from collectrules.registry import Registry

ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "America/Santiago",
         "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Auckland")
# days on which one of those zones changes its clocks (US, EU, Chile, Lord Howe, New Zealand)
CLOCK_CHANGE_DAYS = tuple(_dt.datetime(y, m, d, 12, tzinfo=_dt.UTC) for y, m, d in (
    (2024, 3, 10), (2024, 3, 31), (2024, 4, 7), (2024, 9, 29), (2024, 10, 6), (2024, 10, 27), (2024, 11, 3),
    (2025, 3, 9), (2025, 3, 30), (2025, 4, 6), (2025, 9, 7), (2025, 9, 28), (2025, 10, 26), (2025, 11, 2),
    (2026, 3, 8), (2026, 3, 29), (2026, 4, 5), (2026, 10, 4), (2026, 10, 25), (2026, 11, 1)))
CHANNEL_CHOICES: tuple[list[str] | None, ...] = (None, ["phone"], ["sms"], ["phone", "sms"])
ONE_SECOND = _dt.timedelta(seconds=1)
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

REGISTRY = Registry.builtin_only()
_PROGRAMS: dict[str, Program] = {}


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("random-policies")


def program_for(text: str, directory: Path) -> Program:
    """Compile a drawn policy once; hypothesis often draws the same restrictions again."""
    program = _PROGRAMS.get(text)
    if program is None:
        path = directory / f"policy-{len(_PROGRAMS)}.yaml"
        path.write_text(text, encoding="utf-8")
        program = _PROGRAMS[text] = compile_policy(load_policy(path, REGISTRY), REGISTRY)
    return program


# ---- strategies --------------------------------------------------------------------------------------------


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def windows(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(st.integers(0, 47)) * 30
    end = draw(st.integers(start // 30 + 1, 48)) * 30
    hours: Any = f"{_clock(start)}-{_clock(end)}"
    if draw(st.booleans()):
        hours = {"default": hours, draw(st.sampled_from(["sat", "sun", "mon"])): "closed"}
    spec: dict[str, Any] = {"allowed_hours": hours,
                            "timezone": draw(st.sampled_from(("debtor", "debtor", *ZONES)))}
    if draw(st.integers(0, 3)) == 0:
        spec["calendar"] = draw(st.sampled_from(["US", "GB", "NZ"]))
    return spec


caps = st.builds(
    lambda attempts, per, key, busy: {"max_attempts": attempts, "per": per, "key": key,
                                      **({"count": {"exclude_outcomes": ["busy"]}} if busy else {})},
    st.integers(1, 3), st.sampled_from(["1d", "2d", "7d", "90m", "6h", "24h"]),
    st.sampled_from(["person", "account", "debt"]), st.booleans())
cooldowns = st.builds(
    lambda block, key, conversation: {"block_for": block, "key": key,
                                      "after": {"outcomes": ["conversation"]} if conversation else {}},
    st.sampled_from(["1d", "3d", "12h", "45m"]), st.sampled_from(["person", "account", "debt"]),
    st.booleans())
gaps = st.builds(lambda gap: {"min_gap": gap}, st.sampled_from(["30m", "4h", "1d"]))
hold_restrictions = st.just({"holds": ["dispute"]})


@st.composite
def policies(draw: st.DrawFn) -> str:
    kind = st.one_of(windows(), caps, cooldowns, gaps, hold_restrictions)
    kinds = draw(st.lists(kind, min_size=1, max_size=4))
    restrictions = []
    for index, kind in enumerate(kinds):
        channels = draw(st.sampled_from(CHANNEL_CHOICES))
        restrictions.append({"id": f"r{index}", **({"channels": channels} if channels else {}), **kind})
    document = {
        "apiVersion": "collectrules/v1", "kind": "Policy", "metadata": {"name": "random", "version": "1"},
        "fields": {"dpd": "int"},
        "segments": {"rules": [{"id": "delinquent", "when": "dpd >= 1"}]},
        "escalation": {"ladders": {"main": {"segments": ["delinquent"], "stages": [
            {"id": "work", "enter": "dpd >= 1",
             "actions": [{"channel": "phone", "every": "1m"}, {"channel": "sms", "every": "1m"}]}]}}},
        "contact": {"restrictions": restrictions},
    }
    return json.dumps(document, indent=1)  # JSON is YAML


as_of_instants = st.one_of(
    st.datetimes(min_value=_dt.datetime(2024, 1, 1), max_value=_dt.datetime(2026, 12, 31),
                 timezones=st.just(_dt.UTC)),
    st.builds(lambda day, seconds: day + _dt.timedelta(seconds=seconds), st.sampled_from(CLOCK_CHANGE_DAYS),
              st.integers(-2 * 86400, 2 * 86400)),
).map(lambda value: value.replace(microsecond=0))

# whose event it is: this account, another account of the same person, a co-obligor's account on the same debt
EVENT_OWNERS = (("A1", "P1", "D1"), ("A2", "P1", "D2"), ("A3", "P3", "D1"))


@st.composite
def events_before(draw: st.DrawFn, as_of: _dt.datetime) -> ContactEvent:
    account_id, person_id, debt_id = draw(st.sampled_from(EVENT_OWNERS))
    age = draw(st.integers(60, 9 * 86400))  # at least a minute old: the `every: 1m` cadence stays due
    return ContactEvent(
        account_id=account_id, person_id=person_id, debt_id=debt_id,
        channel=draw(st.sampled_from(["phone", "sms"])),
        outcome=draw(st.sampled_from(["no_answer", "busy", "conversation", "voicemail", "delivered"])),
        at=as_of - _dt.timedelta(seconds=age),
        direction=draw(st.sampled_from(["outbound", "outbound", "outbound", "inbound"])), contact="+15550100")


@st.composite
def holds_near(draw: st.DrawFn, as_of: _dt.datetime) -> Hold:
    start = as_of.date() + _dt.timedelta(days=draw(st.integers(-5, 2)))
    length = draw(st.none() | st.integers(0, 5))
    return Hold("A1", "dispute", start, None if length is None else start + _dt.timedelta(days=length))


@dataclass(frozen=True)
class Case:
    policy: str
    zones: tuple[str, ...]
    as_of: _dt.datetime
    history: tuple[ContactEvent, ...]
    holds: tuple[Hold, ...]

    def account(self) -> dict[str, Any]:
        return {"account_id": "A1", "person_id": "P1", "debt_id": "D1", "dpd": "10", "phone": "+15550100",
                "timezone": ";".join(self.zones)}


@st.composite
def cases(draw: st.DrawFn) -> Case:
    as_of = draw(as_of_instants)
    return Case(
        policy=draw(policies()),
        zones=tuple(draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=2, unique=True))),
        as_of=as_of,
        history=tuple(draw(st.lists(events_before(as_of), max_size=8))),
        holds=tuple(draw(st.lists(holds_near(as_of), max_size=2))),
    )


# ---- helpers -----------------------------------------------------------------------------------------------


def decide(program: Program, case: Case, at: _dt.datetime,
           history: Sequence[ContactEvent] | None = None) -> Decision:
    events = case.history if history is None else history
    return program.evaluate(case.account(), events, at, holds=case.holds)


def blocked_times(decision: Decision) -> dict[str, _dt.datetime | None]:
    return {b.action.channel: b.next_allowed for b in decision.blocked}


def due_channels(decision: Decision) -> set[str]:
    return {a.channel for a in decision.due}


def not_earlier(later: _dt.datetime | None, earlier: _dt.datetime | None) -> bool:
    """``later >= earlier`` where ``None`` (not foreseeable) is later than every instant."""
    if later is None:
        return True
    return earlier is not None and later >= earlier


def iter_blocked(decision: Decision) -> Iterator[tuple[str, _dt.datetime]]:
    for channel, when in blocked_times(decision).items():
        if when is not None:
            yield channel, when


# ---- properties --------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(case=cases())
def test_next_allowed_is_the_first_instant_the_action_is_allowed(case: Case, policy_dir: Path) -> None:
    program = program_for(case.policy, policy_dir)
    decision = decide(program, case, case.as_of)
    assert due_channels(decision) | set(blocked_times(decision)) == {"phone", "sms"}
    for channel, when in iter_blocked(decision):
        assert when > case.as_of
        at_next = decide(program, case, when)
        assert channel in due_channels(at_next), (channel, when, at_next.to_json())
        just_before = when - ONE_SECOND
        if just_before >= case.as_of:
            assert channel in blocked_times(decide(program, case, just_before)), (channel, just_before)


@PROPERTY_SETTINGS
@given(case=cases(), data=st.data())
def test_adding_a_history_event_never_unblocks_an_action(case: Case, data: st.DataObject,
                                                         policy_dir: Path) -> None:
    program = program_for(case.policy, policy_dir)
    extra = data.draw(events_before(case.as_of))
    before = blocked_times(decide(program, case, case.as_of))
    after = blocked_times(decide(program, case, case.as_of, [*case.history, extra]))
    assert set(before) <= set(after)
    for channel, when in before.items():
        assert not_earlier(after[channel], when), (channel, when, after[channel])


@PROPERTY_SETTINGS
@given(case=cases(), data=st.data())
def test_decisions_are_deterministic_and_ignore_history_order(case: Case, data: st.DataObject,
                                                             policy_dir: Path) -> None:
    program = program_for(case.policy, policy_dir)
    reference = decide(program, case, case.as_of).to_json()
    assert decide(program, case, case.as_of).to_json() == reference
    shuffled = data.draw(st.permutations(case.history))
    assert decide(program, case, case.as_of, shuffled).to_json() == reference
