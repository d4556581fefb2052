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


class AccountContext:
    """Evaluation context of one account at one as-of instant."""

    __slots__ = ("account", "values", "scores", "as_of", "today", "zones", "primary_zone", "events", "holds",
                 "promises")

    def __init__(self, account: Account, as_of: _dt.datetime, events: Sequence[ContactEvent],
                 holds: Sequence[Hold], promises: Sequence[Promise]) -> None:
        self.account = account
        self.values: dict[str, Any] = dict(account.values)
        self.scores: dict[str, Any] = {}
        self.as_of = as_of
        self.zones = tuple(zone(z) for z in account.timezones)
        self.primary_zone = self.zones[0] if self.zones else UTC_ZONE
        self.today = timecalc.local_day(as_of, self.primary_zone)
        # events after the as-of instant have not happened yet from the decision's point of view; ties in
        # time are broken on the event's other columns so the decision never depends on the input order
        self.events = sorted((e for e in events if e.at <= as_of), key=_event_order)
        self.holds = tuple(holds)
        self.promises = tuple(promises)

    # ---- history questions used by expression functions --------------------------------------------

    def _outbound(self, channel: str) -> list[ContactEvent]:
        return [e for e in self.events if e.direction == "outbound" and e.account_id == self.account.account_id
                and (channel == "any" or e.channel == channel)]

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

