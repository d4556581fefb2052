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

:class:`CompiledLadder` and :class:`CompiledAction` hold what never changes between accounts (the stage of
each id, the actions of each stage in priority order with their cadence spelled out), so deciding for an
account looks nothing up by name and sorts nothing.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import NamedTuple

from ..lang.ast import CalendarDuration
from ..policy import model as M
from . import timecalc
from .account import AccountContext, Promise, local_midnight
from .decision import ActionRef


class StageResult(NamedTuple):
    stage_index: int | None
    entered: _dt.date | None
    status: str  # active | cured | paused | no_stage
    note: str | None = None
    paused_until: _dt.date | None = None  # last day of the pause (the promise's due date)


class CompiledAction:
    """One action of a stage with its cadence spelled out, and the reference every decision reports."""

    __slots__ = ("action", "ref", "channel", "template", "kind", "every", "every_days", "days", "label",
                 "attempts_key")

    def __init__(self, action: M.Action, stage: M.Stage) -> None:
        cadence = action.cadence
        self.action = action
        self.ref = ActionRef(action.channel, action.template, action.priority, action.subject, stage.id,
                             cadence.describe(), action.location)
        self.channel = action.channel
        self.template = action.template
        self.kind = cadence.kind
        self.every = cadence.every
        # the unit decides, not the length: `every: 1d` counts calendar days, `every: 24h` is sliding
        self.every_days: int | None = None
        if cadence.every is not None and isinstance(cadence.every, CalendarDuration):
            self.every_days = int(cadence.every.total_seconds()) // 86400
        self.days = cadence.days
        self.label = action.channel + (f":{action.template}" if action.template else "")
        # actions on the same channel and template count the same attempts
        self.attempts_key = ("attempts", action.channel, action.template)


class CompiledLadder:
    """A ladder's stages by index and id, with each stage's actions in the order decisions list them."""

    __slots__ = ("ladder", "id", "index_of", "last", "min_days", "actions")

    def __init__(self, ladder: M.Ladder) -> None:
        self.ladder = ladder
        self.id = ladder.id
        self.index_of: dict[str, int] = {}
        for index, stage in enumerate(ladder.stages):
            self.index_of.setdefault(stage.id, index)
        self.last = len(ladder.stages) - 1
        self.min_days = tuple(stage.min_days_in_stage for stage in ladder.stages)
        # due actions are listed by priority, then in the order of the stage (a stable sort)
        self.actions = tuple(tuple(CompiledAction(a, stage) for a in sorted(stage.actions, key=_priority))
                             for stage in ladder.stages)


def _priority(action: M.Action) -> int:
    return action.priority


def _latest_promise(promises: Sequence[Promise]) -> Promise | None:
    return max(promises, key=lambda p: (p.promised_on, p.due)) if promises else None


def decide_stage(ladder: CompiledLadder, target: int | None, ctx: AccountContext, cured: bool) -> StageResult:
    """The account's stage, given ``target``: the index of the most severe stage whose ``enter`` holds."""
    if cured:
        return StageResult(None, None, "cured", "cure condition holds: the ladder is reset")
    today = ctx.today
    account = ctx.account
    current = ladder.index_of.get(account.stage) if account.stage is not None else None
    entered = account.stage_entered if current is not None else None

    promise = _latest_promise(ctx.promises) if ctx.promises else None
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
            bumped = min(base + 1, ladder.last)
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
                               f"{ladder.ladder.stages[current].id!r} until cured")

    if current is not None and entered is not None and target != current:
        days_in = (today - entered).days + 1
        minimum = ladder.min_days[current]
        if days_in <= minimum:
            held = f"held in {ladder.ladder.stages[current].id!r} until it has spent {minimum} days there"
            return StageResult(current, entered, "active", f"{held} (day {days_in})")
    if target is None:
        return StageResult(None, None, "no_stage", "no stage condition holds")
    if target == current:
        return StageResult(target, entered or today, "active")
    return StageResult(target, today, "active")


def _attempts(action: CompiledAction, ctx: AccountContext) -> list[_dt.datetime]:
    """Times of the account's own outbound contacts on the action's channel (and template), in order."""
    found: list[_dt.datetime] | None = ctx.memo.get(action.attempts_key)
    if found is None:
        own = ctx.account.account_id
        template = action.template
        found = ctx.memo[action.attempts_key] = [
            e.at for e in ctx.events_on(action.channel) if e.direction == "outbound" and e.account_id == own
            and (template is None or e.template in (None, template))]
    return found


def action_due(action: CompiledAction, ctx: AccountContext, entered: _dt.date,
               explain: bool = True) -> tuple[bool, str | None]:
    """Whether the action's cadence makes it due now, with the reason in words (only when ``explain``)."""
    zone = ctx.primary_zone
    attempts: Sequence[_dt.datetime] = ()
    if ctx.has_history:
        every_attempt = _attempts(action, ctx)
        if every_attempt:
            stage_start = local_midnight(entered, zone)
            attempts = [at for at in every_attempt if at >= stage_start]
    kind = action.kind
    if kind == "once":
        if attempts:
            return False, (f"already done on {timecalc.local_day(attempts[-1], zone).isoformat()}"
                           if explain else None)
        return True, "not yet done in this stage" if explain else None
    if kind == "every":
        if not attempts:
            return True, "not yet done in this stage" if explain else None
        last = attempts[-1]
        if action.every_days is not None:
            due_day = timecalc.local_day(last, zone) + _dt.timedelta(days=action.every_days)
            if ctx.today >= due_day:
                return True, (f"last done {timecalc.local_day(last, zone).isoformat()}, due every "
                              f"{action.every_days}d" if explain else None)
            return False, f"next due {due_day.isoformat()}" if explain else None
        assert action.every is not None
        if ctx.as_of >= last + action.every:
            return True, f"last done at {last.isoformat()}" if explain else None
        return False, f"next due at {(last + action.every).isoformat()}" if explain else None
    # on_days: due on a listed day, and stays due until done or until the next listed day
    day_in_stage = (ctx.today - entered).days + 1
    latest = None
    for day in action.days:
        if day <= day_in_stage:
            latest = day
    if latest is None:
        return False, (f"first due on day {action.days[0]} of the stage (today is day {day_in_stage})"
                       if explain else None)
    if attempts:
        latest_start = local_midnight(entered + _dt.timedelta(days=latest - 1), zone)
        if any(at >= latest_start for at in attempts):
            return False, f"done for day {latest}" if explain else None
    return True, f"due on day {latest} of the stage (today is day {day_in_stage})" if explain else None
