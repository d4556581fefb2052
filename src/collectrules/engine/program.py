"""A compiled policy: the evaluation core's entry point.

``compile_policy`` compiles every expression of a :class:`~collectrules.policy.model.Policy` once (rows
backend) and every restriction into a check. ``Program.evaluate`` then runs the pipeline for one account, in
the same order always: derive → scores → segment → experiment arms → ladder and stage → actions due →
contact restrictions → decision. An experiment arm may send a segment up another ladder (``experiments:``
in the policy). An expression that fails for an account (division by zero …) becomes an error finding on
that account's decision, located at the expression, and the run goes on.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.rows import ExprRuntimeError, compile_expr
from ..errors import DataError
from ..policy import model as M
from ..registry import Registry
from . import timecalc
from .account import Account, AccountContext, ContactEvent, Hold, Promise
from .decision import ActionRef, BlockedAction, Decision, Finding, Reason, TraceEntry
from .ladder import action_due, decide_stage
from .restrict import (
    Check,
    CompiledRestriction,
    ExpressionRestriction,
    blocking_reasons,
    compile_restriction,
    earliest_allowed,
)

Evaluator = Callable[[AccountContext], Any]


@dataclass(frozen=True)
class _Compiled:
    expr: M.Expression
    run: Evaluator


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
        self._enters = {ladder.id: [compiled(s.enter) for s in ladder.stages] for ladder in policy.escalation.ladders}
        self._restrictions: list[CompiledRestriction] = [compile_restriction(r, compiled) for r in policy.restrictions]
        self._field_names = tuple(policy.fields)
        self._defaults = {name: f.default for name, f in policy.fields.items() if f.default is not None}
        # segment → (experiment, arm id → ladder): the builder allows one experiment per segment
        self._overrides: dict[str, tuple[M.Experiment, dict[str, M.Ladder]]] = {}
        for experiment in policy.experiments:
            for arm in experiment.arms:
                for segment, ladder_id in arm.ladders.items():
                    ladder = policy.escalation.ladder(ladder_id)
                    if ladder is not None:
                        self._overrides.setdefault(segment, (experiment, {}))[1][arm.id] = ladder

    def _param_compiler(self, spec: M.ScoreSpec) -> Callable[..., Evaluator]:
        """Compile a score's param expressions; the policy builder already checked them, so reuse those."""
        by_path = {e.path: e for e in self.policy.expressions}
        base = ("scores", spec.name, "params")

        def compile_param(text: str, rel: tuple[str | int, ...], **_: Any) -> Evaluator:
            expression = by_path[(*base, *rel)]
            return compile_expr(expression.typed, self.registry.functions)

        return compile_param

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
        for account in accounts:
            ctx = AccountContext(account, as_of, history_for(account), holds_for(account), promises_for(account))
            yield self._run(ctx, trace)

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

    def _eval(self, run: Evaluator, expression: M.Expression, ctx: AccountContext, decision: Decision) -> Any:
        try:
            return run(ctx)
        except ExprRuntimeError as exc:
            decision.errors.append(Finding("CR502", f"{exc.message} in '{expression.source}'",
                                           expression.location))
            return None

    def _run(self, ctx: AccountContext, want_trace: bool) -> Decision:
        policy = self.policy
        decision = Decision(ctx.account.account_id, ctx.as_of)
        trace: list[TraceEntry] | None = [] if want_trace else None
        decision.trace = trace

        self._derive_and_score(ctx, decision, trace)
        self._segment(ctx, decision, trace)
        self._assign_arms(ctx, decision, trace)
        ladder = None
        for segment in decision.segments or ((decision.segment,) if decision.segment else ()):
            ladder = self._ladder_for(segment, decision)
            if ladder is not None:
                break
        if decision.errors and decision.segment is None and policy.segments.hit_policy == "unique":
            decision.status = "no_ladder"
            return decision
        if ladder is None:
            decision.status = "no_ladder"
            if trace is not None:
                trace.append(TraceEntry("ladder", "-", "none", None, f"segment {decision.segment!r} has no ladder"))
            return decision
        decision.ladder = ladder.id
        cured = False
        if self._cure is not None and policy.escalation.cure_when is not None:
            cured = self._eval(self._cure, policy.escalation.cure_when, ctx, decision) is True
            if trace is not None:
                trace.append(TraceEntry("cure", "cure_when", str(cured).lower(), policy.escalation.cure_when.location,
                                        policy.escalation.cure_when.source))
        # each condition is evaluated at most once, so the trace below cannot report an error a second time
        enters = [_once(self._guarded(run, stage.enter, decision))
                  for run, stage in zip(self._enters[ladder.id], ladder.stages, strict=True)]
        result = decide_stage(ladder, enters, ctx, cured)
        decision.status = result.status
        if trace is not None:
            # a cured account's stage conditions are never evaluated; the trace must not evaluate them either
            # (an error found only with --trace would make explain disagree with evaluate)
            for stage, run in zip(ladder.stages, enters, strict=True) if not cured else ():
                trace.append(TraceEntry("stage", stage.id, str(run(ctx) is True).lower(), stage.location,
                                        stage.enter.source))
            if result.note:
                trace.append(TraceEntry("ladder", ladder.id, result.status, ladder.location, result.note))
        if result.stage_index is None or result.entered is None:
            return decision
        stage = ladder.stages[result.stage_index]
        decision.stage = stage.id
        decision.stage_location = stage.location
        decision.stage_entered = result.entered
        decision.day_in_stage = (ctx.today - result.entered).days + 1
        self._actions(ctx, decision, stage, result.entered, result.paused_until, result.note, trace)
        return decision

    def _derive_and_score(self, ctx: AccountContext, decision: Decision,
                          trace: list[TraceEntry] | None) -> None:
        for derived, run in self._derive:
            value = self._eval(run, derived.expr, ctx, decision)
            ctx.values[derived.name] = value
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

    def _ladder_for(self, segment: str, decision: Decision) -> M.Ladder | None:
        """The segment's ladder, or the one the account's experiment arm sends the segment up instead."""
        override = self._overrides.get(segment)
        if override is not None:
            experiment, ladders = override
            ladder = ladders.get(decision.experiment_arms[experiment.id])
            if ladder is not None:
                return ladder
        return self.policy.escalation.ladder_for(segment)

    def _guarded(self, run: Evaluator, expression: M.Expression, decision: Decision) -> Evaluator:
        def guarded(ctx: AccountContext) -> Any:
            return self._eval(run, expression, ctx, decision)
        return guarded

    def _segment(self, ctx: AccountContext, decision: Decision, trace: list[TraceEntry] | None) -> None:
        table = self.policy.segments
        matched: list[M.SegmentRule] = []
        for rule, run in self._rules:
            hit = self._eval(run, rule.when, ctx, decision) is True
            if trace is not None:
                trace.append(TraceEntry("segment", rule.id, "match" if hit else "no match", rule.location,
                                        rule.when.source))
            if hit:
                matched.append(rule)
                if table.hit_policy == "first":
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

    def _actions(self, ctx: AccountContext, decision: Decision, stage: M.Stage, entered: _dt.date,
                 paused_until: _dt.date | None, note: str | None, trace: list[TraceEntry] | None) -> None:
        checks: list[Check] = [self._opt_out, self._contact_data]
        if paused_until is not None:
            checks.insert(0, _pause_check(paused_until, note or "promise to pay"))
        for restriction in self._restrictions:
            checks.append(_applying(restriction))
            if isinstance(restriction, ExpressionRestriction) and restriction.spec.block_when is not None:
                # evaluated once here so a failing block_when is reported as an error of this account (CR502)
                self._eval(restriction.evaluator, restriction.spec.block_when, ctx, decision)
        for action in sorted(stage.actions, key=lambda a: a.priority):
            due, why = action_due(action, ctx, entered)
            ref = ActionRef(action.channel, action.template, action.priority, action.subject, stage.id,
                            action.cadence.describe(), action.location)
            if trace is not None:
                trace.append(TraceEntry("cadence", f"{action.channel}" + (f":{action.template}" if action.template
                                                                          else ""),
                                        "due" if due else "not due", action.location, why))
            if not due:
                continue
            reasons = blocking_reasons(checks, ctx, ref, ctx.as_of)
            if trace is not None:
                for restriction in self._restrictions:
                    if restriction.applies(ref):
                        hit = next((r for r in reasons if r.restriction == restriction.id), None)
                        trace.append(TraceEntry("restriction", restriction.id, "blocks" if hit else "allows",
                                                restriction.location, hit.message if hit else ref.channel))
            if not reasons:
                decision.due.append(ref)
                continue
            nxt = earliest_allowed(checks, ctx, ref, ctx.as_of, reasons)
            decision.blocked.append(BlockedAction(ref, tuple(reasons), nxt))

    @staticmethod
    def _opt_out(ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        if action.channel in ctx.account.opt_out_channels:
            return Reason("opt-out", f"the debtor opted out of {action.channel}", None, None)
        return None

    def _contact_data(self, ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        channel = self.registry.channels.get(action.channel)
        if channel is None or channel.needs is None:
            return None
        if ctx.account.contact_point(channel.needs):
            return None
        return Reason("contact-data", f"no {channel.needs} on file for {action.channel}", None, None)


def _once(condition: Evaluator) -> Evaluator:
    """``condition`` evaluated on its first call only; later calls (same account) return that result."""
    results: list[Any] = []

    def cached(ctx: AccountContext) -> Any:
        if not results:
            results.append(condition(ctx))
        return results[0]
    return cached


def _applying(restriction: CompiledRestriction) -> Check:
    def check(ctx: AccountContext, action: ActionRef, at: _dt.datetime) -> Reason | None:
        if not restriction.applies(action):
            return None
        return restriction.check(ctx, action, at)
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

