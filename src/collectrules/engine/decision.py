"""What the engine decides for one account, and how it serialises.

A :class:`Decision` says which segment the account is in (and which rule put it there), its ladder and
stage, the actions due now, the actions blocked (each with every reason: the restriction id, its line in the
policy, a plain explanation, and the earliest time the action becomes allowed), scores, warnings and errors,
and, on request, a trace of every rule and restriction evaluated.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import Location


def _where(location: Location | None) -> str | None:
    return f"{location.file}:{location.line}" if location else None


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
        return {"restriction": self.restriction, "reason": self.message, "policy": _where(self.location),
                "next_allowed": _iso(self.next_allowed), "source": self.source}


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
                "next_allowed": _iso(self.next_allowed)}


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


@dataclass
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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "account_id": self.account_id,
            "as_of": _iso(self.as_of),
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
            "scores": {k: _plain(v) for k, v in self.scores.items()},
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
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def _iso(value: _dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return _iso(value)
    if isinstance(value, _dt.date | _dt.timedelta):
        return str(value)
    return value
