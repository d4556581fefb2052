"""The reference policy's decisions, written by hand in plain Python: the yardstick of the rows backend.

:func:`decide_portfolio` decides every account of a portfolio the way ``bench/reference-policy.yaml`` says,
with the rules of that one policy written out as ``if`` statements instead of being read from a policy:
segment, ladder, stage (with stage memory and ``min_days_in_stage``), the actions due, and the actions
blocked with the restrictions that block them and the earliest time every restriction allows them. It is
what a developer would write for this policy alone, with the obvious care for speed (the history grouped
by person once, each zone's local date and quiet hours worked out once per run), and nothing cleverer.

It covers what the portfolios of ``bench/generate.py`` hold: at most one time zone per account (US zones,
whose clock changes never fall at 08:00, 21:00 or midnight) and no promises to pay. The engine covers
everything else; ``tests/test_bench_handwritten.py`` checks that both give the same decisions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import holidays

UTC = dt.UTC
QUIET_START = dt.time(8)
QUIET_END = dt.time(21)
HIGH_BALANCE = Decimal(2500)

# stages, mildest first: (id, min_days_in_stage, actions in the order decisions list them: by priority,
# then as written); an action is (channel, template, cadence, cadence argument)
Action = tuple[str, str | None, str, Any]
EARLY: tuple[tuple[str, int, tuple[Action, ...]], ...] = (
    ("reminder", 3, (("sms", "reminder_sms", "on_days", (1, 4)), ("email", "reminder_email", "every", 7))),
    ("second_reminder", 3, (("sms", "payment_link_sms", "once", None),
                            ("email", "reminder_email", "every", 5))),
    ("call", 5, (("phone", None, "every", 2), ("sms", "payment_link_sms", "once", None))),
    ("daily_call", 4, (("phone", None, "every", 1), ("email", "reminder_email", "every", 7))),
    ("pre_letter", 0, (("phone", None, "every", 2), ("letter", "demand_letter", "once", None))),
)
MID: tuple[tuple[str, int, tuple[Action, ...]], ...] = (
    ("demand_letter", 5, (("letter", "demand_letter", "once", None), ("phone", None, "every", 3))),
    ("calls", 5, (("phone", None, "every", 2), ("sms", "payment_link_sms", "on_days", (1, 6)))),
    ("settlement_offer", 7, (("phone", None, "every", 3), ("email", "settlement_email", "once", None))),
    ("intensive", 7, (("phone", None, "every", 1), ("sms", "payment_link_sms", "every", 5))),
    ("final_notice", 10, (("letter", "final_notice", "once", None), ("phone", None, "every", 3))),
    ("pre_charge_off", 0, (("phone", None, "every", 2), ("email", "settlement_email", "on_days", (1,)))),
)
LATE: tuple[tuple[str, int, tuple[Action, ...]], ...] = (
    ("field_visit", 14, (("field_visit", None, "once", None), ("phone", None, "every", 7))),
    ("agency_calls", 10, (("phone", None, "every", 3), ("letter", "demand_letter", "on_days", (1, 15)))),
    ("lawyer_letter", 30, (("lawyer_letter", "lawyer_demand", "once", None),)),
    ("pre_litigation", 14, (("phone", None, "every", 7), ("letter", "final_notice", "once", None))),
    ("litigation", 60, (("legal", None, "once", None),)),
    ("judgment", 0, (("letter", "judgment_notice", "once", None), ("phone", None, "every", 14))),
    ("write_off_review", 0, ()),
)
LADDERS = {"early": EARLY, "mid": MID, "late": LATE}
STAGE_INDEX = {name: {stage[0]: i for i, stage in enumerate(stages)} for name, stages in LADDERS.items()}
# the contact data each channel needs
NEEDS = {"sms": "phone", "phone": "phone", "email": "email", "letter": "address", "field_visit": "address",
         "lawyer_letter": "address", "legal": None}
QUIET_CHANNELS = frozenset({"phone", "sms", "email", "field_visit"})
HOLIDAY_CHANNELS = frozenset({"phone", "sms", "field_visit"})
# hold restrictions in policy order: (id, hold type, the action it still allows)
HOLD_RULES = (("bankruptcy-hold", "bankruptcy", None), ("cease-hold", "cease", ("letter", "cease_ack")),
              ("dispute-hold", "dispute", ("letter", "dispute_verification")))
NOT_COUNTED = frozenset({"busy", "not_in_service"})
CONVERSATIONS = frozenset({"conversation", "right_party_contact"})
MAX_STEPS = 64


class Outcome(NamedTuple):
    """One account's decision: what the comparison with the engine looks at."""

    account_id: str
    segment: str | None
    ladder: str | None
    stage: str | None
    #: (channel, template) of each action due
    due: tuple[tuple[str, str | None], ...]
    #: (channel, template, ids of the blocking restrictions, next allowed time) of each action blocked
    blocked: tuple[tuple[str, str | None, tuple[str, ...], dt.datetime | None], ...]


@lru_cache(maxsize=8)
def _us_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("US", years=year))


def _is_holiday(day: dt.date) -> bool:
    return day in _us_holidays(day.year)


@lru_cache(maxsize=65_536)
def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)


def _quiet_next(at: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """None when ``at`` is within 08:00-21:00 local time, else the next 08:00."""
    local = at.astimezone(zone)
    clock = local.time()
    if QUIET_START <= clock < QUIET_END:
        return None
    day = local.date() if clock < QUIET_START else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, QUIET_START, tzinfo=zone).astimezone(UTC)


def _holiday_next(at: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """None on an ordinary local day, else the local midnight that ends the run of holidays."""
    day = at.astimezone(zone).date()
    if not _is_holiday(day):
        return None
    while _is_holiday(day):
        day += dt.timedelta(days=1)
    return _midnight(day, zone)


class _Account:
    """What the restrictions read about one account, worked out once."""

    __slots__ = ("account", "zone", "calls", "conversations", "emails", "last_sms", "holds", "status")

    def __init__(self, account: Any, zone: ZoneInfo | None, events: Sequence[Any],
                 holds: Sequence[Any]) -> None:
        self.account = account
        self.zone = zone
        tz = zone or UTC
        debt = account.debt_id or account.account_id
        calls: list[tuple[dt.datetime, dt.date]] = []
        conversations: list[tuple[dt.datetime, dt.datetime]] = []
        emails: list[tuple[dt.datetime, dt.date]] = []
        last_sms: dt.datetime | None = None
        for e in events:
            if e.channel == "phone":
                if e.debt_id == debt:
                    if e.direction == "outbound" and e.outcome not in NOT_COUNTED and not e.consent:
                        calls.append((e.at, e.at.astimezone(tz).date()))
                    if e.outcome in CONVERSATIONS:
                        end = _midnight(e.at.astimezone(tz).date() + dt.timedelta(days=7), tz)
                        conversations.append((e.at, end))
            elif e.channel == "email":
                if e.direction == "outbound":
                    emails.append((e.at, e.at.astimezone(tz).date()))
            elif e.channel == "sms" and e.direction == "outbound" and (last_sms is None or e.at > last_sms):
                last_sms = e.at
        self.calls = calls
        self.conversations = conversations
        self.emails = emails
        self.last_sms = last_sms
        self.holds = holds
        self.status = account.values["status"]


def _cap(events: list[tuple[dt.datetime, dt.date]], limit: int, at: dt.datetime,
         tz: ZoneInfo) -> tuple[bool, dt.datetime | None]:
    """Whether ``limit`` counted events fall within today and the 6 days before, and when enough leave."""
    if len(events) < limit:
        return False, None
    today = at.astimezone(tz).date()
    first = today - dt.timedelta(days=6)
    if sum(1 for t, d in events if t <= at and first <= d <= today) < limit:
        return False, None
    for leave in sorted({_midnight(d + dt.timedelta(days=7), tz) for _, d in events}):
        if leave > at:
            day = leave.astimezone(tz).date()
            start = day - dt.timedelta(days=6)
            if sum(1 for t, d in events if t <= leave and start <= d <= day) < limit:
                return True, leave
    raise AssertionError("a cap always clears once its events have left the period")


def _blockers(state: _Account, channel: str, template: str | None,
              at: dt.datetime) -> list[tuple[str, dt.datetime | None]]:
    """Every restriction that blocks the action at ``at``, in the policy's order, with its own next time."""
    account = state.account
    out: list[tuple[str, dt.datetime | None]] = []
    if channel in account.opt_out_channels:
        out.append(("opt-out", None))
    need = NEEDS[channel]
    if need is not None and not getattr(account, need):
        out.append(("contact-data", None))
    zone = state.zone
    tz = zone or UTC
    if channel in QUIET_CHANNELS:
        if zone is None:
            out.append(("quiet-hours", None))
        else:
            nxt = _quiet_next(at, zone)
            if nxt is not None:
                out.append(("quiet-hours", nxt))
    if channel in HOLIDAY_CHANNELS:
        nxt = _holiday_next(at, tz)
        if nxt is not None:
            out.append(("us-holidays", nxt))
    if channel == "phone" and state.calls:
        capped, nxt = _cap(state.calls, 7, at, tz)
        if capped:
            out.append(("seven-in-seven", nxt))
    if channel == "email" and state.emails:
        capped, nxt = _cap(state.emails, 3, at, tz)
        if capped:
            out.append(("email-weekly-cap", nxt))
    if channel == "phone" and state.conversations:
        until = None
        for _, end in state.conversations:
            if at < end and (until is None or end > until):
                until = end
        if until is not None:
            out.append(("after-conversation", until))
    if channel == "sms" and state.last_sms is not None and at < state.last_sms + dt.timedelta(hours=24):
        out.append(("sms-gap", state.last_sms + dt.timedelta(hours=24)))
    if state.holds:
        day = at.astimezone(tz).date()
        for rule, kind, allowed in HOLD_RULES:
            if allowed is not None and allowed == (channel, template):
                continue
            active = [h for h in state.holds
                      if h.type == kind and h.start <= day and (h.end is None or day <= h.end)
                      and (not h.channels or channel in h.channels)]
            if active:
                if any(h.end is None for h in active):
                    out.append((rule, None))
                else:
                    out.append((rule, _midnight(max(h.end for h in active) + dt.timedelta(days=1), tz)))
    if state.status in ("bankrupt", "deceased"):
        out.append(("status-block", None))
    return out


def _next_allowed(state: _Account, channel: str, template: str | None, start: dt.datetime,
                  first: list[tuple[str, dt.datetime | None]]) -> dt.datetime | None:
    at, blockers = start, first
    for _ in range(MAX_STEPS):
        if not blockers:
            return at
        if any(nxt is None for _, nxt in blockers):
            return None
        candidate = max(nxt for _, nxt in blockers if nxt is not None)
        if candidate <= at:
            return None
        at = candidate
        blockers = _blockers(state, channel, template, at)
    return None


def _target(ladder: str, dpd: int, high: bool, never_paid: bool, broken: int) -> int | None:
    """The most severe stage whose ``enter`` holds."""
    if ladder == "early":
        if dpd >= 27:
            return 4
        if dpd >= 20:
            return 3
        if dpd >= 10 or (dpd >= 5 and high) or (dpd >= 3 and never_paid) or broken >= 1:
            return 2
        if dpd >= 6:
            return 1
        return 0 if dpd >= 1 else None
    if ladder == "mid":
        for index, threshold in ((5, 85), (4, 75), (3, 60), (2, 50), (1, 40), (0, 31)):
            if dpd >= threshold:
                return index
        return None
    if (dpd >= 181 and not high) or dpd >= 360:
        return 6
    if dpd >= 270 and high:
        return 5
    if dpd >= 181 and high:
        return 4
    for index, threshold in ((3, 150), (2, 121), (1, 105), (0, 91)):
        if dpd >= threshold:
            return index
    return None


def _due(kind: str, argument: Any, channel: str, template: str | None, own: Sequence[Any], account_id: str,
         entered: dt.date, today: dt.date, tz: ZoneInfo) -> bool:
    """Whether the cadence makes the action due: attempts are this account's outbound contacts on the
    channel (with the template, or none recorded) since the local midnight the stage was entered."""
    attempts: list[dt.datetime] = []
    if own:
        stage_start = _midnight(entered, tz)
        attempts = [e.at for e in own if e.channel == channel and e.account_id == account_id
                    and e.direction == "outbound" and (template is None or e.template in (None, template))
                    and e.at >= stage_start]
    if kind == "once":
        return not attempts
    if kind == "every":
        if not attempts:
            return True
        return today >= max(attempts).astimezone(tz).date() + dt.timedelta(days=argument)
    day_in_stage = (today - entered).days + 1
    reached = [d for d in argument if d <= day_in_stage]
    if not reached:
        return False
    latest_start = _midnight(entered + dt.timedelta(days=reached[-1] - 1), tz)
    return not any(at >= latest_start for at in attempts)


def decide_portfolio(accounts: Iterable[Any], history: Iterable[Any], holds: Iterable[Any],
                     as_of: dt.datetime) -> list[Outcome]:
    """Decide every account at ``as_of``. ``accounts``, ``history`` and ``holds`` are the engine's
    :class:`~collectrules.engine.account.Account`, ``ContactEvent`` and ``Hold`` objects."""
    as_of = as_of.astimezone(UTC)
    by_person: dict[str, list[Any]] = defaultdict(list)
    for event in history:
        if event.at <= as_of:
            by_person[event.person_id or event.account_id].append(event)
    holds_of: dict[str, list[Any]] = defaultdict(list)
    for hold in holds:
        holds_of[hold.account_id].append(hold)
    zones: dict[str, ZoneInfo] = {}
    today_in: dict[ZoneInfo, dt.date] = {}
    out = []
    for account in accounts:
        name = account.timezones[0] if account.timezones else None
        zone = None
        if name is not None:
            zone = zones.get(name)
            if zone is None:
                zone = zones[name] = ZoneInfo(name)
        tz = zone or UTC
        today = today_in.get(tz)
        if today is None:
            today = today_in[tz] = as_of.astimezone(tz).date()
        events = by_person.get(account.person_id or account.account_id, ())
        out.append(_decide(account, zone, tz, today, events, holds_of.get(account.account_id, ()), as_of))
    return out


def _decide(account: Any, zone: ZoneInfo | None, tz: ZoneInfo, today: dt.date, events: Sequence[Any],
            holds: Sequence[Any], as_of: dt.datetime) -> Outcome:
    values = account.values
    dpd = values["dpd"]
    high = values["balance"] >= HIGH_BALANCE
    if dpd <= 30 and not high:
        segment = "early_low"
    elif dpd <= 30:
        segment = "early_high"
    elif 31 <= dpd <= 90:
        segment = "mid"
    elif 91 <= dpd <= 180:
        segment = "late"
    elif dpd > 180 and high:
        segment = "legal"
    else:
        segment = "writeoff_review"
    ladder = "early" if dpd <= 30 else "mid" if dpd <= 90 else "late"
    if dpd <= 0:
        return Outcome(account.account_id, segment, ladder, None, (), ())
    target = _target(ladder, dpd, high, values["last_payment_date"] is None, values["broken_promises"])
    stages = LADDERS[ladder]
    current = STAGE_INDEX[ladder].get(account.stage) if account.stage else None
    entered = account.stage_entered if current is not None else None
    if current is not None and entered is not None and target != current \
            and (today - entered).days + 1 <= stages[current][1]:
        index = current
    elif target is None:
        return Outcome(account.account_id, segment, ladder, None, (), ())
    else:
        index = target
        entered = (entered or today) if target == current else today
    assert entered is not None
    stage, _, actions = stages[index]
    due: list[tuple[str, str | None]] = []
    blocked: list[tuple[str, str | None, tuple[str, ...], dt.datetime | None]] = []
    state: _Account | None = None
    for channel, template, kind, argument in actions:
        if not _due(kind, argument, channel, template, events, account.account_id, entered, today, tz):
            continue
        if state is None:
            state = _Account(account, zone, events, holds)
        blockers = _blockers(state, channel, template, as_of)
        if not blockers:
            due.append((channel, template))
            continue
        nxt = _next_allowed(state, channel, template, as_of, blockers)
        blocked.append((channel, template, tuple(rule for rule, _ in blockers), nxt))
    return Outcome(account.account_id, segment, ladder, stage, tuple(due), tuple(blocked))


def engine_outcome(decision: Any) -> Outcome:
    """The same summary of an engine :class:`~collectrules.engine.decision.Decision`."""
    return Outcome(
        decision.account_id, decision.segment, decision.ladder, decision.stage,
        tuple((a.channel, a.template) for a in decision.due),
        tuple((b.action.channel, b.action.template, tuple(r.restriction for r in b.reasons),
               b.next_allowed.astimezone(UTC) if b.next_allowed is not None else None)
              for b in decision.blocked))
