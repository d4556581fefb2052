"""The policy model: frozen dataclasses built from a validated document.

Code past :mod:`collectrules.policy` reads these, never raw dicts. Every node that a decision or an error
may point at carries its :class:`~collectrules.errors.Location` in the policy file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import Location
from ..lang import types as T
from ..lang.checker import TypedExpr
from ..lang.types import Type

if TYPE_CHECKING:
    from ..engine.timecalc import WeeklySchedule


@dataclass(frozen=True)
class Expression:
    """A checked expression as written in the policy."""

    source: str
    typed: TypedExpr
    location: Location
    #: path of the expression in the document, e.g. ("segments", "rules", 0, "when")
    path: tuple[str | int, ...]

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: Type
    optional: bool
    default: Any
    description: str | None
    location: Location


@dataclass(frozen=True)
class Derived:
    name: str
    expr: Expression
    description: str | None
    location: Location


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    plugin: str
    params: dict[str, Any]
    description: str | None
    location: Location


@dataclass(frozen=True)
class Template:
    id: str
    channel: str | None
    subject: str | None
    body: str
    location: Location
    #: where the body string stands, so rendering errors can be located
    body_path: tuple[str | int, ...] = ()
    #: the policy-file location of the first character of each line of the body (index 0 = line 1), so
    #: an error met while rendering points at the line of the policy it comes from
    body_lines: tuple[Location, ...] = field(default=(), compare=False)
    #: the same for the subject line
    subject_lines: tuple[Location, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ChannelConfig:
    """How one channel's messages are delivered (``channels:`` in the policy)."""

    channel: str
    transport: str
    params: dict[str, Any]
    #: the sender shown to the debtor (``from:``); None = the transport's own default
    sender: str | None
    description: str | None
    location: Location


@dataclass(frozen=True)
class SegmentRule:
    id: str
    when: Expression
    description: str | None
    location: Location


@dataclass(frozen=True)
class SegmentTable:
    hit_policy: str  # first | unique | collect
    rules: tuple[SegmentRule, ...]
    default: str | None
    location: Location

    def segment_ids(self) -> list[str]:
        ids = [r.id for r in self.rules]
        if self.default and self.default not in ids:
            ids.append(self.default)
        return ids


@dataclass(frozen=True)
class Cadence:
    kind: str  # once | every | on_days
    every: _dt.timedelta | None = None
    days: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.kind == "every":
            assert self.every is not None
            return f"every {_format_duration(self.every)}"
        if self.kind == "on_days":
            return "on days " + ", ".join(str(d) for d in self.days) + " of the stage"
        return "once per stage"


def _format_duration(value: _dt.timedelta) -> str:
    from ..lang.printer import format_duration

    return format_duration(value)


@dataclass(frozen=True)
class Action:
    channel: str
    template: str | None
    priority: int
    subject: str
    cadence: Cadence
    location: Location


@dataclass(frozen=True)
class Stage:
    id: str
    enter: Expression
    min_days_in_stage: int
    actions: tuple[Action, ...]
    description: str | None
    location: Location


@dataclass(frozen=True)
class Ladder:
    id: str
    segments: tuple[str, ...]
    stages: tuple[Stage, ...]
    description: str | None
    location: Location

    def stage_index(self, stage_id: str | None) -> int | None:
        for index, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return index
        return None


@dataclass(frozen=True)
class Escalation:
    ladders: tuple[Ladder, ...]
    cure_when: Expression | None

    def ladder_for(self, segment: str | None) -> Ladder | None:
        for ladder in self.ladders:
            if segment in ladder.segments:
                return ladder
        return None

    def ladder(self, ladder_id: str) -> Ladder | None:
        """The ladder with this id."""
        for ladder in self.ladders:
            if ladder.id == ladder_id:
                return ladder
        return None


@dataclass(frozen=True)
class Window:
    """A counting window: calendar days in the debtor's zone (d, w) or a sliding duration (h, m, s)."""

    calendar_days: int | None = None
    sliding: _dt.timedelta | None = None
    text: str = ""


@dataclass(frozen=True)
class EventFilter:
    """Which contact-history events a cap counts or a cool-down reacts to."""

    channels: frozenset[str] | None  # None = the restriction's channels (caps) / any channel
    outcomes: frozenset[str] | None  # None = any outcome
    exclude_outcomes: frozenset[str] = frozenset()
    direction: str = "outbound"  # outbound | inbound | any
    exclude_consented: bool = False


@dataclass(frozen=True)
class HoldException:
    channel: str
    template: str | None


@dataclass(frozen=True)
class Restriction:
    """One contact restriction; ``kind`` says which of the kind-specific attributes are set."""

    id: str
    kind: str  # window | calendar | cap | cooldown | gap | hold | expression
    channels: frozenset[str] | None  # None = every channel
    subjects: frozenset[str] | None
    description: str | None
    source: str | None
    explain: str | None
    location: Location
    schedule: WeeklySchedule | None = None
    schedule_text: str | None = None
    timezone: str = "debtor"
    calendar: str | None = None
    max_attempts: int | None = None
    per: Window | None = None
    key: str = "person"
    count: EventFilter | None = None
    block_for: Window | None = None
    after: EventFilter | None = None
    min_gap: _dt.timedelta | None = None
    holds: frozenset[str] = frozenset()
    exceptions: tuple[HoldException, ...] = ()
    block_when: Expression | None = None
    #: the restriction pack whose rule this is (or which rule of a pack it tightens or overrides)
    pack: str | None = None
    #: why a policy deliberately loosens a pack's rule (``override: {reason: ...}``)
    override_reason: str | None = None

    def applies_to(self, channel: str, subject: str = "debtor") -> bool:
        if self.channels is not None and channel not in self.channels:
            return False
        return self.subjects is None or subject in self.subjects


def kpi_names(segment_ids: Sequence[str]) -> dict[str, Type]:
    """The names a KPI's ``where`` may use besides the policy's fields and derived names.

    They describe an account on a balance snapshot of the outcome data (``docs/kpis.md``): ``dpd`` and
    ``balance`` from the snapshot, ``bucket`` (``current``, ``1-30``, ``31-60``, ``61-90``, ``91-180``,
    ``180+``) from its ``dpd``, ``written_off``, ``team`` from the outcome data, and ``segment``, the
    segment the policy gives the account on that snapshot. A field or derived name of the policy with the
    same name takes precedence.
    """
    return {"dpd": T.INT, "balance": T.DECIMAL, "bucket": T.STRING, "written_off": T.BOOL, "team": T.STRING,
            "segment": T.enum_of(tuple(segment_ids))}


@dataclass(frozen=True)
class Kpi:
    """A KPI target.

    An absolute target compares the metric with ``threshold``. A relative target
    (``"<= 0.9 * previous(quarter)"``) has no threshold; it compares the metric with
    ``factor * (the metric over the previous period of kind relative_to) + offset``.
    """

    id: str
    metric: str
    where: Expression | None
    op: str
    threshold: Decimal | None
    target_text: str
    period: str
    params: dict[str, Any]
    description: str | None
    location: Location
    #: for a relative target, the kind of period ``previous(...)`` names
    relative_to: str | None = None
    factor: Decimal = Decimal(1)
    offset: Decimal = Decimal(0)

    def threshold_for(self, previous: Decimal | None) -> Decimal | None:
        """The number the metric is compared with: the threshold, or for a relative target the previous
        period's value times the factor plus the offset (``None`` when that value is unknown)."""
        if self.relative_to is None:
            return self.threshold
        if previous is None:
            return None
        return self.factor * previous + self.offset


@dataclass(frozen=True)
class ExperimentArm:
    """One arm of a champion/challenger experiment: its share of accounts and what it changes."""

    id: str
    #: percent of accounts, 0 < share <= 100, in steps of 0.01
    share: Decimal
    #: the arm's hash buckets: ``low <= bucket < high`` out of 10,000
    low: int
    high: int
    #: segment id → ladder id the segment's accounts climb in this arm
    ladders: dict[str, str]
    description: str | None
    location: Location


@dataclass(frozen=True)
class Experiment:
    """A champion/challenger experiment: every account is assigned one arm, stably.

    The assignment hashes ``"<experiment id>:<account id>"`` with SHA-256, reads the digest as a big-endian
    integer and takes it modulo 10,000; arm *i* gets the buckets from the sum of the shares before it
    (times 100) up to that sum plus its own share (times 100). It depends on nothing but the two ids, so it
    is the same on every run and every machine.
    """

    id: str
    arms: tuple[ExperimentArm, ...]
    #: ids of the KPIs the report compares the arms on
    compare: tuple[str, ...]
    description: str | None
    location: Location

    @staticmethod
    def bucket(experiment_id: str, account_id: str) -> int:
        """The account's hash bucket in ``[0, 10000)`` for the experiment."""
        digest = hashlib.sha256(f"{experiment_id}:{account_id}".encode()).digest()
        return int.from_bytes(digest, "big") % 10_000

    def arm_for(self, account_id: str) -> ExperimentArm:
        """The arm the account is assigned to."""
        bucket = self.bucket(self.id, account_id)
        for arm in self.arms:
            if arm.low <= bucket < arm.high:
                return arm
        return self.arms[-1]  # unreachable when the shares add up to 100, which the builder checks


@dataclass(frozen=True)
class PackImport:
    """One restriction pack in force in a policy, with what the policy made of its rules."""

    name: str
    version: str
    jurisdiction: str
    description: str | None
    #: the pack file
    file: str
    #: where the pack is imported (the first import, when several documents import it)
    location: Location
    #: parameter values in force, the pack's defaults with what the importer set
    parameters: dict[str, Any]
    #: ids of the pack's restrictions that apply as the pack wrote them
    in_force: tuple[str, ...]
    #: ids of the pack's restrictions that an importer replaced by a stricter one
    tightened: tuple[str, ...]
    #: ids of the pack's restrictions that an importer replaced with ``override`` (possibly looser)
    overridden: tuple[str, ...]


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    owner: str | None = None
    description: str | None = None
    market: str | None = None


@dataclass(frozen=True)
class Policy:
    """A loaded, validated and type-checked policy."""

    file: str
    metadata: Metadata
    fields: dict[str, FieldSpec]
    #: derived names in evaluation order (every name after the names it reads)
    derive: tuple[Derived, ...]
    scores: tuple[ScoreSpec, ...]
    templates: dict[str, Template]
    segments: SegmentTable
    escalation: Escalation
    restrictions: tuple[Restriction, ...]
    kpis: tuple[Kpi, ...]
    warnings: tuple[Any, ...] = field(default=(), compare=False)
    #: channel name → how its messages are delivered; channels not listed have no transport
    channel_config: dict[str, ChannelConfig] = field(default_factory=dict)
    #: every expression in the policy, for tools that walk them all (lint, coverage, explain)
    expressions: tuple[Expression, ...] = field(default=(), compare=False)
    #: champion/challenger experiments
    experiments: tuple[Experiment, ...] = ()
    #: the restriction packs the policy imports, directly or through other packs, in merge order
    imports: tuple[PackImport, ...] = ()
