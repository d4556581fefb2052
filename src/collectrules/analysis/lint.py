"""The checks behind ``collectrules lint``: flaws a valid policy can have, found without any data.

Every finding is a :class:`~collectrules.errors.Diagnostic` (severity ``warning``) located at the rule,
stage, restriction, condition, field or derived name concerned:

- ``CR801`` two segment rules overlap under ``hit_policy: unique`` (with an account that matches both);
- ``CR802`` a segment rule is shadowed under ``hit_policy: first``: earlier rules take every account it
  matches;
- ``CR803`` an account matches no segment rule and there is no default (with such an account);
- ``CR804`` / ``CR805`` a condition (rule, stage, cure, KPI filter, block_when) is never / always true;
- ``CR806`` a stage is never entered by its condition: no account of its ladder's segments meets it, or a
  later stage's condition holds whenever it does (the most severe stage that holds wins);
- ``CR807`` a restriction never applies (block_when never true; no action uses its channels or subjects)
  or never allows contact (a window closed every day);
- ``CR808`` / ``CR809`` a field or a derived name nothing reads.

Counterexamples end the message, after :data:`EXAMPLE_MARKER`: ``…; for example dpd=0, balance=0``; they
name every field the conditions involved read, and fields they leave free take a readable value (0, the
first enum value, false; 1 for a field used in arithmetic, which a zero could make fail). The answers rest
on :mod:`.conditions`: exact where a condition is made of what it models, silent where it is not. With
``explain_unknown`` a check that could not be decided becomes a ``CR800`` note naming the parts of the
conditions that stopped it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import CollectRulesError, Diagnostic, Location, Severity, read_source_line
from ..lang import ast
from ..policy import model as M
from ..policy.check import CheckResult, check_policy_file
from ..policy.load import SourceDoc, load_yaml
from ..registry import Registry
from .conditions import Approx, ConditionAnalyzer, Truth, describe_unknowns
from .domain import Box, Region, TooComplex

#: the words between a finding's message and its counterexample
EXAMPLE_MARKER = "; for example "

#: account columns the engine reads itself; declaring one as a field is never "unused"
_ENGINE_COLUMNS = frozenset({"account_id", "person_id", "debt_id", "timezone", "phone", "email", "address",
                             "opt_out_channels", "stage", "stage_entered"})


def parse_counterexample(message: str) -> dict[str, str] | None:
    """The ``name=value`` pairs after :data:`EXAMPLE_MARKER` in a finding's message, or None."""
    if EXAMPLE_MARKER not in message:
        return None
    text = message.rsplit(EXAMPLE_MARKER, 1)[1]
    pairs: dict[str, str] = {}
    for part in text.split(", "):
        name, _, value = part.partition("=")
        pairs[name.strip()] = value.strip()
    return pairs


def lint_policy(policy: M.Policy, doc: SourceDoc | None = None, *,
                explain_unknown: bool = False) -> list[Diagnostic]:
    """Every lint finding for a valid policy, sorted by position. ``doc`` (the loaded file) lets findings
    about fields and derived names point at their keys and show source lines without reading the file."""
    return _Linter(policy, doc, explain_unknown).run()


def add_lint_findings(result: CheckResult, *, explain_unknown: bool = False) -> CheckResult:
    """``result`` with the lint findings added to its diagnostics (unchanged when the policy is invalid)."""
    if not result.ok or result.policy is None:
        return result
    try:
        doc: SourceDoc | None = load_yaml(result.file)
    except CollectRulesError:
        doc = None
    findings = lint_policy(result.policy, doc, explain_unknown=explain_unknown)
    diagnostics = sorted([*result.diagnostics, *findings], key=_position)
    return CheckResult(result.file, result.policy, diagnostics)


def lint_file(path: str | Path, registry: Registry | None = None, *,
              explain_unknown: bool = False) -> CheckResult:
    """Validate one policy file and, when it is valid, lint it. Never raises for bad input."""
    return add_lint_findings(check_policy_file(path, registry), explain_unknown=explain_unknown)


def _position(diagnostic: Diagnostic) -> tuple[int, int]:
    location = diagnostic.location
    return (location.line, location.column) if location else (0, 0)


def _names(items: Iterable[str], conjunction: str = "and") -> str:
    quoted = [f"'{item}'" for item in items]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + f" {conjunction} " + quoted[-1]


def _unknowns(approximations: Iterable[Approx]) -> tuple[str, ...]:
    """The unmodelled parts behind several approximations, each named once."""
    return tuple(dict.fromkeys(reason for approx in approximations for reason in approx.unknowns))


def _literally_true(expression: M.Expression) -> bool:
    return expression.source.strip() == "true"


@dataclass(frozen=True)
class _Condition:
    """A condition of the policy and what it means for the policy when it is never or always true."""

    expression: M.Expression
    subject: str
    never: str
    always: str


class _Linter:
    def __init__(self, policy: M.Policy, doc: SourceDoc | None, explain_unknown: bool) -> None:
        self.policy = policy
        self.doc = doc
        self.explain_unknown = explain_unknown
        self.analyzer = ConditionAnalyzer(policy)
        self.space = self.analyzer.space
        self.findings: list[Diagnostic] = []
        self._truths: dict[int, Truth] = {}

    # ---- plumbing ------------------------------------------------------------------------------------

    def run(self) -> list[Diagnostic]:
        never_true = self._conditions()
        self._segments(never_true)
        self._stages(never_true)
        self._restrictions()
        self._unused()
        unique = list(dict.fromkeys(self.findings))
        return sorted(unique, key=lambda d: (*_position(d), d.code))

    def truth(self, expression: M.Expression) -> Truth:
        key = id(expression)
        if key not in self._truths:
            self._truths[key] = self.analyzer.condition(expression)
        return self._truths[key]

    def report(self, code: str, message: str, location: Location, hint: str | None = None,
               severity: Severity = "warning") -> None:
        self.findings.append(Diagnostic(code, message, location, hint, severity, self._line(location)))

    def undecided(self, message: str, location: Location, unknowns: tuple[str, ...]) -> None:
        if self.explain_unknown:
            self.report("CR800", f"{message}: it depends on {describe_unknowns(unknowns)}", location,
                        "the analysis models comparisons of fields with literals, in, between, is null, "
                        "not/and/or and derived names built from them", severity="note")

    def _line(self, location: Location) -> str | None:
        if self.doc is not None and location.file == self.doc.file:
            return self.doc.line_text(location.line)
        text = read_source_line(location.file, location.line)
        return text.rstrip("\n") if text is not None else None

    def _key_location(self, path: tuple[str | int, ...], fallback: Location) -> Location:
        """Where the key at ``path`` stands, when it stands in the linted file (not in an imported one)."""
        if self.doc is None or fallback.file != self.doc.file:
            return fallback
        return self.doc.location(path, key=True)

    def example(self, region: Region, expressions: Iterable[M.Expression]) -> str:
        """``dpd=0, balance=0``: one account of ``region``, showing every field the expressions read."""
        risky = frozenset(self.analyzer.opaque_fields)
        values = self.space.witness(region, risky) or {}
        wanted: set[str] = set(values)
        for expression in expressions:
            wanted |= self.analyzer.fields_of(expression)
        parts = []
        for name in self.policy.fields:
            if name in wanted:
                value = values[name] if name in values \
                    else self.space.free_value(name, avoid_zero=name in risky)
                parts.append(f"{name}={self.space.domains[name].show(value)}")
        return ", ".join(parts) if parts else "any account"

    # ---- conditions never or always true -------------------------------------------------------------

    def _all_conditions(self) -> list[_Condition]:
        policy = self.policy
        found: list[_Condition] = []
        for rule in policy.segments.rules:
            found.append(_Condition(rule.when, f"the condition of segment rule '{rule.id}'",
                                    "so the rule never matches", "so every account matches the rule"))
        if policy.escalation.cure_when is not None:
            found.append(_Condition(policy.escalation.cure_when, "cure_when", "so no account is ever cured",
                                    "so every account is cured and no ladder ever acts"))
        for ladder in policy.escalation.ladders:
            for stage in ladder.stages:
                found.append(_Condition(stage.enter, f"the enter condition of stage '{stage.id}'",
                                        "so the stage is never entered",
                                        "so every account of the ladder meets it"))
        for restriction in policy.restrictions:
            if restriction.block_when is not None:
                found.append(_Condition(restriction.block_when,
                                        f"the block_when of restriction '{restriction.id}'", "",
                                        "so every action on its channels is always blocked"))
        for kpi in policy.kpis:
            if kpi.where is not None:
                found.append(_Condition(kpi.where, f"the where filter of KPI '{kpi.id}'",
                                        "so the KPI measures no account",
                                        "so the filter keeps every account"))
        return found

    def _conditions(self) -> set[int]:
        """Report conditions never or always true; returns the ids of those never true."""
        never_true: set[int] = set()
        restrictions = {id(r.block_when): r for r in self.policy.restrictions if r.block_when is not None}
        for condition in self._all_conditions():
            expression = condition.expression
            truth = self.truth(expression)
            if truth.true.over.empty:
                never_true.add(id(expression))
                restriction = restrictions.get(id(expression))
                if restriction is not None:
                    self.report("CR807", f"restriction '{restriction.id}' never applies: its block_when is "
                                         "never true", restriction.location,
                                "check the condition against the fields' declared values")
                else:
                    self.report("CR804", f"{condition.subject} is never true, {condition.never}",
                                expression.location, "no account can satisfy it; check the bounds and values")
                continue
            if _literally_true(expression):
                continue
            try:
                always = self.space.find_outside(self.space.everything, (truth.true.under,)) is None
            except TooComplex:
                continue
            if always:
                self.report("CR805", f"{condition.subject} is always true, {condition.always}",
                            expression.location, "a condition that holds for every account decides nothing")
        return never_true

    def _possible(self, base: Region, holes: Iterable[Approx]) -> bool:
        """Whether some account of ``base`` may escape every hole (holes counted only where certain)."""
        return self.space.find_outside(base, [hole.under for hole in holes]) is not None

    def _certain(self, base: Region, holes: Iterable[Approx]) -> Box | None:
        """Accounts of ``base`` that certainly escape every hole (holes counted wherever they may be)."""
        return self.space.find_outside(base, [hole.over for hole in holes])

    # ---- segments ------------------------------------------------------------------------------------

    def _segments(self, never_true: set[int]) -> None:
        table = self.policy.segments
        rules = table.rules
        truths = [self.truth(rule.when).true for rule in rules]
        try:
            if table.hit_policy == "first":
                self._shadowed(rules, truths, never_true)
            elif table.hit_policy == "unique":
                self._overlaps(rules, truths)
        except TooComplex:
            pass
        if table.default is None:
            try:
                self._gap(rules, truths)
            except TooComplex:
                pass

    def _shadowed(self, rules: tuple[M.SegmentRule, ...], truths: list[Approx], never_true: set[int]) -> None:
        for index, rule in enumerate(rules):
            if index == 0 or id(rule.when) in never_true:
                continue
            mine, earlier = truths[index], truths[:index]
            if not self._possible(mine.over, earlier):
                takers = [(r.id, t) for r, t in zip(rules[:index], earlier, strict=True)]
                alone = next((name for name, t in takers if not self._possible(mine.over, (t,))), None)
                who = f"the earlier rule '{alone}' takes" if alone else "the earlier rules " + _names(
                    name for name, t in takers if not self.space.intersect(mine.over, t.under).empty) + \
                    " together take"
                self.report("CR802", f"segment rule '{rule.id}' never matches: {who} every account it "
                                     "matches", rule.location,
                            "with hit_policy: first the first matching rule wins; move this rule up or "
                            "narrow the earlier ones")
            elif self.explain_unknown and self._certain(mine.under, earlier) is None:
                self.undecided(f"could not decide whether segment rule '{rule.id}' can ever match",
                               rule.location, _unknowns([mine, *earlier]))

    def _overlaps(self, rules: tuple[M.SegmentRule, ...], truths: list[Approx]) -> None:
        for j, second in enumerate(rules):
            for i in range(j):
                first = rules[i]
                both = self.analyzer.both(truths[i], truths[j])
                if not both.under.empty:
                    example = self.example(both.under, (first.when, second.when))
                    self.report("CR801", f"segment rules '{first.id}' (line {first.location.line}) and "
                                         f"'{second.id}' both match some accounts, but the hit policy is "
                                         f"'unique'{EXAMPLE_MARKER}{example}", second.location,
                                "make the conditions exclusive, or use hit_policy: first")
                elif not both.over.empty:
                    self.undecided(f"could not decide whether segment rules '{first.id}' and '{second.id}' "
                                   f"overlap", second.location, both.unknowns)

    def _gap(self, rules: tuple[M.SegmentRule, ...], truths: list[Approx]) -> None:
        location = self._key_location(("segments",), self.policy.segments.location)
        # a few boxes of unmatched accounts, so that the example can be the plainest of them
        unmatched = self.space.boxes_outside(self.space.everything, [t.over for t in truths], limit=16)
        if unmatched:
            example = self.example(Region(tuple(unmatched)), (rule.when for rule in rules))
            self.report("CR803", "some accounts match no segment rule and there is no default segment"
                                 f"{EXAMPLE_MARKER}{example}", location,
                        "add a rule for them, or a 'default' segment")
        elif self.explain_unknown and self._possible(self.space.everything, truths):
            self.undecided("could not decide whether every account matches a segment rule", location,
                           _unknowns(truths))

    # ---- stages --------------------------------------------------------------------------------------

    def _segment_terms(self) -> dict[str, list[tuple[Approx, list[Approx]]]]:
        """The accounts each segment receives, as terms ``base minus holes`` (their union)."""
        table = self.policy.segments
        truths = [self.truth(rule.when).true for rule in table.rules]
        terms: dict[str, list[tuple[Approx, list[Approx]]]] = {}
        for index, rule in enumerate(table.rules):
            if table.hit_policy == "unique":
                holes = truths[:index] + truths[index + 1:]
            elif table.hit_policy == "first":
                holes = truths[:index]
            else:
                # every matching rule is a segment and the account follows the first that has a ladder, so
                # earlier rules only certainly take an account where they certainly match it
                holes = [Approx(self.space.nothing, t.over, t.unknowns) for t in truths[:index]]
            terms.setdefault(rule.id, []).append((truths[index], holes))
        if table.default is not None:
            terms.setdefault(table.default, []).append((self.analyzer.everything, truths))
        return terms

    def _stages(self, never_true: set[int]) -> None:
        escalation = self.policy.escalation
        terms = self._segment_terms()
        cure = [self.truth(escalation.cure_when).true] if escalation.cure_when is not None else []
        for ladder in escalation.ladders:
            reaching = [(base, [*holes, *cure]) for s in ladder.segments for base, holes in terms.get(s, [])]
            try:
                if not any(self._possible(base.over, holes) for base, holes in reaching):
                    continue  # no account reaches the ladder: the segment and cure findings say why
                self._ladder(ladder, reaching, never_true)
            except TooComplex:
                continue

    def _ladder(self, ladder: M.Ladder, reaching: list[tuple[Approx, list[Approx]]],
                never_true: set[int]) -> None:
        enters = [self.truth(stage.enter).true for stage in ladder.stages]
        for index, stage in enumerate(ladder.stages):
            if id(stage.enter) in never_true:
                continue
            mine, later = enters[index], enters[index + 1:]
            entering = [(self.space.intersect(base.over, mine.over), holes) for base, holes in reaching]

            def escapes(extra: list[Approx], entering: list[tuple[Region, list[Approx]]] = entering) -> bool:
                return any(self._possible(region, [*holes, *extra]) for region, holes in entering)

            if not escapes([]):
                segments = ", ".join(ladder.segments)
                self.report("CR806", f"stage '{stage.id}' of ladder '{ladder.id}' is never entered: no "
                                     f"account of its segments ({segments}) that is not cured meets its "
                                     "enter condition", stage.location,
                            "check the condition against the conditions of the ladder's segments")
            elif not escapes(later):
                named = list(zip((s.id for s in ladder.stages[index + 1:]), later, strict=True))
                alone = next((name for name, enter in named if not escapes([enter])), None)
                meeting = [name for name, enter in named
                           if any(not self.space.intersect(region, enter.under).empty
                                  for region, _ in entering)]
                which = f"the later stage '{alone}'" if alone else \
                    f"one of the later stages {_names(meeting, 'or')}"
                self.report("CR806", f"stage '{stage.id}' of ladder '{ladder.id}' is never entered: "
                                     f"whenever its condition holds, so does the condition of {which}, and "
                                     "the most severe stage that holds wins", stage.location,
                            "order stages from mildest to most severe, each entered by a stricter condition")
            elif self.explain_unknown and not any(
                    self._certain(self.space.intersect(base.under, mine.under), [*holes, *later]) is not None
                    for base, holes in reaching):
                involved = [mine, *later, *(base for base, _ in reaching),
                            *(hole for _, holes in reaching for hole in holes)]
                self.undecided(f"could not decide whether stage '{stage.id}' of ladder '{ladder.id}' is ever "
                               "entered", stage.location, _unknowns(involved))

    # ---- restrictions --------------------------------------------------------------------------------

    def _restrictions(self) -> None:
        actions = [a for ladder in self.policy.escalation.ladders for s in ladder.stages for a in s.actions]
        for restriction in self.policy.restrictions:
            if restriction.kind == "window" and restriction.schedule is not None \
                    and restriction.schedule.is_never_open:
                self.report("CR807", f"restriction '{restriction.id}' never allows contact: its allowed "
                                     "hours are closed on every day, so every action on its channels is "
                                     "always blocked",
                            restriction.location, "open at least one window, or use a hold to stop contact")
            if any(restriction.applies_to(a.channel, a.subject) for a in actions):
                continue
            if not actions:
                why = "no stage has any action"
            elif restriction.channels is not None \
                    and not any(a.channel in restriction.channels for a in actions):
                why = f"no action of any stage uses its channels ({', '.join(sorted(restriction.channels))})"
            elif restriction.subjects is not None \
                    and not any(a.subject in restriction.subjects for a in actions):
                subjects = ", ".join(sorted(restriction.subjects))
                why = f"no action of any stage is addressed to its subjects ({subjects})"
            else:
                why = "no action of any stage has both one of its channels and one of its subjects"
            self.report("CR807", f"restriction '{restriction.id}' never applies: {why}", restriction.location,
                        "remove it, or correct its channels and subjects")

    # ---- unused names --------------------------------------------------------------------------------

    def _template_names(self) -> set[str]:
        import jinja2
        from jinja2 import meta

        environment = jinja2.Environment(autoescape=False)
        names: set[str] = set()
        for template in self.policy.templates.values():
            for text in (template.body, template.subject):
                if not text:
                    continue
                try:
                    names |= meta.find_undeclared_variables(environment.parse(text))
                except jinja2.TemplateSyntaxError:
                    # the policy checker reports syntax errors; count every word so nothing is called unused
                    names |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
        return names

    def _unused(self) -> None:
        read: set[str] = set()
        for expression in self.policy.expressions:
            read |= {name.name for name in ast.referenced_names(expression.typed.expr)}
        read |= self._template_names()
        for name, spec in self.policy.fields.items():
            if name not in read and name not in _ENGINE_COLUMNS:
                self.report("CR808", f"field '{name}' is declared but nothing reads it: no condition, "
                                     "derived value, score or template uses it",
                            self._key_location(("fields", name), spec.location),
                            "remove it if the policy does not need it; while declared, every data row is "
                            "checked against it")
        for derived in self.policy.derive:
            if derived.name not in read:
                self.report("CR809", f"derived value '{derived.name}' is never used: no condition, other "
                                     "derived value, score or template reads it",
                            self._key_location(("derive", derived.name), derived.location),
                            "remove it, or use it where it was meant to be used")
