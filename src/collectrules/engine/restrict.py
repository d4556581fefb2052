"""Contact restrictions, compiled: does a restriction allow this action at this instant, and if not, why
and from when?

Each restriction kind is a small class with one method, ``check(ctx, action, at)``, that returns ``None``
when the action is allowed at ``at`` and otherwise a :class:`Reason` carrying the earliest instant at which
that restriction alone allows it (``None`` when that is not foreseeable: an open-ended hold, a condition on
account data). :func:`earliest_allowed` combines all of them by iterating to a fixed point: the candidate
instant moves to the latest of the blockers' next-allowed instants until every restriction allows it.

History is counted as it stands at the as-of instant: the next-allowed time assumes no new contact.
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
from .account import AccountContext, ContactEvent, zone
from .decision import ActionRef, Reason

#: fixed-point iterations before giving up on a next-allowed time (each step moves strictly forward)
MAX_NEXT_ALLOWED_STEPS = 64

Check = Callable[[AccountContext, ActionRef, _dt.datetime], Reason | None]


def _fmt_local(at: _dt.datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"


def _window_next(window: M.Window, zone_: ZoneInfo) -> dict[str, Any]:
    if window.calendar_days is not None:
        return {"calendar_days": window.calendar_days, "zone": zone_}
    return {"sliding": window.sliding}


class CompiledRestriction:
    """Base: identity and the reason factory shared by every kind."""

    def __init__(self, spec: M.Restriction) -> None:
        self.spec = spec
        self.id = spec.id
        self.location: Location = spec.location

    def applies(self, action: ActionRef) -> bool:
        return self.spec.applies_to(action.channel, action.subject)

    def reason(self, detail: str, next_allowed: _dt.datetime | None) -> Reason:
        message = f"{self.spec.explain} ({detail})" if self.spec.explain else detail
        return Reason(self.id, message, self.location, next_allowed, self.spec.source)

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
    channels = spec.channels if spec.channels is not None else default_channels
    out = []
    for event in ctx.events:
        if spec.direction != "any" and event.direction != spec.direction:
            continue
        if channels is not None and event.channel not in channels:
            continue
        if spec.outcomes is not None and event.outcome not in spec.outcomes:
            continue
        if event.outcome in spec.exclude_outcomes:
            continue
        if spec.exclude_consented and event.consent:
            continue
        if not _key_matches(key, event, ctx):
            continue
        out.append(event.at)
    return out


class WindowRestriction(CompiledRestriction):
    """Allowed hours in the debtor's local time (every known zone must allow), and holidays."""

    def __init__(self, spec: M.Restriction) -> None:
        super().__init__(spec)
        self.schedule = spec.schedule
        self.calendar = timecalc.HolidayCalendar(spec.calendar) if spec.calendar else None
        self.fixed_zone = None if spec.timezone == "debtor" else zone(spec.timezone)

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        zones = (self.fixed_zone,) if self.fixed_zone else ctx.zones
        if not zones:
            if self.schedule is None:
                # a holiday calendar without hours needs only a local date: without a zone it is taken in UTC
                zones = (ctx.primary_zone,)
            else:
                return self.reason("the debtor's time zone is unknown, so local hours cannot be respected",
                                   None)
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

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        spec = self.spec
        assert spec.per is not None and spec.count is not None and spec.max_attempts is not None
        times = _filter_events(ctx, spec.key, spec.count, spec.channels)
        window = _window_next(spec.per, ctx.primary_zone)
        count = timecalc.count_in_window(times, at, **window)
        if count < spec.max_attempts:
            return None
        nxt = timecalc.cap_next_allowed(times, at, spec.max_attempts, **window)
        what = "/".join(sorted(spec.count.channels or spec.channels or ())) or "contact"
        return self.reason(f"{count} counted {what} attempts per {spec.key} in {spec.per.text}; "
                           f"the limit is {spec.max_attempts}", nxt)


class CooldownRestriction(CompiledRestriction):
    """No contact for a period after a qualifying event (for d/w: the event's day is day 1)."""

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        spec = self.spec
        assert spec.after is not None and spec.block_for is not None
        # without its own channels, a cool-down reacts to contacts on the channels it restricts
        times = _filter_events(ctx, spec.key, spec.after, spec.channels)
        window = _window_next(spec.block_for, ctx.primary_zone)
        until = None
        trigger = None
        for event_at in times:
            end = timecalc.cooldown_until(event_at, **window)
            if at < end and (until is None or end > until):
                until, trigger = end, event_at
        if until is None or trigger is None:
            return None
        outcomes = "/".join(sorted(spec.after.outcomes)) if spec.after.outcomes else "contact"
        return self.reason(f"{outcomes} at {_fmt_local(trigger, ctx.primary_zone)} starts a {spec.block_for.text} "
                           f"cool-down", until)


class GapRestriction(CompiledRestriction):
    """A minimum time between outbound attempts on the restriction's channels."""

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        spec = self.spec
        assert spec.min_gap is not None
        channels = spec.channels
        last = None
        for event in reversed(ctx.events):
            # per person: two accounts of one debtor share the gap
            if event.direction == "outbound" and _key_matches("person", event, ctx) \
                    and (channels is None or event.channel in channels):
                last = event
                break
        if last is None or at >= last.at + spec.min_gap:
            return None
        return self.reason(f"last {last.channel} attempt at {_fmt_local(last.at, ctx.primary_zone)}; "
                           f"the minimum gap is {_duration_text(spec.min_gap)}", last.at + spec.min_gap)


class HoldRestriction(CompiledRestriction):
    """Holds from the holds file block the channels they cover, except the listed actions."""

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
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
    """``block_when``: blocks while a condition on the account holds."""

    def __init__(self, spec: M.Restriction, evaluator: Callable[[AccountContext], Any]) -> None:
        super().__init__(spec)
        self.evaluator = evaluator

    def check(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        assert self.spec.block_when is not None
        # the condition reads account data as of the decision; it cannot be projected forward
        try:
            value = self.evaluator(ctx)
        except ExprRuntimeError as exc:
            # a contact restriction that cannot be evaluated blocks rather than allow what it may forbid; the
            # program reports the failure as an error of the account
            return self.reason(f"{self.spec.block_when.source} could not be evaluated: {exc.message}", None)
        if value is True:
            return self.reason(f"{self.spec.block_when.source} is true", None)
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
