"""A compiled policy: the evaluation core's entry point.

``compile_policy`` compiles every expression of a :class:`~collectrules.policy.model.Policy` once (rows
backend), every restriction into a check, and every action into a plan: its reference, its cadence and the
checks that apply to its channel and subject, in the order a blocked action lists its reasons.
``Program.evaluate`` then runs the pipeline for one account, in the same order always: derive → scores →
segment → experiment arms → ladder and stage → actions due → contact restrictions → decision. An
experiment arm may send a segment up another ladder (``experiments:`` in the policy). An expression that
fails for an account (division by zero …) becomes an error finding on that account's decision, located at
the expression, and the run goes on.

Only the actions that are due meet the restrictions, and the account's history is put in order and
filtered for a restriction only when a due action asks that restriction. A trace is built only on request.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..backends.rows import ExprRuntimeError, compile_expr
from ..errors import DataError
from ..policy import model as M
from ..registry import Registry
from . import timecalc
from .account import Account, AccountContext, ContactEvent, Hold, Promise
from .decision import ActionRef, BlockedAction, Decision, Finding, Reason, TraceEntry
from .ladder import CompiledAction, CompiledLadder, action_due, decide_stage
from .restrict import (
    Check,
    CompiledRestriction,
    ExpressionRestriction,
    compile_restriction,
    earliest_allowed,
)

Evaluator = Callable[[AccountContext], Any]


class _ActionPlan:
    """An action of a stage with the checks that judge it, in the order a blocked action lists its reasons:
    the debtor's opt-out, the contact data its channel needs, then the restrictions that apply to it.

    A check that cannot block a given account (an opt-out check when the debtor opted out of nothing, a cap
    when the account has no history, a hold restriction when it has no holds) is left out of the checks the
    account is judged by: the reasons, and so the decision, are the same, with fewer calls.
    """

    __slots__ = ("compiled", "ref", "restrictions", "_opt_out", "_contact", "_variants")

    def __init__(self, compiled: CompiledAction, opt_out: Check, contact: Check | None,
                 restrictions: tuple[CompiledRestriction, ...]) -> None:
        self.compiled = compiled
        self.ref = compiled.ref
        self.restrictions = restrictions
        self._opt_out = opt_out
        self._contact = contact
        # by variant (see variant_of)
        self._variants: list[tuple[Check, ...] | None] = [None] * 8

    @staticmethod
    def variant_of(ctx: AccountContext) -> int:
        """Which checks can block for the account: 4 when the debtor opted out of something, + 2 when it has
        history, + 1 when it has holds."""
        return (4 if ctx.account.opt_out_channels else 0) + (2 if ctx.has_history else 0) + \
            (1 if ctx.holds else 0)

    def checks(self, variant: int) -> tuple[Check, ...]:
        """The checks that may block this action for an account of ``variant`` (:meth:`variant_of`)."""
        checks = self._variants[variant]
        if checks is None:
            checks = self._select(bool(variant & 4), bool(variant & 2), bool(variant & 1))
            self._variants[variant] = checks
        return checks

    def _select(self, opted_out: bool, history: bool, holds: bool) -> tuple[Check, ...]:
        checks: list[Check] = [self._opt_out] if opted_out else []
        if self._contact is not None:
            checks.append(self._contact)
        checks.extend(r.check for r in self.restrictions
                      if (history or not r.reads_history) and (holds or not r.reads_holds))
        return tuple(checks)


class _LadderPlan:
    """A compiled ladder with its stages' enter conditions and action plans."""

    __slots__ = ("compiled", "ladder", "id", "stages", "enters", "plans")

    def __init__(self, compiled: CompiledLadder, enters: tuple[Evaluator, ...],
                 plans: tuple[tuple[_ActionPlan, ...], ...]) -> None:
        self.compiled = compiled
        self.ladder = compiled.ladder
        self.id = compiled.id
        self.stages = compiled.ladder.stages
        self.enters = enters
        self.plans = plans


class Program:
    """A policy compiled for evaluation. Create it with :func:`compile_policy`."""

    def __init__(self, policy: M.Policy, registry: Registry) -> None:
        self.policy = policy
        self.registry = registry
        functions = registry.functions

        def compiled(expression: M.Expression) -> Evaluator:
            return compile_expr(expression.typed, functions)

        self._derive = [(d, compiled(d.expr)) for d in policy.derive]
        self._scores: list[tuple[M.ScoreSpec, Evaluator]] = []
        for spec in policy.scores:
            scorer = registry.scorers[spec.plugin]
            self._scores.append((spec, scorer.prepare(spec.params, self._param_compiler(spec))))
        self._rules = [(r, compiled(r.when)) for r in policy.segments.rules]
        self._cure = compiled(policy.escalation.cure_when) if policy.escalation.cure_when else None
        self._restrictions: list[CompiledRestriction] = [compile_restriction(r, compiled) for r in policy.restrictions]
        # evaluated once per account that reaches a stage, so a failing block_when is reported (CR502)
        self._conditions = [r for r in self._restrictions
                            if isinstance(r, ExpressionRestriction) and r.spec.block_when is not None]
        self._field_names = tuple(policy.fields)
        self._defaults = {name: f.default for name, f in policy.fields.items() if f.default is not None}
        self._ladders = {ladder.id: self._plan_ladder(ladder, compiled)
                         for ladder in policy.escalation.ladders}
        # segment → its ladder: the first ladder that lists it, as Escalation.ladder_for finds it
        self._ladder_of_segment: dict[str, _LadderPlan] = {}
        for ladder in policy.escalation.ladders:
            for segment in ladder.segments:
                self._ladder_of_segment.setdefault(segment, self._ladders[ladder.id])
        # segment → (experiment, arm id → ladder): the builder allows one experiment per segment
        self._overrides: dict[str, tuple[M.Experiment, dict[str, _LadderPlan]]] = {}
        for experiment in policy.experiments:
            for arm in experiment.arms:
                for segment, ladder_id in arm.ladders.items():
                    ladder = policy.escalation.ladder(ladder_id)
                    if ladder is not None:
                        arms = self._overrides.setdefault(segment, (experiment, {}))[1]
                        arms[arm.id] = self._ladders[ladder.id]

    def _param_compiler(self, spec: M.ScoreSpec) -> Callable[..., Evaluator]:
        """Compile a score's param expressions; the policy builder already checked them, so reuse those."""
        by_path = {e.path: e for e in self.policy.expressions}
        base = ("scores", spec.name, "params")

        def compile_param(text: str, rel: tuple[str | int, ...], **_: Any) -> Evaluator:
            expression = by_path[(*base, *rel)]
            return compile_expr(expression.typed, self.registry.functions)

        return compile_param

    def _plan_ladder(self, ladder: M.Ladder, compiled: Callable[[M.Expression], Evaluator]) -> _LadderPlan:
        compiled_ladder = CompiledLadder(ladder)
        plans = tuple(tuple(self._plan_action(action) for action in actions)
                      for actions in compiled_ladder.actions)
        return _LadderPlan(compiled_ladder, tuple(compiled(s.enter) for s in ladder.stages), plans)

    def _plan_action(self, action: CompiledAction) -> _ActionPlan:
        ref = action.ref
        channel = self.registry.channels.get(ref.channel)
        contact = None
        if channel is not None and channel.needs is not None:
            contact = _contact_data_check(ref.channel, channel.needs)
        restrictions = tuple(r for r in self._restrictions if r.applies(ref))
        return _ActionPlan(action, _opt_out_check(ref.channel), contact, restrictions)

    # ---- public API ----------------------------------------------------------------------------------

    def account(self, row: Mapping[str, Any], row_number: int | None = None, *, typed: bool = False) -> Account:
        """Build an :class:`Account` from a mapping of standard columns and field values.

        Values are converted to their fields' types (``"1250.00"`` → ``Decimal``) unless ``typed`` says the
        caller already did (the portfolio reader does); a value that does not fit raises :class:`DataError`.
        """
        from ..io.tables import ACCOUNT_STANDARD_COLUMNS
        from ..io.values import ValueKind, parse_value
        from .account import account_from_row

        if "account_id" not in row or row["account_id"] in (None, ""):
            raise DataError("an account needs an 'account_id'", code="CR601")
        if not typed:
            converted = dict(row)
            # standard columns too: a text stage_entered or "sms;email" opt-outs must not reach the engine
            for column in ACCOUNT_STANDARD_COLUMNS:
                value = row.get(column.name)
                if value is None or column.name in self.policy.fields:
                    continue
                try:
                    converted[column.name] = parse_value(value, column.kind, enum_values=column.enum_values,
                                                         item_kind=column.item_kind)
                except ValueError as exc:
                    raise DataError(f"account {row['account_id']!r}: column {column.name!r}: {exc}",
                                    code="CR608") from None
            for name, spec in self.policy.fields.items():
                value = row.get(name)
                if value is None:
                    continue
                item = ValueKind(spec.type.item.kind) if spec.type.item is not None else None
                try:
                    converted[name] = parse_value(value, ValueKind(spec.type.kind),
                                                  enum_values=spec.type.enum_values, item_kind=item)
                except ValueError as exc:
                    raise DataError(f"account {row['account_id']!r}: field {name!r}: {exc}", code="CR608") from None
            row = converted
        return account_from_row(row, self._field_names, self._defaults, row_number)

    def evaluate(self, account: Account | Mapping[str, Any], history: Sequence[ContactEvent] = (),
                 as_of: _dt.datetime | None = None, *, holds: Sequence[Hold] = (),
                 promises: Sequence[Promise] = (), trace: bool = False) -> Decision:
        """Decide for one account at ``as_of`` (timezone-aware; default now)."""
        if not isinstance(account, Account):
            account = self.account(account)
        if as_of is None:
            as_of = _dt.datetime.now(_dt.UTC)
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise DataError("the as-of time must carry a time zone (e.g. 2026-11-23T15:00:00Z)", code="CR607")
        as_of = as_of.astimezone(_dt.UTC)
        ctx = AccountContext(account, as_of, history, [h for h in holds if h.account_id == account.account_id],
                             [p for p in promises if p.account_id == account.account_id])
        return self._run(ctx, trace)

    def evaluate_many(self, accounts: Iterable[Account], history_for: Callable[[Account], Sequence[ContactEvent]],
                      as_of: _dt.datetime, *, holds_for: Callable[[Account], Sequence[Hold]] = lambda a: (),
                      promises_for: Callable[[Account], Sequence[Promise]] = lambda a: (),
                      trace: bool = False) -> Iterator[Decision]:
        """Decide for many accounts, lazily, in input order."""
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            # a naive time would silently be read in the machine's local zone
            raise DataError("the as-of time must carry a time zone (e.g. 2026-11-23T15:00:00Z)", code="CR607")
        as_of = as_of.astimezone(_dt.UTC)
        local_dates: dict[Any, _dt.date] = {}
        run = self._run
        for account in accounts:
            ctx = AccountContext(account, as_of, history_for(account), holds_for(account),
                                 promises_for(account), local_dates=local_dates)
            yield run(ctx, trace)

    def classify(self, account: Account, as_of: _dt.datetime) -> tuple[AccountContext, Decision]:
        """Derived values, scores, segment and experiment arms of one account, without ladder or actions.

        Used to measure KPIs by the segment the policy gives an account on a balance snapshot; returns the
        evaluation context (``values`` holds the fields and derived values) and the partial decision.
        """
        as_of = as_of.astimezone(_dt.UTC)
        ctx = AccountContext(account, as_of, (), (), ())
        decision = Decision(account.account_id, as_of)
        self._derive_and_score(ctx, decision, None)
        self._segment(ctx, decision, None)
        self._assign_arms(ctx, decision, None)
        return ctx, decision

    # ---- the pipeline --------------------------------------------------------------------------------

    def _run(self, ctx: AccountContext, want_trace: bool) -> Decision:
        decision = Decision(ctx.account.account_id, ctx.as_of)
        trace: list[TraceEntry] | None = [] if want_trace else None
        decision.trace = trace

        self._derive_and_score(ctx, decision, trace)
        self._segment(ctx, decision, trace)
        if self._overrides or self.policy.experiments:
            self._assign_arms(ctx, decision, trace)
        plan = None
        for segment in decision.segments or ((decision.segment,) if decision.segment else ()):
            plan = self._ladder_for(segment, decision)
            if plan is not None:
                break
        if decision.errors and decision.segment is None and self.policy.segments.hit_policy == "unique":
            decision.status = "no_ladder"
            return decision
        if plan is None:
            decision.status = "no_ladder"
            if trace is not None:
                trace.append(TraceEntry("ladder", "-", "none", None, f"segment {decision.segment!r} has no ladder"))
            return decision
        decision.ladder = plan.id
        cured = False
        cure = self._cure
        if cure is not None:
            cure_when = self.policy.escalation.cure_when
            assert cure_when is not None
            try:
                cured = cure(ctx) is True
            except ExprRuntimeError as exc:
                decision.errors.append(Finding("CR502", f"{exc.message} in '{cure_when.source}'",
                                               cure_when.location))
            if trace is not None:
                trace.append(TraceEntry("cure", "cure_when", str(cured).lower(), cure_when.location,
                                        cure_when.source))
        stages = plan.stages
        target = None
        entered_values: list[Any] = []
        if not cured:
            # every stage's condition, mildest first, each once: the most severe one that holds is the target
            for index, run in enumerate(plan.enters):
                try:
                    value = run(ctx)
                except ExprRuntimeError as exc:
                    enter = stages[index].enter
                    decision.errors.append(Finding("CR502", f"{exc.message} in '{enter.source}'",
                                                   enter.location))
                    value = None
                if value is True:
                    target = index
                if trace is not None:
                    entered_values.append(value)
        result = decide_stage(plan.compiled, target, ctx, cured)
        decision.status = result.status
        if trace is not None:
            # a cured account's stage conditions are never evaluated, so the trace shows none
            for stage, value in zip(stages, entered_values, strict=False):
                trace.append(TraceEntry("stage", stage.id, str(value is True).lower(), stage.location,
                                        stage.enter.source))
            if result.note:
                trace.append(TraceEntry("ladder", plan.id, result.status, plan.ladder.location, result.note))
        index = result.stage_index
        entered = result.entered
        if index is None or entered is None:
            return decision
        stage = stages[index]
        decision.stage = stage.id
        decision.stage_location = stage.location
        decision.stage_entered = entered
        decision.day_in_stage = (ctx.today - entered).days + 1
        self._actions(ctx, decision, plan.plans[index], entered, result.paused_until, result.note, trace)
        return decision

    def _derive_and_score(self, ctx: AccountContext, decision: Decision,
                          trace: list[TraceEntry] | None) -> None:
        values = ctx.values
        for derived, run in self._derive:
            try:
                value = run(ctx)
            except ExprRuntimeError as exc:
                decision.errors.append(Finding("CR502", f"{exc.message} in '{derived.expr.source}'",
                                               derived.expr.location))
                value = None
            values[derived.name] = value
            if trace is not None:
                trace.append(TraceEntry("derive", derived.name, _show(value), derived.location,
                                        derived.expr.source))
        for spec, score in self._scores:
            try:
                value = score(ctx)
            except ExprRuntimeError as exc:
                decision.errors.append(Finding("CR502", f"score {spec.name!r}: {exc.message}", spec.location))
                value = None
            ctx.scores[spec.name] = value
            decision.scores[spec.name] = value
            if trace is not None:
                trace.append(TraceEntry("score", spec.name, _show(value), spec.location, spec.plugin))

    def _assign_arms(self, ctx: AccountContext, decision: Decision, trace: list[TraceEntry] | None) -> None:
        """Record the account's arm of every experiment (assigned by hash, whatever its segment)."""
        account_id = ctx.account.account_id
        for experiment in self.policy.experiments:
            arm = experiment.arm_for(account_id)
            decision.experiment_arms[experiment.id] = arm.id
            if trace is not None:
                bucket = experiment.bucket(experiment.id, account_id)
                trace.append(TraceEntry("experiment", experiment.id, arm.id, arm.location,
                                        f"hash bucket {bucket} of 10000"))

    def _ladder_for(self, segment: str, decision: Decision) -> _LadderPlan | None:
        """The segment's ladder, or the one the account's experiment arm sends the segment up instead."""
        if self._overrides:
            override = self._overrides.get(segment)
            if override is not None:
                experiment, ladders = override
                ladder = ladders.get(decision.experiment_arms[experiment.id])
                if ladder is not None:
                    return ladder
        return self._ladder_of_segment.get(segment)

    def _segment(self, ctx: AccountContext, decision: Decision, trace: list[TraceEntry] | None) -> None:
        table = self.policy.segments
        first_only = table.hit_policy == "first"
        matched: list[M.SegmentRule] = []
        for rule, run in self._rules:
            try:
                hit = run(ctx) is True
            except ExprRuntimeError as exc:
                decision.errors.append(Finding("CR502", f"{exc.message} in '{rule.when.source}'",
                                               rule.when.location))
                hit = False
            if trace is not None:
                trace.append(TraceEntry("segment", rule.id, "match" if hit else "no match", rule.location,
                                        rule.when.source))
            if hit:
                matched.append(rule)
                if first_only:
                    break
        if table.hit_policy == "unique" and len(matched) > 1:
            first, second = matched[0], matched[1]
            decision.errors.append(Finding(
                "CR501", f"segment rules {first.id!r} (line {first.location.line}) and {second.id!r} "
                         f"(line {second.location.line}) both match, but the hit policy is 'unique'",
                second.location))
            return
        if matched:
            decision.segment = matched[0].id
            decision.segment_rule = matched[0].id
            decision.segment_location = matched[0].location
            if table.hit_policy == "collect":
                decision.segments = tuple(r.id for r in matched)
        elif table.default is not None:
            decision.segment = table.default
            decision.segment_location = table.location
            if trace is not None:
                trace.append(TraceEntry("segment", table.default, "default", table.location))

    def _actions(self, ctx: AccountContext, decision: Decision, plans: tuple[_ActionPlan, ...],
                 entered: _dt.date, paused_until: _dt.date | None, note: str | None,
                 trace: list[TraceEntry] | None) -> None:
        for restriction in self._conditions:
            _, error = restriction.outcome(ctx)
            if error is not None:
                block_when = restriction.spec.block_when
                assert block_when is not None
                decision.errors.append(Finding("CR502", f"{error.message} in '{block_when.source}'",
                                               block_when.location))
        pause = _pause_check(paused_until, note or "promise to pay") if paused_until is not None else None
        explain = trace is not None
        as_of = ctx.as_of
        variant = -1
        for plan in plans:
            compiled = plan.compiled
            due, why = action_due(compiled, ctx, entered, explain)
            if trace is not None:
                trace.append(TraceEntry("cadence", compiled.label, "due" if due else "not due",
                                        compiled.action.location, why))
            if not due:
                continue
            ref = plan.ref
            if variant < 0:
                variant = plan.variant_of(ctx)
            checks = plan.checks(variant)
            if pause is not None:
                checks = (pause, *checks)
            reasons: list[Reason] = []
            for check in checks:
                reason = check(ctx, ref, as_of)
                if reason is not None:
                    reasons.append(reason)
            if trace is not None:
                for restriction in plan.restrictions:
                    hit = next((r for r in reasons if r.restriction == restriction.id), None)
                    trace.append(TraceEntry("restriction", restriction.id, "blocks" if hit else "allows",
                                            restriction.location, hit.message if hit else ref.channel))
            if not reasons:
                decision.due.append(ref)
                continue
            nxt = earliest_allowed(checks, ctx, ref, as_of, reasons)
            decision.blocked.append(BlockedAction(ref, tuple(reasons), nxt))


def _opt_out_check(channel: str) -> Check:
    reason = Reason("opt-out", f"the debtor opted out of {channel}", None, None)

    def check(ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        return reason if channel in ctx.account.opt_out_channels else None
    return check


def _contact_data_check(channel: str, needs: str) -> Check:
    reason = Reason("contact-data", f"no {needs} on file for {channel}", None, None)
    if needs not in ("phone", "email", "address"):
        # a kind of contact data accounts do not carry is never on file
        return lambda ctx, action, at: reason

    def check(ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        return None if getattr(ctx.account, needs) else reason
    return check


def _pause_check(until: _dt.date, note: str) -> Check:
    def check(ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        resume = timecalc.start_of_local_day(until + _dt.timedelta(days=1), ctx.primary_zone)
        if at >= resume:
            return None
        return Reason("promise-to-pay", f"ladder paused: {note}", None, resume)
    return check


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def compile_policy(policy: M.Policy, registry: Registry | None = None) -> Program:
    """Compile a loaded policy for evaluation (with the built-in plugins unless a registry is given)."""
    return Program(policy, registry or Registry.builtin_only())
