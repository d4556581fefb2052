"""Escalation: which stage of its ladder an account is in, and which of the stage's actions are due.

Stage rules, in order:

1. **Cure.** When ``escalation.cure_when`` holds, the account leaves its ladder: no stage, nothing due.
2. **Target.** The target stage is the most severe stage whose ``enter`` condition holds.
3. **Promise to pay.** While a promise is active (``pending`` and ``promised_on ≤ today ≤ due``) the ladder
   is paused: the account stays in its current stage (or the target when it has none) and its actions are
   held back with reason ``promise-to-pay`` until the day after the due date.
4. **Broken promise.** From the day after the due date of a broken promise (status ``broken``, or still
   ``pending`` and not paid in full), the account moves one stage further than the stage it was paused in,
   unless the target is more severe. It does not move back below that stage while the broken promise is
   the latest one: only a cure (or a new promise) ends the escalation; a more severe target still wins.
5. **Minimum days.** An account in stage S (from the ``stage``/``stage_entered`` columns) stays in S until
   it has spent ``min_days_in_stage`` days there (the entry day is day 1), whichever way the target moves.
6. **De-escalation.** Otherwise the target wins, in both directions: a payment that lowers the account's
   days past due moves it to the stage its conditions now select.

The day of stage entry is day 1; an account entering a new stage today is on day 1 of it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..lang.ast import CalendarDuration
from ..policy import model as M
from . import timecalc
from .account import AccountContext, ContactEvent, Promise

Condition = Callable[[AccountContext], Any]


@dataclass(frozen=True)
class StageResult:
    stage_index: int | None
    entered: _dt.date | None
    status: str  # active | cured | paused | no_stage
    note: str | None = None
    paused_until: _dt.date | None = None  # last day of the pause (the promise's due date)


def _latest_promise(promises: Sequence[Promise]) -> Promise | None:
    return max(promises, key=lambda p: (p.promised_on, p.due)) if promises else None


def decide_stage(ladder: M.Ladder, enters: Sequence[Condition], ctx: AccountContext,
                 cured: bool) -> StageResult:
    today = ctx.today
    account = ctx.account
    if cured:
        return StageResult(None, None, "cured", "cure condition holds: the ladder is reset")
    target: int | None = None
    for index, condition in enumerate(enters):
        if condition(ctx) is True:
            target = index
    current = ladder.stage_index(account.stage)
    entered = account.stage_entered if current is not None else None

    promise = _latest_promise(ctx.promises)
    if promise is not None and promise.is_active(today):
        stage = current if current is not None else target
        if stage is None:
            return StageResult(None, None, "no_stage", "no stage condition holds")
        # a remembered stage without its entry date is taken as entered today, as outside a pause
        return StageResult(stage, (entered or today) if stage == current else today, "paused",
                           f"promise to pay {promise.amount} due {promise.due.isoformat()}", promise.due)
    if promise is not None and promise.is_broken(today) and today > promise.due:
        not_yet_moved = entered is None or entered <= promise.due
        if not_yet_moved:
            base = current if current is not None else (target if target is not None else -1)
            bumped = min(base + 1, len(ladder.stages) - 1)
            stage = max(bumped, target) if target is not None else bumped
            note = f"promise due {promise.due.isoformat()} was broken: one stage further"
            if stage == current:
                return StageResult(stage, entered, "active", note)
            return StageResult(stage, today, "active", note)
        if current is not None and target is not None and target < current:
            # the escalation a broken promise caused is not undone by the conditions alone: only a cure
            # (or a new promise) ends it, otherwise the account would drop back the day after the move
            return StageResult(current, entered or today, "active",
                               f"promise due {promise.due.isoformat()} was broken: stays in "
                               f"{ladder.stages[current].id!r} until cured")

    if current is not None and entered is not None and target != current:
        days_in = (today - entered).days + 1
        minimum = ladder.stages[current].min_days_in_stage
        if days_in <= minimum:
            return StageResult(current, entered, "active",
                               f"held in {ladder.stages[current].id!r} until it has spent {minimum} days there "
                               f"(day {days_in})")
    if target is None:
        return StageResult(None, None, "no_stage", "no stage condition holds")
    if target == current:
        return StageResult(target, entered or today, "active")
    return StageResult(target, today, "active")


def _attempts_on(events: Sequence[ContactEvent], ctx: AccountContext, action: M.Action) -> list[ContactEvent]:
    return [e for e in events if e.direction == "outbound" and e.account_id == ctx.account.account_id
            and e.channel == action.channel and (action.template is None or e.template in (None, action.template))]


def action_due(action: M.Action, ctx: AccountContext, entered: _dt.date) -> tuple[bool, str]:
    """Whether the action's cadence makes it due now, with the reason in words."""
    zone = ctx.primary_zone
    stage_start = timecalc.start_of_local_day(entered, zone)
    attempts = [e for e in _attempts_on(ctx.events, ctx, action) if e.at >= stage_start]
    cadence = action.cadence
    if cadence.kind == "once":
        if attempts:
            return False, f"already done on {timecalc.local_day(attempts[-1].at, zone).isoformat()}"
        return True, "not yet done in this stage"
    if cadence.kind == "every":
        assert cadence.every is not None
        if not attempts:
            return True, "not yet done in this stage"
        last = attempts[-1].at
        seconds = int(cadence.every.total_seconds())
        # the unit decides, not the length: `every: 1d` counts calendar days, `every: 24h` is sliding
        if isinstance(cadence.every, CalendarDuration):
            due_day = timecalc.local_day(last, zone) + _dt.timedelta(days=seconds // 86400)
            if ctx.today >= due_day:
                return True, f"last done {timecalc.local_day(last, zone).isoformat()}, due every {seconds // 86400}d"
            return False, f"next due {due_day.isoformat()}"
        if ctx.as_of >= last + cadence.every:
            return True, f"last done at {last.isoformat()}"
        return False, f"next due at {(last + cadence.every).isoformat()}"
    # on_days: due on a listed day, and stays due until done or until the next listed day
    day_in_stage = (ctx.today - entered).days + 1
    reached = [d for d in cadence.days if d <= day_in_stage]
    if not reached:
        return False, f"first due on day {cadence.days[0]} of the stage (today is day {day_in_stage})"
    latest = reached[-1]
    latest_start = timecalc.start_of_local_day(entered + _dt.timedelta(days=latest - 1), zone)
    if any(e.at >= latest_start for e in attempts):
        return False, f"done for day {latest}"
    return True, f"due on day {latest} of the stage (today is day {day_in_stage})"
