"""The impact of a policy change: two versions of a policy decided on the same portfolio, compared account by
account.

For every account both versions decide, the comparison records whether its segment, stage, status, due
actions or blocks changed; old × new transition matrices of segments and stages, with a few sample
account ids per changed cell so a reviewer can ``explain`` them; and which due actions and which
restrictions' blocks accounts gained or lost. Accounts are matched by ``account_id``; each version reads
the input files typed by its own fields, so a row one version rejects is reported as compared by the
other only.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine.decision import Decision
from .engine.program import Program
from .policy import model as M

NONE_LABEL = "(none)"
#: the per-account aspects whose changes are counted, in report order
ASPECTS = ("segment", "stage", "status", "due", "blocked")


@dataclass(frozen=True)
class DecisionDigest:
    """The parts of a decision a policy change is judged by."""

    segment: str
    stage: str  # "ladder/stage"
    status: str
    due: frozenset[str]  # "channel" or "channel:template"
    blocked: frozenset[tuple[str, str]]  # (action, restriction id)
    has_errors: bool

    @classmethod
    def of(cls, decision: Decision) -> DecisionDigest:
        def label(channel: str, template: str | None) -> str:
            return f"{channel}:{template}" if template else channel

        stage = f"{decision.ladder}/{decision.stage}" if decision.stage else NONE_LABEL
        return cls(
            segment=decision.segment or NONE_LABEL, stage=stage, status=decision.status,
            due=frozenset(label(a.channel, a.template) for a in decision.due),
            blocked=frozenset((label(b.action.channel, b.action.template), r.restriction)
                              for b in decision.blocked for r in b.reasons),
            has_errors=bool(decision.errors))


@dataclass
class Transitions:
    """An old × new matrix of account counts, with sample account ids for the cells that changed."""

    max_samples: int
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    samples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def add(self, old: str, new: str, account_id: str) -> None:
        self.counts[(old, new)] += 1
        if old != new and self.max_samples > 0:
            kept = self.samples.setdefault((old, new), [])
            if len(kept) < self.max_samples:
                kept.append(account_id)

    def _sorted(self, labels: Iterable[str]) -> list[str]:
        rank = {label: index for index, label in enumerate(self.order)}
        return sorted(set(labels), key=lambda label: (rank.get(label, len(rank)), label))

    @property
    def old_labels(self) -> list[str]:
        return self._sorted(old for old, _ in self.counts)

    @property
    def new_labels(self) -> list[str]:
        return self._sorted(new for _, new in self.counts)

    @property
    def changed(self) -> list[tuple[str, str, int]]:
        """Off-diagonal cells, largest first."""
        cells = [(old, new, n) for (old, new), n in self.counts.items() if old != new]
        return sorted(cells, key=lambda c: (-c[2], c[0], c[1]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "matrix": {old: {new: n for new in self.new_labels if (n := self.counts[(old, new)])}
                       for old in self.old_labels},
            "changes": [{"old": old, "new": new, "accounts": n, "samples": self.samples.get((old, new), [])}
                        for old, new, n in self.changed],
        }


@dataclass(frozen=True)
class PolicyInfo:
    file: str
    name: str
    version: str

    @classmethod
    def of(cls, policy: M.Policy) -> PolicyInfo:
        return cls(policy.file, policy.metadata.name, policy.metadata.version)

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.file})"


@dataclass
class ImpactReport:
    """What changes between two policy versions over one portfolio."""

    old: PolicyInfo
    new: PolicyInfo
    as_of: _dt.datetime
    max_samples: int = 5
    compared: int = 0
    changed: Counter[str] = field(default_factory=Counter)
    change_samples: dict[str, list[str]] = field(default_factory=dict)
    segments: Transitions = field(init=False)
    stages: Transitions = field(init=False)
    due_gained: Counter[str] = field(default_factory=Counter)
    due_lost: Counter[str] = field(default_factory=Counter)
    blocks_gained: Counter[str] = field(default_factory=Counter)
    blocks_lost: Counter[str] = field(default_factory=Counter)
    errors_old: int = 0
    errors_new: int = 0
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    rejected_old: int = 0
    rejected_new: int = 0

    def __post_init__(self) -> None:
        self.segments = Transitions(self.max_samples)
        self.stages = Transitions(self.max_samples)

    def order_by(self, *policies: M.Policy) -> None:
        """Show matrix labels in policy order (segments as listed, stages along their ladders)."""
        for policy in policies:
            for segment in policy.segments.segment_ids():
                if segment not in self.segments.order:
                    self.segments.order.append(segment)
            for ladder in policy.escalation.ladders:
                for stage in ladder.stages:
                    label = f"{ladder.id}/{stage.id}"
                    if label not in self.stages.order:
                        self.stages.order.append(label)
        self.segments.order.append(NONE_LABEL)
        self.stages.order.append(NONE_LABEL)

    def add(self, account_id: str, old: Decision, new: Decision) -> None:
        """Compare the two decisions for one account."""
        before, after = DecisionDigest.of(old), DecisionDigest.of(new)
        self.compared += 1
        self.errors_old += before.has_errors
        self.errors_new += after.has_errors
        self.segments.add(before.segment, after.segment, account_id)
        self.stages.add(before.stage, after.stage, account_id)
        any_change = False
        for aspect in ASPECTS:
            if getattr(before, aspect) != getattr(after, aspect):
                any_change = True
                self._count(aspect, account_id)
        if any_change:
            self._count("any", account_id)
        for action in after.due - before.due:
            self.due_gained[action] += 1
        for action in before.due - after.due:
            self.due_lost[action] += 1
        old_blocks = {restriction for _, restriction in before.blocked}
        new_blocks = {restriction for _, restriction in after.blocked}
        for restriction in new_blocks - old_blocks:
            self.blocks_gained[restriction] += 1
        for restriction in old_blocks - new_blocks:
            self.blocks_lost[restriction] += 1

    def _count(self, aspect: str, account_id: str) -> None:
        self.changed[aspect] += 1
        kept = self.change_samples.setdefault(aspect, [])
        if len(kept) < self.max_samples:
            kept.append(account_id)

    def to_dict(self) -> dict[str, Any]:
        def info(p: PolicyInfo) -> dict[str, str]:
            return {"file": p.file, "name": p.name, "version": p.version}

        def gained_lost(gained: Counter[str], lost: Counter[str]) -> dict[str, dict[str, int]]:
            keys = sorted(set(gained) | set(lost))
            return {k: {"gained": gained[k], "lost": lost[k]} for k in keys}

        return {
            "old": info(self.old), "new": info(self.new),
            "as_of": self.as_of.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z"),
            "accounts_compared": self.compared,
            "changed": {aspect: {"accounts": self.changed[aspect],
                                 "samples": self.change_samples.get(aspect, [])}
                        for aspect in (*ASPECTS, "any")},
            "segments": self.segments.to_dict(),
            "stages": self.stages.to_dict(),
            "due_actions": gained_lost(self.due_gained, self.due_lost),
            "blocks_by_restriction": gained_lost(self.blocks_gained, self.blocks_lost),
            "accounts_with_errors": {"old": self.errors_old, "new": self.errors_new},
            "only_in_old": self.only_old, "only_in_new": self.only_new,
            "rejected_rows": {"old": self.rejected_old, "new": self.rejected_new},
        }


def impact_of(old: Iterable[Decision], new: Iterable[Decision], old_policy: M.Policy, new_policy: M.Policy,
              as_of: _dt.datetime, *, max_samples: int = 5) -> ImpactReport:
    """Compare two streams of decisions, matched by account id (the old ones are held in memory)."""
    report = ImpactReport(PolicyInfo.of(old_policy), PolicyInfo.of(new_policy), as_of, max_samples)
    report.order_by(old_policy, new_policy)
    pending = {decision.account_id: decision for decision in old}
    for decision in new:
        before = pending.pop(decision.account_id, None)
        if before is None:
            report.only_new.append(decision.account_id)
            continue
        report.add(decision.account_id, before, decision)
    report.only_old.extend(pending)
    return report


def portfolio_impact(old: Program, new: Program, accounts: str | Path, history: str | Path | None = None,
                     holds: str | Path | None = None, promises: str | Path | None = None, *,
                     as_of: _dt.datetime, max_samples: int = 5) -> ImpactReport:
    """Read the portfolio for each version (typed by its fields), decide with both, and compare."""
    from .engine.portfolio import evaluate_portfolio, load_portfolio

    old_portfolio = load_portfolio(old, accounts, history, holds, promises)
    new_portfolio = load_portfolio(new, accounts, history, holds, promises)
    report = impact_of(evaluate_portfolio(old, old_portfolio, as_of),
                       evaluate_portfolio(new, new_portfolio, as_of), old.policy, new.policy, as_of,
                       max_samples=max_samples)
    report.rejected_old = old_portfolio.rejected_rows
    report.rejected_new = new_portfolio.rejected_rows
    return report


def transition_table(transitions: Transitions) -> tuple[list[str], list[list[str]]]:
    """The matrix as a header and rows of text cells (first column: the old label), for renderers."""
    columns = transitions.new_labels
    header = ["old \\ new", *columns]
    rows = []
    for old in transitions.old_labels:
        counts = [transitions.counts[(old, new)] for new in columns]
        rows.append([old, *(f"{n:,}" if n else "·" for n in counts)])
    return header, rows

