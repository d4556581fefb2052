"""What the engine decides for one account, and how it serialises.

A :class:`Decision` says which segment the account is in (and which rule put it there), its ladder and
stage, the actions due now, the actions blocked (each with every reason: the restriction id, its line in the
policy, a plain explanation, and the earliest time the action becomes allowed), scores, warnings and errors,
and, on request, a trace of every rule and restriction evaluated.

A program reports the same :class:`ActionRef` (and often the same :class:`Reason`) for every account that
has the action, so their serialised form is kept the first time it is made; every ``to_dict`` still
returns a new dictionary.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import Location

#: ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``, without building an encoder per call
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: serialised actions and reasons by identity, with the object itself so that its id is never reused
_SERIALISED: dict[int, tuple[Any, dict[str, Any], list[str]]] = {}
_SERIALISED_LIMIT = 65_536


def _where(location: Location | None) -> str | None:
    return f"{location.file}:{location.line}" if location else None


def _serialised(item: Any, make: Any) -> tuple[Any, dict[str, Any], list[str]]:
    found = _SERIALISED.get(id(item))
    if found is None or found[0] is not item:
        if len(_SERIALISED) >= _SERIALISED_LIMIT:
            _SERIALISED.clear()
        # the JSON text is made when first asked for (the list is filled in place)
        found = _SERIALISED[id(item)] = (item, make(item), [])
    return found


def _kept(item: Any, make: Any) -> dict[str, Any]:
    """A new copy of ``make(item)``, computed once per object."""
    return dict(_serialised(item, make)[1])


def _json_of(item: Any, make: Any) -> str:
    """``make(item)`` as compact JSON, computed once per object."""
    _, data, text = _serialised(item, make)
    if not text:
        text.append(_ENCODE(data))
    return text[0]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an action is blocked (or paused)."""

    restriction: str
    message: str
    location: Location | None
    #: the earliest instant this restriction alone allows the action; None = not foreseeable
    next_allowed: _dt.datetime | None
    source: str | None = None  # legal source, e.g. "12 CFR 1006.14(b)(2)(i)"

    def to_dict(self) -> dict[str, Any]:
        return _kept(self, Reason._serialise)

    def _serialise(self) -> dict[str, Any]:
        return {"restriction": self.restriction, "reason": self.message, "policy": _where(self.location),
                "next_allowed": iso_utc(self.next_allowed), "source": self.source}


@dataclass(frozen=True, slots=True)
class ActionRef:
    """An action of the account's stage."""

    channel: str
    template: str | None
    priority: int
    subject: str
    stage: str
    cadence: str
    location: Location | None

    def to_dict(self) -> dict[str, Any]:
        return _kept(self, ActionRef._serialise)

    def _serialise(self) -> dict[str, Any]:
        return {"channel": self.channel, "template": self.template, "priority": self.priority,
                "subject": self.subject, "stage": self.stage, "cadence": self.cadence,
                "policy": _where(self.location)}


@dataclass(frozen=True, slots=True)
class BlockedAction:
    action: ActionRef
    reasons: tuple[Reason, ...]
    #: the earliest instant every restriction allows the action, assuming no new contact; None = unknown
    next_allowed: _dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.action.to_dict(), "blocked_by": [r.to_dict() for r in self.reasons],
                "next_allowed": iso_utc(self.next_allowed)}

    def to_json(self) -> str:
        """``to_dict()`` as compact JSON (see :meth:`Decision.to_json`)."""
        action = _json_of(self.action, ActionRef._serialise)
        reasons = ",".join([_json_of(r, Reason._serialise) for r in self.reasons])
        nxt = iso_utc(self.next_allowed)
        return f'{action[:-1]},"blocked_by":[{reasons}],"next_allowed":{_ENCODE(nxt) if nxt else "null"}}}'


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One rule, stage or restriction evaluated, with its result."""

    step: str  # derive | score | segment | ladder | stage | cadence | restriction
    id: str
    result: str
    location: Location | None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "id": self.id, "result": self.result, "policy": _where(self.location),
                "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Finding:
    """A warning or error met while deciding for this account; the run goes on."""

    code: str
    message: str
    location: Location | None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "policy": _where(self.location)}


@dataclass(slots=True, init=False)
class Decision:
    account_id: str
    as_of: _dt.datetime
    segment: str | None = None
    segment_rule: str | None = None
    segment_location: Location | None = None
    segments: tuple[str, ...] = ()  # every matching segment under the collect hit policy
    ladder: str | None = None
    stage: str | None = None
    stage_location: Location | None = None
    stage_entered: _dt.date | None = None
    day_in_stage: int | None = None
    status: str = "active"  # active | cured | paused | no_ladder | no_stage
    due: list[ActionRef] = field(default_factory=list)
    blocked: list[BlockedAction] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    warnings: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    trace: list[TraceEntry] | None = None
    experiment_arms: dict[str, str] = field(default_factory=dict)

    # written out rather than generated: the engine builds one per account, and the generated __init__
    # spends more time on the default factories than on anything else
    def __init__(self, account_id: str, as_of: _dt.datetime, segment: str | None = None,
                 segment_rule: str | None = None, segment_location: Location | None = None,
                 segments: tuple[str, ...] = (), ladder: str | None = None, stage: str | None = None,
                 stage_location: Location | None = None, stage_entered: _dt.date | None = None,
                 day_in_stage: int | None = None, status: str = "active", due: list[ActionRef] | None = None,
                 blocked: list[BlockedAction] | None = None, scores: dict[str, Any] | None = None,
                 warnings: list[Finding] | None = None, errors: list[Finding] | None = None,
                 trace: list[TraceEntry] | None = None,
                 experiment_arms: dict[str, str] | None = None) -> None:
        self.account_id = account_id
        self.as_of = as_of
        self.segment = segment
        self.segment_rule = segment_rule
        self.segment_location = segment_location
        self.segments = segments
        self.ladder = ladder
        self.stage = stage
        self.stage_location = stage_location
        self.stage_entered = stage_entered
        self.day_in_stage = day_in_stage
        self.status = status
        self.due = [] if due is None else due
        self.blocked = [] if blocked is None else blocked
        self.scores = {} if scores is None else scores
        self.warnings = [] if warnings is None else warnings
        self.errors = [] if errors is None else errors
        self.trace = trace
        self.experiment_arms = {} if experiment_arms is None else experiment_arms

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "account_id": self.account_id,
            "as_of": iso_utc(self.as_of),
            "segment": self.segment,
            "segment_rule": self.segment_rule,
            "segment_policy": _where(self.segment_location),
            "ladder": self.ladder,
            "stage": self.stage,
            "stage_policy": _where(self.stage_location),
            "stage_entered": self.stage_entered.isoformat() if self.stage_entered else None,
            "day_in_stage": self.day_in_stage,
            "status": self.status,
            "due": [a.to_dict() for a in self.due],
            "blocked": [b.to_dict() for b in self.blocked],
            "scores": {k: plain_value(v) for k, v in self.scores.items()},
            "warnings": [w.to_dict() for w in self.warnings],
            "errors": [e.to_dict() for e in self.errors],
        }
        if self.segments:
            out["segments"] = list(self.segments)
        if self.experiment_arms:
            out["experiments"] = dict(self.experiment_arms)
        if self.trace is not None:
            out["trace"] = [t.to_dict() for t in self.trace]
        return out

    def to_json(self) -> str:
        """``to_dict()`` as compact JSON; the same text ``json.dumps`` gives, put together from the kept text
        of each action and reason."""
        head = _ENCODE({
            "account_id": self.account_id,
            "as_of": iso_utc(self.as_of),
            "segment": self.segment,
            "segment_rule": self.segment_rule,
            "segment_policy": _where(self.segment_location),
            "ladder": self.ladder,
            "stage": self.stage,
            "stage_policy": _where(self.stage_location),
            "stage_entered": self.stage_entered.isoformat() if self.stage_entered else None,
            "day_in_stage": self.day_in_stage,
            "status": self.status,
        })
        parts = [head[:-1], ',"due":[', ",".join([_json_of(a, ActionRef._serialise) for a in self.due]),
                 '],"blocked":[', ",".join([b.to_json() for b in self.blocked]), '],"scores":',
                 _ENCODE({k: plain_value(v) for k, v in self.scores.items()}) if self.scores else "{}",
                 ',"warnings":', _ENCODE([w.to_dict() for w in self.warnings]) if self.warnings else "[]",
                 ',"errors":', _ENCODE([e.to_dict() for e in self.errors]) if self.errors else "[]"]
        if self.segments:
            parts += (',"segments":', _ENCODE(list(self.segments)))
        if self.experiment_arms:
            parts += (',"experiments":', _ENCODE(dict(self.experiment_arms)))
        if self.trace is not None:
            parts += (',"trace":', _ENCODE([t.to_dict() for t in self.trace]))
        parts.append("}")
        return "".join(parts)


def iso_utc(value: _dt.datetime | None) -> str | None:
    """An instant as decisions write it: ISO 8601 in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def plain_value(value: Any) -> Any:
    """A score as decisions write it: decimals and dates as text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return iso_utc(value)
    if isinstance(value, _dt.date | _dt.timedelta):
        return str(value)
    return value
