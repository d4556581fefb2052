"""The engine's inputs for one account: the account itself, its contact history, holds and promises.

:class:`AccountContext` is what expressions are evaluated against: the field values, the derived values
(filled in as they are computed), the scores, the as-of instant and date, and history questions answered
over this account's events only.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from ..lang.ast import CalendarDuration
from . import timecalc

UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=16_384)
def local_midnight(day: _dt.date, tz: ZoneInfo) -> _dt.datetime:
    """``timecalc.start_of_local_day``, kept: cadences, caps and cool-downs ask for the same few midnights."""
    return timecalc.start_of_local_day(day, tz)


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """One contact attempt or inbound contact from the history."""

    account_id: str
    channel: str
    outcome: str
    at: _dt.datetime
    direction: str = "outbound"
    person_id: str | None = None
    debt_id: str | None = None
    contact: str | None = None
    consent: bool = False
    template: str | None = None
    subject: str = "debtor"
    #: every debt the contact was about, when it concerned several (a conversation about two loans counts
    #: for each); ``debt_id`` alone when empty
    debt_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hold:
    """A hold on an account (dispute, bankruptcy, cease …) from ``start`` through ``end`` (inclusive)."""

    account_id: str
    type: str
    start: _dt.date
    end: _dt.date | None = None
    channels: tuple[str, ...] = ()
    note: str | None = None

    def active_on(self, day: _dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def covers(self, channel: str) -> bool:
        return not self.channels or channel in self.channels


@dataclass(frozen=True, slots=True)
class Promise:
    """A promise to pay ``amount`` by ``due`` (inclusive), made on ``promised_on``."""

    account_id: str
    promised_on: _dt.date
    due: _dt.date
    amount: Decimal
    paid: Decimal = Decimal(0)
    status: str = "pending"  # pending | kept | broken

    def is_broken(self, today: _dt.date) -> bool:
        if self.status == "broken":
            return True
        return self.status == "pending" and today > self.due and self.paid < self.amount

    def is_active(self, today: _dt.date) -> bool:
        return self.status == "pending" and self.promised_on <= today <= self.due


@dataclass
class Account:
    """One account row: identity, contact points, ladder state and the policy's field values."""

    account_id: str
    values: dict[str, Any]
    person_id: str | None = None
    debt_id: str | None = None
    timezones: tuple[str, ...] = ()
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    opt_out_channels: tuple[str, ...] = ()
    stage: str | None = None
    stage_entered: _dt.date | None = None
    #: the data row it came from, for messages (``accounts.csv:14``)
    row: int | None = None

    @property
    def person(self) -> str:
        return self.person_id or self.account_id

    @property
    def debt(self) -> str:
        return self.debt_id or self.account_id

    def contact_point(self, kind: str | None) -> str | None:
        return {"phone": self.phone, "email": self.email, "address": self.address}.get(kind or "", None)


def _event_order(event: ContactEvent) -> tuple[Any, ...]:
    return (event.at, event.account_id, event.channel, event.outcome, event.direction, event.person_id or "",
            event.debt_id or "", event.contact or "", event.consent, event.template or "", event.subject,
            event.debt_ids)


def _event_time(event: ContactEvent) -> _dt.datetime:
    return event.at


def ordered_events(events: Sequence[ContactEvent], as_of: _dt.datetime) -> list[ContactEvent]:
    """The events at or before ``as_of`` in decision order: by time, ties broken on the other columns.

    Events after the as-of instant have not happened yet from the decision's point of view; ties in time
    are broken on the event's other columns so the decision never depends on the input order.
    """
    past = [e for e in events if e.at <= as_of]
    if len(past) < 2:
        return past
    past.sort(key=_event_time)
    # the full order differs from the order by time only where two events share an instant
    previous = past[0].at
    for event in past[1:]:
        if event.at == previous:
            past.sort(key=_event_order)
            break
        previous = event.at
    return past


_BY_CHANNEL = "events by channel"
_NO_EVENTS: tuple[ContactEvent, ...] = ()

#: a time zone list → the zones, the primary zone (UTC when none)
ZoneInfoOf = tuple[tuple[ZoneInfo, ...], ZoneInfo]


@lru_cache(maxsize=4096)
def zones_of(timezones: tuple[str, ...]) -> ZoneInfoOf:
    """The account's zones as ``ZoneInfo`` objects and its primary zone (the first; UTC when none)."""
    zones = tuple(zone(z) for z in timezones)
    return zones, zones[0] if zones else UTC_ZONE


class AccountContext:
    """Evaluation context of one account at one as-of instant.

    ``events`` (the account's history at or before the as-of instant, in decision order) is put in order
    when it is first read: most accounts are decided without it. ``memo`` holds what the engine derives
    from the history for this account (the events a restriction counts, the attempts of an action), each
    computed once, when first needed.
    """

    __slots__ = ("account", "values", "scores", "as_of", "today", "zones", "primary_zone", "holds",
                 "promises", "memo", "has_history", "_history", "_events")

    def __init__(self, account: Account, as_of: _dt.datetime, events: Sequence[ContactEvent],
                 holds: Sequence[Hold], promises: Sequence[Promise], *,
                 local_dates: dict[ZoneInfo, _dt.date] | None = None) -> None:
        """``local_dates`` (zone → the as-of date there), when given, is consulted and filled: a caller
        deciding many accounts at one instant computes each zone's date once."""
        self.account = account
        self.values: dict[str, Any] = dict(account.values)
        self.scores: dict[str, Any] = {}
        self.as_of = as_of
        self.zones, primary = zones_of(tuple(account.timezones))
        self.primary_zone = primary
        if local_dates is None:
            self.today = timecalc.local_day(as_of, primary)
        else:
            today = local_dates.get(primary)
            if today is None:
                today = local_dates[primary] = timecalc.local_day(as_of, primary)
            self.today = today
        self._history = events
        #: whether any event was given (some may lie after the as-of instant)
        self.has_history = bool(events)
        self._events: list[ContactEvent] | None = None
        self.holds = tuple(holds)
        self.promises = tuple(promises)
        self.memo: dict[Any, Any] = {}

    @property
    def events(self) -> list[ContactEvent]:
        """The account's history at or before the as-of instant, by time (ties on the other columns)."""
        events = self._events
        if events is None:
            events = self._events = ordered_events(self._history, self.as_of)
        return events

    def events_on(self, channel: str) -> Sequence[ContactEvent]:
        """The account's history (as :attr:`events`) on one channel, in the same order."""
        by_channel: dict[str, list[ContactEvent]] | None = self.memo.get(_BY_CHANNEL)
        if by_channel is None:
            # one pass over the history serves every channel asked about
            by_channel = self.memo[_BY_CHANNEL] = {}
            for event in self.events:
                found = by_channel.get(event.channel)
                if found is None:
                    by_channel[event.channel] = [event]
                else:
                    found.append(event)
        return by_channel.get(channel, _NO_EVENTS)

    # ---- history questions used by expression functions --------------------------------------------

    def _outbound(self, channel: str) -> list[ContactEvent]:
        key = ("outbound", channel)
        found: list[ContactEvent] | None = self.memo.get(key)
        if found is None:
            own = self.account.account_id
            found = self.memo[key] = [e for e in self.events
                                      if e.direction == "outbound" and e.account_id == own
                                      and (channel == "any" or e.channel == channel)]
        return found

    def attempts(self, channel: str, window: _dt.timedelta) -> int:
        times = [e.at for e in self._outbound(channel)]
        if isinstance(window, CalendarDuration):
            days = int(window.total_seconds()) // 86400
            return timecalc.count_in_window(times, self.as_of, calendar_days=days, zone=self.primary_zone)
        return timecalc.count_in_window(times, self.as_of, sliding=window)

    def last_contact(self, channel: str) -> _dt.datetime | None:
        events = self._outbound(channel)
        return events[-1].at if events else None

    def has_hold(self, hold_type: str) -> bool:
        return any(h.type == hold_type and h.active_on(self.today) for h in self.holds)


def account_from_row(row: Mapping[str, Any], field_names: Sequence[str], defaults: Mapping[str, Any],
                     row_number: int | None = None) -> Account:
    """Build an :class:`Account` from a typed row (standard columns plus the policy's fields)."""
    values = {name: row.get(name) for name in field_names}
    for name, default in defaults.items():
        if values.get(name) is None and default is not None:
            values[name] = default
    zones = row.get("timezone") or ()
    if isinstance(zones, str):
        zones = tuple(z for z in zones.split(";") if z)
    return Account(
        account_id=str(row["account_id"]), values=values, person_id=row.get("person_id"),
        debt_id=row.get("debt_id"), timezones=tuple(zones), phone=row.get("phone"), email=row.get("email"),
        address=row.get("address"), opt_out_channels=tuple(row.get("opt_out_channels") or ()),
        stage=row.get("stage"), stage_entered=row.get("stage_entered"), row=row_number,
    )

