"""Dispatch: send the actions that decisions found due, through each channel's transport, into the ledger.

For every due action (blocked actions are never dispatched) an :class:`Attempt` is built: its template is
rendered for the account, its transport is the one the policy's ``channels:`` section gives its channel
(an action on a channel without one is counted as *no transport* and skipped), and its idempotency key
names the policy, account, channel, template, stage and the debtor's local date.

A **dry run** (``send=False``, the default of the command line) renders everything and reports what would
be sent, reading the ledger to tell what was already sent, and writes nothing. A **sending run** follows a
protocol that never sends a message twice:

1. the attempt is written as ``planned`` in its own transaction;
2. the transport sends it;
3. the result is written (``sent`` or ``failed``) in a second transaction.

An attempt found ``sent`` is skipped. One found ``planned`` was left by a run that stopped between 1 and 3
(or whose transport raised, so the outcome is unknown): it is reported *in doubt* and skipped, unless
``retry_in_doubt`` is set. One found ``failed`` was certainly not delivered and is sent again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .engine import timecalc
from .engine.account import UTC_ZONE, Account, ContactEvent, Hold, Promise, zone
from .engine.decision import ActionRef, Decision
from .errors import CollectRulesError
from .ledger import Ledger, idempotency_key
from .registry import DeliveryResult, Registry
from .templates import RenderedMessage, TemplateRenderer

if TYPE_CHECKING:
    from .engine.program import Program

#: every status an attempt can end a dispatch with, in the order reports show them
STATUSES: tuple[str, ...] = ("would_send", "sent", "failed", "skipped_sent", "in_doubt", "no_transport",
                             "render_error")
STATUS_LABELS: dict[str, str] = {
    "would_send": "would send", "sent": "sent", "failed": "failed", "skipped_sent": "already sent",
    "in_doubt": "in doubt", "no_transport": "no transport", "render_error": "render errors",
}
#: statuses that need someone's attention; a run with any of them is not clean
PROBLEM_STATUSES = frozenset({"failed", "in_doubt", "render_error"})

#: an account's contact history, holds and promises (derived values a template uses may read them)
AccountInputs = tuple[Sequence[ContactEvent], Sequence[Hold], Sequence[Promise]]
ContextFor = Callable[[Account], AccountInputs]


@dataclass(frozen=True)
class Attempt:
    """One message to send: an action due for an account, rendered, with its transport and idempotency key."""

    idempotency_key: str
    account_id: str
    person_id: str | None
    debt_id: str | None
    channel: str
    template: str | None
    stage: str | None
    #: who is contacted: debtor | co_obligor | third_party
    subject: str
    priority: int
    #: the contact point used: phone number, email address or postal address (None for channels needing none)
    to: str | None
    #: the sender from the channel's settings (None = the transport's default)
    sender: str | None
    #: the rendered subject line, for channels that have one
    subject_line: str | None
    body: str | None
    #: the transport's name, None when the channel has none configured
    transport: str | None
    as_of: _dt.datetime
    #: the debtor's local date at as_of: part of the idempotency key
    local_date: _dt.date

    @property
    def body_sha256(self) -> str | None:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest() if self.body is not None else None

    def message(self) -> dict[str, Any]:
        """What the transport receives (see :class:`~collectrules.registry.Transport`)."""
        return {"channel": self.channel, "to": self.to, "from": self.sender, "subject": self.subject_line,
                "body": self.body, "account_id": self.account_id, "person_id": self.person_id,
                "debt_id": self.debt_id, "idempotency_key": self.idempotency_key, "template": self.template,
                "stage": self.stage, "party": self.subject}


@dataclass(frozen=True)
class DispatchRecord:
    """What happened to one attempt in a dispatch."""

    attempt: Attempt
    status: str
    result: DeliveryResult | None = None
    detail: str | None = None
    #: the rendering error, for ``render_error``
    error: CollectRulesError | None = None


@dataclass
class DispatchReport:
    """Every attempt of one dispatch and its status; counts by channel for the summary."""

    send: bool
    records: list[DispatchRecord] = field(default_factory=list)
    #: the ledger run of a sending dispatch
    run_id: int | None = None

    def counts(self) -> dict[str, Counter[str]]:
        by_channel: dict[str, Counter[str]] = {}
        for record in self.records:
            by_channel.setdefault(record.attempt.channel, Counter())[record.status] += 1
        return dict(sorted(by_channel.items()))

    def totals(self) -> Counter[str]:
        return Counter(record.status for record in self.records)

    @property
    def ok(self) -> bool:
        """No attempt failed, stayed in doubt or could not be rendered."""
        return not any(record.status in PROBLEM_STATUSES for record in self.records)

    def to_dict(self) -> dict[str, Any]:
        return {"mode": "send" if self.send else "dry-run", "run_id": self.run_id,
                "totals": {status: self.totals()[status] for status in STATUSES},
                "by_channel": {channel: {status: counts[status] for status in STATUSES}
                               for channel, counts in self.counts().items()},
                "problems": [{"account_id": r.attempt.account_id, "channel": r.attempt.channel,
                              "template": r.attempt.template, "status": r.status, "detail": r.detail}
                             for r in self.records if r.status in PROBLEM_STATUSES]}

    def render_text(self, *, shown: int = 20) -> str:
        """A table per channel, then the attempts that need attention (at most ``shown`` of them)."""
        mode = "sending" if self.send else "dry run, nothing sent"
        lines = [f"dispatch ({mode}):"]
        counts = self.counts()
        if not counts:
            lines.append("  no actions due")
            return "\n".join(lines) + "\n"
        columns = [s for s in STATUSES if s != "would_send" or not self.send]
        columns = [s for s in columns if s != "sent" or self.send]
        width = max(len("channel"), *(len(c) for c in counts))
        header = f"  {'channel':<{width}}" + "".join(f"  {STATUS_LABELS[s]:>13}" for s in columns)
        lines.append(header)
        for channel, row in [*counts.items(), ("total", self.totals())]:
            lines.append(f"  {channel:<{width}}" + "".join(f"  {row[s]:>13,}" for s in columns))
        problems = [r for r in self.records if r.status in PROBLEM_STATUSES]
        for record in problems[:shown]:
            attempt = record.attempt
            what = f"{attempt.channel}" + (f":{attempt.template}" if attempt.template else "")
            label = STATUS_LABELS[record.status]
            lines.append(f"  {label}: account {attempt.account_id} {what}: {record.detail}")
        if len(problems) > shown:
            lines.append(f"  … and {len(problems) - shown:,} more")
        return "\n".join(lines) + "\n"


def _local_date(account: Account, at: _dt.datetime) -> _dt.date:
    primary = zone(account.timezones[0]) if account.timezones else UTC_ZONE
    return timecalc.local_day(at, primary)


class _Planner:
    """Builds the attempts of one account's decision; template variables are computed once per account."""

    def __init__(self, program: Program, registry: Registry, context: ContextFor) -> None:
        self.policy = program.policy
        self.registry = registry
        self.renderer = TemplateRenderer(program)
        self.context = context

    def attempts(self, decision: Decision, account: Account) -> list[DispatchRecord | Attempt]:
        out: list[DispatchRecord | Attempt] = []
        variables: dict[str, Any] | None = None
        local_date = _local_date(account, decision.as_of)
        for action in decision.due:
            config = self.policy.channel_config.get(action.channel)
            rendered: RenderedMessage | None = None
            error: CollectRulesError | None = None
            if config is not None and action.template is not None:
                if variables is None:
                    history, holds, promises = self.context(account)
                    variables = self.renderer.variables(account, as_of=decision.as_of, scores=decision.scores,
                                                        history=history, holds=holds, promises=promises)
                try:
                    rendered = self.renderer.render(action.template, variables, account_id=account.account_id)
                except CollectRulesError as exc:
                    error = exc
            attempt = self._attempt(action, account, decision, local_date, config, rendered)
            if config is None:
                out.append(DispatchRecord(attempt, "no_transport",
                                          detail=f"no transport for {action.channel}"))
            elif error is not None:
                first = error.diagnostics[0]
                out.append(DispatchRecord(attempt, "render_error", error=error,
                                          detail=f"{first.location}: {first.message}"))
            else:
                out.append(attempt)
        return out

    def _attempt(self, action: ActionRef, account: Account, decision: Decision, local_date: _dt.date,
                 config: Any, rendered: RenderedMessage | None) -> Attempt:
        channel = self.registry.channels.get(action.channel)
        needs = channel.needs if channel is not None else None
        key = idempotency_key(self.policy.metadata.name, account.account_id, action.channel, action.template,
                              action.stage, local_date)
        return Attempt(
            idempotency_key=key, account_id=account.account_id, person_id=account.person_id,
            debt_id=account.debt_id, channel=action.channel, template=action.template, stage=action.stage,
            subject=action.subject, priority=action.priority,
            to=account.contact_point(needs) if needs else None,
            sender=config.sender if config is not None else None,
            subject_line=rendered.subject if rendered else None, body=rendered.body if rendered else None,
            transport=config.transport if config is not None else None, as_of=decision.as_of,
            local_date=local_date)


def _no_context(account: Account) -> AccountInputs:
    return (), (), ()


def dispatch(decisions: Iterable[Decision], program: Program, ledger: Ledger | None, registry: Registry, *,
             send: bool, accounts_by_id: Mapping[str, Account], pm: Any = None, retry_in_doubt: bool = False,
             context: ContextFor = _no_context, contact_clock: Callable[[], _dt.datetime] | None = None
             ) -> DispatchReport:
    """Dispatch the due actions of ``decisions``; see the module docstring for the protocol.

    :param ledger: where attempts are recorded and looked up; required when ``send`` is true.
    :param accounts_by_id: the accounts the decisions were made for (templates need their values).
    :param pm: the plugin manager whose ``collectrules_before_dispatch`` / ``collectrules_after_dispatch``
        hooks are called; None calls no hooks.
    :param retry_in_doubt: send attempts left ``planned`` by an earlier run again (they may have gone out).
    :param context: an account's contact history, holds and promises, for derived values templates use.
    :param contact_clock: when a sent contact happened on the policy's timeline (what caps and cadences
        count); default the moment it was sent.
    """
    if send and ledger is None:
        raise ValueError("sending needs a ledger, so that a second run does not send the same messages again")
    planner = _Planner(program, registry, context)
    report = DispatchReport(send)
    # attempts to send, with the state the ledger had for them (None = new): only that state is replanned
    pending: list[tuple[Attempt, str | None]] = []
    seen: set[str] = set()
    for decision in decisions:
        if not decision.due:
            continue
        account = accounts_by_id.get(decision.account_id)
        if account is None:
            raise ValueError(f"no account {decision.account_id!r} among the accounts given to dispatch")
        for item in planner.attempts(decision, account):
            attempt = item.attempt if isinstance(item, DispatchRecord) else item
            if attempt.idempotency_key in seen:
                continue  # two actions of one stage alike (same channel and template): one message
            seen.add(attempt.idempotency_key)
            if isinstance(item, DispatchRecord):
                report.records.append(item)
                continue
            existing = ledger.get(attempt.idempotency_key) if ledger is not None else None
            if existing is not None and existing.state == "sent":
                report.records.append(DispatchRecord(attempt, "skipped_sent",
                                                     detail=f"sent {existing.sent_at:%Y-%m-%d %H:%M}Z"
                                                     if existing.sent_at else "sent"))
            elif existing is not None and existing.state == "planned" and not retry_in_doubt:
                report.records.append(DispatchRecord(attempt, "in_doubt", detail=_in_doubt_detail(existing)))
            else:
                pending.append((attempt, existing.state if existing is not None else None))

    hook = pm.hook if pm is not None else None
    if not send:
        for attempt, _ in pending:
            if hook is not None:
                hook.collectrules_before_dispatch(attempt=attempt)
            report.records.append(DispatchRecord(attempt, "would_send"))
        return report

    assert ledger is not None
    if not pending:
        return report
    senders = _open_senders(program, registry, {a.channel for a, _ in pending})
    report.run_id = ledger.start_run(program.policy.metadata.name, program.policy.metadata.version,
                                     min(a.as_of for a, _ in pending), "send")
    try:
        for attempt, known_state in pending:
            sender = senders[attempt.channel]
            report.records.append(_send_one(attempt, known_state, ledger, report.run_id, sender, hook,
                                            contact_clock))
    finally:
        ledger.finish_run(report.run_id)
    return report


def _in_doubt_detail(existing: Any) -> str:
    started = f"planned {existing.created_at:%Y-%m-%d %H:%M}Z" if existing.created_at else "planned"
    return f"{started} by run {existing.run_id} and never confirmed; check with the provider, then rerun " \
           "with --retry-in-doubt to send it again"


def _open_senders(program: Program, registry: Registry, channels: set[str]
                  ) -> dict[str, Callable[[dict[str, Any]], DeliveryResult]]:
    """Open every transport needed before anything is sent, so a configuration error stops the run early."""
    senders = {}
    for channel in sorted(channels):
        config = program.policy.channel_config[channel]
        senders[channel] = registry.transports[config.transport].open(dict(config.params))
    return senders


def _send_one(attempt: Attempt, known_state: str | None, ledger: Ledger, run_id: int,
              sender: Callable[[dict[str, Any]], DeliveryResult], hook: Any,
              contact_clock: Callable[[], _dt.datetime] | None) -> DispatchRecord:
    assert attempt.transport is not None
    if hook is not None:
        hook.collectrules_before_dispatch(attempt=attempt)
    fields: dict[str, Any] = dict(contact=attempt.to, subject_line=attempt.subject_line,
                                  body_sha256=attempt.body_sha256, transport=attempt.transport)
    if known_state is None:
        planned = ledger.plan(run_id, key=attempt.idempotency_key, account_id=attempt.account_id,
                              person_id=attempt.person_id, debt_id=attempt.debt_id, channel=attempt.channel,
                              template=attempt.template, stage=attempt.stage, subject=attempt.subject,
                              **fields)
    else:
        planned = ledger.replan(run_id, attempt.idempotency_key, expected_state=known_state, **fields)
    if planned is None:
        # another run recorded this attempt since we looked: never send on a guess
        existing = ledger.get(attempt.idempotency_key)
        status = "skipped_sent" if existing is not None and existing.state == "sent" else "in_doubt"
        return DispatchRecord(attempt, status, detail="recorded by another run meanwhile")
    try:
        result = sender(attempt.message())
    except Exception as exc:  # noqa: BLE001 - the outcome is unknown: keep the attempt planned, in doubt
        return DispatchRecord(attempt, "in_doubt", detail=f"the transport raised {type(exc).__name__}: {exc}")
    contact_at = contact_clock() if contact_clock is not None else _dt.datetime.now(_dt.UTC)
    recorded = ledger.record(attempt.idempotency_key, result, contact_at=contact_at)
    if hook is not None:
        hook.collectrules_after_dispatch(attempt=attempt, result=result)
    return DispatchRecord(attempt, recorded.state, result, result.detail)
