"""Contact restrictions, compiled: does a restriction allow this action at this instant, and if not, why
and from when?

Each restriction kind is a small class with one method, ``check(ctx, action, at)``, that returns ``None``
when the action is allowed at ``at`` and otherwise a :class:`Reason` carrying the earliest instant at which
that restriction alone allows it (``None`` when that is not foreseeable: an open-ended hold, a condition on
account data). :func:`earliest_allowed` combines all of them by iterating to a fixed point: the candidate
instant moves to the latest of the blockers' next-allowed instants until every restriction allows it.

History is counted as it stands at the as-of instant: the next-allowed time assumes no new contact. What a
restriction derives from an account's history (the events it counts, the contacts that start a cool-down,
the last attempt) is computed once per account, when an action first needs it, and kept in the account
context's ``memo``. A window's answer depends only on the instant and the zones, so it is kept per
(instant, zones) for every account that asks again.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from ..backends.rows import ExprRuntimeError
from ..errors import Location
from ..policy import model as M
from . import timecalc
from .account import AccountContext, ContactEvent, local_midnight, zone
from .decision import ActionRef, Reason

#: fixed-point iterations before giving up on a next-allowed time (each step moves strictly forward)
MAX_NEXT_ALLOWED_STEPS = 64
#: answers of a window kept per (instant, zones) before the store is emptied and filled again
_WINDOW_MEMO_SIZE = 65_536

Check = Callable[[AccountContext, ActionRef, _dt.datetime], Reason | None]

_UTC = _dt.UTC
_MISSING = object()


def _fmt_local(at: _dt.datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"


class CompiledRestriction:
    """Base: identity and the reason factory shared by every kind."""

    __slots__ = ("spec", "id", "location", "_explain", "_source")

    #: never blocks an account without contact history
    reads_history = False
    #: never blocks an account without holds
    reads_holds = False

    def __init__(self, spec: M.Restriction) -> None:
        self.spec = spec
        self.id = spec.id
        self.location: Location = spec.location
        self._explain = spec.explain
        self._source = spec.source

    def applies(self, action: ActionRef) -> bool:
        return self.spec.applies_to(action.channel, action.subject)

    def reason(self, detail: str, next_allowed: _dt.datetime | None) -> Reason:
        message = f"{self._explain} ({detail})" if self._explain else detail
        return Reason(self.id, message, self.location, next_allowed, self._source)

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        raise AssertionError("every restriction kind overrides check()")


def _key_matches(key: str, event: ContactEvent, ctx: AccountContext) -> bool:
    account = ctx.account
    own = event.account_id == account.account_id
    if key == "account":
        return own
    if key == "debt":
        if account.debt in event.debt_ids:
            # a contact about several debts counts for each of them
            return True
        # an event that does not name its debt concerns its own account's debt (as the portfolio fills it)
        return (event.debt_id or (account.debt if own else event.account_id)) == account.debt
    if key == "phone":
        if account.phone is None:
            # without a number on file the account stands in for it, as for the other keys
            return own
        # an event of this account that did not record the number dialled counts against the number on file:
        # a contact limit must not be evaded by a missing column
        return event.contact == account.phone or (own and event.contact is None)
    # an event that does not name its person concerns its own account's person
    return (event.person_id or (account.person if own else event.account_id)) == account.person


def _filter_events(ctx: AccountContext, key: str, spec: M.EventFilter,
                   default_channels: frozenset[str] | None) -> list[_dt.datetime]:
    """The times of the account's events that ``spec`` selects for ``key``, in decision order."""
    channels = spec.channels if spec.channels is not None else default_channels
    direction = spec.direction
    outcomes = spec.outcomes
    excluded = spec.exclude_outcomes
    exclude_consented = spec.exclude_consented
    out = []
    if channels is not None and len(channels) == 1:
        # the events of the one channel, in the same order
        (channel,) = channels
        events = ctx.events_on(channel)
    else:
        events = ctx.events
    for event in events:
        if direction != "any" and event.direction != direction:
            continue
        if channels is not None and event.channel not in channels:
            continue
        if outcomes is not None and event.outcome not in outcomes:
            continue
        if event.outcome in excluded:
            continue
        if exclude_consented and event.consent:
            continue
        if not _key_matches(key, event, ctx):
            continue
        out.append(event.at)
    return out


class WindowRestriction(CompiledRestriction):
    """Allowed hours in the debtor's local time (every known zone must allow), and holidays."""

    __slots__ = ("schedule", "calendar", "fixed_zone", "_fixed_zones", "_unknown_zone", "_memo")

    def __init__(self, spec: M.Restriction) -> None:
        super().__init__(spec)
        self.schedule = spec.schedule
        self.calendar = timecalc.HolidayCalendar(spec.calendar) if spec.calendar else None
        self.fixed_zone = None if spec.timezone == "debtor" else zone(spec.timezone)
        self._fixed_zones: tuple[ZoneInfo, ...] = (self.fixed_zone,) if self.fixed_zone else ()
        self._unknown_zone = self.reason(
            "the debtor's time zone is unknown, so local hours cannot be respected", None)
        self._memo: dict[tuple[_dt.datetime, tuple[ZoneInfo, ...]], Reason | None] = {}

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        zones = self._fixed_zones or ctx.zones
        if not zones:
            if self.schedule is not None:
                return self._unknown_zone
            # a holiday calendar without hours needs only a local date: without a zone it is taken in UTC
            zones = (ctx.primary_zone,)
        key = (at, zones)
        found = self._memo.get(key, _MISSING)
        if found is _MISSING:
            if len(self._memo) >= _WINDOW_MEMO_SIZE:
                self._memo.clear()
            found = self._memo[key] = self._judge(at, zones)
        return found  # type: ignore[return-value]

    def _judge(self, at: _dt.datetime, zones: tuple[ZoneInfo, ...]) -> Reason | None:
        if timecalc.is_allowed_at(at, zones, self.schedule, self.calendar):
            return None
        nxt = timecalc.next_allowed(at, zones, self.schedule, self.calendar)
        return self.reason(self._detail(at, zones), nxt)

    def _detail(self, at: _dt.datetime, zones: Sequence[ZoneInfo]) -> str:
        for tz in zones:
            day = timecalc.local_day(at, tz)
            if self.calendar is not None and self.calendar.is_holiday(day):
                name = self.calendar.holiday_name(day) or "public holiday"
                return f"{day.isoformat()} is a holiday in {self.calendar.code} ({name})"
        for tz in zones:
            if not timecalc.is_allowed_at(at, (tz,), self.schedule, None):
                hours = self.spec.schedule_text or "the allowed hours"
                return f"{_fmt_local(at, tz)} is outside {hours} in {tz.key}"
        return "outside the allowed hours"


class CapRestriction(CompiledRestriction):
    """At most N counted attempts per key within a window."""

    __slots__ = ("_max", "_key", "_count", "_days", "_sliding", "_what", "_period")
    reads_history = True

    def __init__(self, spec: M.Restriction) -> None:
        super().__init__(spec)
        assert spec.per is not None and spec.count is not None and spec.max_attempts is not None
        self._max = spec.max_attempts
        self._key = spec.key
        self._count = spec.count
        self._days = spec.per.calendar_days
        self._sliding = spec.per.sliding
        self._period = spec.per.text
        self._what = "/".join(sorted(spec.count.channels or spec.channels or ())) or "contact"

    def _counted(self, ctx: AccountContext) -> tuple[list[_dt.datetime], list[_dt.date]]:
        """The counted events in UTC and, for calendar days, their local dates in the primary zone."""
        found = ctx.memo.get(self)
        if found is None:
            counted = _filter_events(ctx, self._key, self._count, self.spec.channels)
            times = [t.astimezone(_UTC) for t in counted]
            tz = ctx.primary_zone
            days = [t.astimezone(tz).date() for t in times] if self._days is not None else []
            found = ctx.memo[self] = (times, days)
        return found  # type: ignore[no-any-return]

    def _count_at(self, times: list[_dt.datetime], days: list[_dt.date], at_utc: _dt.datetime,
                  tz: ZoneInfo) -> int:
        """``timecalc.count_in_window``: the counted events within the period that ends at ``at_utc``."""
        if self._days is not None:
            # today and the N-1 calendar days before it, in the debtor's primary zone
            today = at_utc.astimezone(tz).date()
            first_day = today - _dt.timedelta(days=self._days - 1)
            return sum(1 for t, d in zip(times, days, strict=True) if t <= at_utc and first_day <= d <= today)
        assert self._sliding is not None
        start = at_utc - self._sliding
        return sum(1 for t in times if start < t <= at_utc)

    def _next_under(self, ctx: AccountContext, times: list[_dt.datetime], days: list[_dt.date],
                    at_utc: _dt.datetime) -> _dt.datetime:
        """``timecalc.cap_next_allowed``: the first instant after ``at_utc`` at which an event has left the
        period and fewer than the limit remain (local midnight N days after its day, or ``event + per``)."""
        tz = ctx.primary_zone
        key = (self, "leave")
        leaves: list[_dt.datetime] | None = ctx.memo.get(key)
        if leaves is None:
            if self._days is not None:
                span = _dt.timedelta(days=self._days)
                leaves = sorted({local_midnight(d + span, tz) for d in days})
            else:
                assert self._sliding is not None
                leaves = sorted({t + self._sliding for t in times})
            ctx.memo[key] = leaves
        for candidate in leaves:
            if candidate > at_utc and self._count_at(times, days, candidate, tz) < self._max:
                return candidate
        # Unreachable: once the last event has left, the count is zero.
        raise AssertionError("no instant found at which the cap clears")

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        if not ctx.has_history:
            return None
        times, days = self._counted(ctx)
        if len(times) < self._max:
            return None
        at_utc = at.astimezone(_UTC)
        count = self._count_at(times, days, at_utc, ctx.primary_zone)
        if count < self._max:
            return None
        nxt = self._next_under(ctx, times, days, at_utc)
        return self.reason(f"{count} counted {self._what} attempts per {self._key} in {self._period}; "
                           f"the limit is {self._max}", nxt)


class CooldownRestriction(CompiledRestriction):
    """No contact for a period after a qualifying event (for d/w: the event's day is day 1)."""

    __slots__ = ("_after", "_days", "_sliding", "_outcomes", "_block_text")
    reads_history = True

    def __init__(self, spec: M.Restriction) -> None:
        super().__init__(spec)
        assert spec.after is not None and spec.block_for is not None
        self._after = spec.after
        self._days = spec.block_for.calendar_days
        self._sliding = spec.block_for.sliding
        self._block_text = spec.block_for.text
        self._outcomes = "/".join(sorted(spec.after.outcomes)) if spec.after.outcomes else "contact"

    def _ends(self, ctx: AccountContext) -> list[tuple[_dt.datetime, _dt.datetime]]:
        """(end of the cool-down, the contact that starts it) for every contact that starts one."""
        found = ctx.memo.get(self)
        if found is None:
            # without its own channels, a cool-down reacts to contacts on the channels it restricts
            times = _filter_events(ctx, self.spec.key, self._after, self.spec.channels)
            found = ctx.memo[self] = [(self._end(t, ctx.primary_zone), t) for t in times]
        return found  # type: ignore[no-any-return]

    def _end(self, event_at: _dt.datetime, tz: ZoneInfo) -> _dt.datetime:
        """``timecalc.cooldown_until``: local midnight after day N, or ``event + sliding``."""
        if self._days is not None:
            return local_midnight(event_at.astimezone(tz).date() + _dt.timedelta(days=self._days), tz)
        assert self._sliding is not None
        return event_at.astimezone(_UTC) + self._sliding

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        if not ctx.has_history:
            return None
        until = None
        trigger = None
        for end, event_at in self._ends(ctx):
            if at < end and (until is None or end > until):
                until, trigger = end, event_at
        if until is None or trigger is None:
            return None
        return self.reason(f"{self._outcomes} at {_fmt_local(trigger, ctx.primary_zone)} starts a "
                           f"{self._block_text} cool-down", until)


class GapRestriction(CompiledRestriction):
    """A minimum time between outbound attempts on the restriction's channels."""

    __slots__ = ("_gap", "_gap_text")
    reads_history = True

    def __init__(self, spec: M.Restriction) -> None:
        super().__init__(spec)
        assert spec.min_gap is not None
        self._gap = spec.min_gap
        self._gap_text = _duration_text(spec.min_gap)

    def _last(self, ctx: AccountContext) -> ContactEvent | None:
        found = ctx.memo.get(self, _MISSING)
        if found is _MISSING:
            channels = self.spec.channels
            found = None
            if channels is not None and len(channels) == 1:
                (channel,) = channels
                events = ctx.events_on(channel)
            else:
                events = ctx.events
            for event in reversed(events):
                # per person: two accounts of one debtor share the gap
                if event.direction == "outbound" and _key_matches("person", event, ctx) \
                        and (channels is None or event.channel in channels):
                    found = event
                    break
            ctx.memo[self] = found
        return found  # type: ignore[return-value]

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        if not ctx.has_history:
            return None
        last = self._last(ctx)
        if last is None or at >= last.at + self._gap:
            return None
        return self.reason(f"last {last.channel} attempt at {_fmt_local(last.at, ctx.primary_zone)}; "
                           f"the minimum gap is {self._gap_text}", last.at + self._gap)


class HoldRestriction(CompiledRestriction):
    """Holds from the holds file block the channels they cover, except the listed actions."""

    __slots__ = ()
    reads_holds = True

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        if not ctx.holds:
            return None
        spec = self.spec
        for exception in spec.exceptions:
            if exception.channel == action.channel and exception.template in (None, action.template):
                return None
        day = timecalc.local_day(at, ctx.primary_zone)
        blocking = [h for h in ctx.holds if h.type in spec.holds and h.active_on(day) and h.covers(action.channel)]
        if not blocking:
            return None
        if any(h.end is None for h in blocking):
            nxt = None
        else:
            last_end = max(h.end for h in blocking if h.end is not None)
            nxt = timecalc.start_of_local_day(last_end + _dt.timedelta(days=1), ctx.primary_zone)
        hold = blocking[0]
        until = f" until {hold.end.isoformat()}" if hold.end else " with no end date"
        return self.reason(f"{hold.type} hold since {hold.start.isoformat()}{until}", nxt)


class ExpressionRestriction(CompiledRestriction):
    """``block_when``: blocks while a condition on the account holds.

    The condition reads account data as of the decision, so it is evaluated once per account
    (:meth:`outcome`) and every check of every action reuses that result.
    """

    __slots__ = ("evaluator", "_holds")

    def __init__(self, spec: M.Restriction, evaluator: Callable[[AccountContext], Any]) -> None:
        super().__init__(spec)
        assert spec.block_when is not None
        self.evaluator = evaluator
        self._holds = self.reason(f"{spec.block_when.source} is true", None)

    def outcome(self, ctx: AccountContext) -> tuple[Any, ExprRuntimeError | None]:
        """The condition's value for the account, or the error evaluating it raised."""
        found = ctx.memo.get(self)
        if found is None:
            try:
                found = (self.evaluator(ctx), None)
            except ExprRuntimeError as exc:
                found = (None, exc)
            ctx.memo[self] = found
        return found  # type: ignore[no-any-return]

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        assert self.spec.block_when is not None
        value, error = self.outcome(ctx)
        if error is not None:
            # a contact restriction that cannot be evaluated blocks rather than allow what it may forbid; the
            # program reports the failure as an error of the account
            return self.reason(f"{self.spec.block_when.source} could not be evaluated: {error.message}", None)
        if value is True:
            return self._holds
        return None


def _duration_text(value: _dt.timedelta) -> str:
    return M._format_duration(value)


def compile_restriction(spec: M.Restriction, compile_expr: Callable[[M.Expression], Any]) -> CompiledRestriction:
    if spec.kind in ("window", "calendar"):
        return WindowRestriction(spec)
    if spec.kind == "cap":
        return CapRestriction(spec)
    if spec.kind == "cooldown":
        return CooldownRestriction(spec)
    if spec.kind == "gap":
        return GapRestriction(spec)
    if spec.kind == "hold":
        return HoldRestriction(spec)
    if spec.kind == "expression":
        assert spec.block_when is not None
        return ExpressionRestriction(spec, compile_expr(spec.block_when))
    raise AssertionError(f"unknown restriction kind {spec.kind}")


def blocking_reasons(checks: Sequence[Check], ctx: AccountContext, action: ActionRef,
                     at: _dt.datetime) -> list[Reason]:
    reasons = []
    for check in checks:
        reason = check(ctx, action, at)
        if reason is not None:
            reasons.append(reason)
    return reasons


def earliest_allowed(checks: Sequence[Check], ctx: AccountContext, action: ActionRef,
                     start: _dt.datetime, first: list[Reason] | None = None) -> _dt.datetime | None:
    """The earliest instant ≥ ``start`` at which no check blocks ``action``; None when not foreseeable."""
    at = start
    reasons = first if first is not None else blocking_reasons(checks, ctx, action, at)
    for _ in range(MAX_NEXT_ALLOWED_STEPS):
        if not reasons:
            return at
        if any(r.next_allowed is None for r in reasons):
            return None
        candidate = max(r.next_allowed for r in reasons if r.next_allowed is not None)
        if candidate <= at:
            # a restriction that cannot say when it lifts; do not loop forever
            return None
        at = candidate
        reasons = blocking_reasons(checks, ctx, action, at)
    return None
