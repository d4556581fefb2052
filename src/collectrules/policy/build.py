"""Builds the policy model from a schema-valid document, checking everything the schema cannot.

Steps: imported packs (see :mod:`.packs`) → fields (the packs' and the policy's, merged) → derived names
(dependency order; cycles are errors) → scores → templates (the packs' and the policy's, compiled in the
Jinja2 sandbox; unknown names are errors) → channel delivery settings → segments → escalation →
restrictions (the packs', then the policy's, which may replace a pack restriction by its id; see
:mod:`.tighten`) → the packs' template checks → KPIs → experiments. Every expression is parsed and
type-checked against the fields, the derived names, the scores and the function registry. Problems are
collected, not raised one at a time, so a policy owner sees every mistake in one run.

Each file has its own builder, so that each problem is reported in the file where it stands: the policy's
builder drives the build, and every pack gets a :class:`_PackBuilder` over its document with the parameters
filled in. The builders share one :class:`_Shared` state: the expression scope, the findings and the list of
checked expressions.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import Diagnostic, Location
from ..lang import ast
from ..lang import types as T
from ..lang.checker import Scope, check
from ..lang.functions import CALENDAR
from ..lang.parser import ExprProblem, parse, parse_duration_text
from ..registry import Registry
from ..templates import TEMPLATE_STANDARD_NAMES, check_template_source, line_starts
from . import model as M
from .load import Path_, SourceDoc
from .packs import PackUnit, parameterised_view, resolve_imports, restriction_schema_problems
from .tighten import loosenings

#: words of the expression language that cannot name a field or a derived value
KEYWORDS = frozenset({"and", "or", "not", "in", "between", "is", "null", "true", "false", "if", "then", "else",
                      "score"})

KNOWN_OUTCOMES = frozenset({
    "busy", "not_in_service", "no_answer", "voicemail", "conversation", "right_party_contact", "wrong_party",
    "refused", "promise_to_pay", "delivered", "bounced", "opened", "failed", "sent", "dispute", "callback",
})
SUBJECTS = ("debtor", "co_obligor", "third_party")
_TARGET = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?[0-9]+(?:\.[0-9]+)?)(%?)\s*$")
#: ``<= 0.9 * previous(quarter)``, ``>= previous(month) + 1%``: a comparison with the previous period's value
_RELATIVE_TARGET = re.compile(r"^\s*(>=|<=|>|<|==)\s*(?:([0-9]+(?:\.[0-9]+)?)(%?)\s*\*\s*)?"
                              r"previous\(\s*(day|week|month|quarter|year)\s*\)"
                              r"(?:\s*([+-])\s*([0-9]+(?:\.[0-9]+)?)(%?))?\s*$")


def _target_number(number: str, percent: str | None) -> Decimal:
    return Decimal(number) / 100 if percent else Decimal(number)


def _suggest(word: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


@dataclass
class _Shared:
    """What the builders of one policy and its packs build together."""

    scope: Scope
    diagnostics: list[Diagnostic]
    expressions: list[M.Expression]


@dataclass
class _Entry:
    """A restriction of the merged set, with the pack whose rule it is (None: the policy's own)."""

    restriction: M.Restriction
    origin: PackUnit | None
    #: pack (as the pack wrote it) | tightened | overridden | own
    status: str


class _Builder:
    #: how findings name the document's owner ("the policy", "pack 'us-reg-f'")
    label = "the policy"

    def __init__(self, doc: SourceDoc, registry: Registry, shared: _Shared | None = None) -> None:
        self.doc = doc
        self.registry = registry
        self.data: dict[str, Any] = doc.data
        if shared is None:
            literal_checks = {"a channel name in quotes, such as \"phone\"": self._check_channel_literal,
                              CALENDAR.description: _check_calendar_literal}
            scope = Scope(names={}, functions=registry.functions, scores=frozenset(),
                          literal_checks=literal_checks)
            shared = _Shared(scope, [], [])
        self.shared = shared
        self.diagnostics = shared.diagnostics
        self.expressions = shared.expressions
        self.scope = shared.scope

    # ---- helpers -------------------------------------------------------------------------------------

    def error(self, code: str, message: str, path: Path_, *, key: bool = False, hint: str | None = None) -> None:
        self.diagnostics.append(self.doc.diagnostic(code, message, path, key=key, hint=hint))

    def warn(self, code: str, message: str, path: Path_, *, key: bool = False,
             hint: str | None = None) -> None:
        self.diagnostics.append(self.doc.diagnostic(code, message, path, key=key, hint=hint,
                                                    severity="warning"))

    def loc(self, path: Path_) -> Location:
        return self.doc.location(path)

    def _check_channel_literal(self, name: str) -> str | None:
        if name == "any" or name in self.registry.channels:
            return None
        suggestion = _suggest(name, self.registry.channels)
        return f"unknown channel {name!r}" + (f"; {suggestion}" if suggestion else "")

    def expr_problem(self, problem: ExprProblem, path: Path_) -> None:
        location = self.doc.scalar_offset_location(path, problem.start, max(1, problem.end - problem.start))
        self.diagnostics.append(Diagnostic(problem.code, problem.message, location, problem.hint,
                                           source_line=self.doc.line_text(location.line)))

    def parse_at(self, path: Path_) -> ast.Expr | None:
        text = self._get(path)
        try:
            return parse(str(text))
        except ExprProblem as problem:
            self.expr_problem(problem, path)
            return None

    def expression(self, path: Path_, *, expect: T.Type | None = T.BOOL, what: str = "condition",
                   tree: ast.Expr | None = None) -> M.Expression | None:
        text = str(self._get(path))
        if tree is None:
            tree = self.parse_at(path)
            if tree is None:
                return None
        try:
            typed = check(tree, self.scope, source=text, expect=expect, what=what)
        except ExprProblem as problem:
            self.expr_problem(problem, path)
            return None
        expression = M.Expression(text, typed, self.loc(path), tuple(path))
        self.expressions.append(expression)
        return expression

    def _get(self, path: Path_) -> Any:
        value: Any = self.data
        for part in path:
            value = value[part]
        return value

    def duplicate_ids(self, items: list[tuple[str, Path_]], what: str) -> None:
        seen: dict[str, Path_] = {}
        for ident, path in items:
            if ident in seen:
                first = self.loc(seen[ident])
                self.error("CR401", f"duplicate {what} id {ident!r} (first used on line {first.line})", path,
                           hint=f"{what} ids must be unique")
            else:
                seen[ident] = path

    def channel_ref(self, name: str, path: Path_) -> bool:
        if name in self.registry.channels:
            return True
        hint = _suggest(name, self.registry.channels) or f"known channels: {', '.join(sorted(self.registry.channels))}"
        self.error("CR402", f"unknown channel {name!r}", path, hint=hint)
        return False

    def duration(self, path: Path_) -> M.Window:
        text = str(self._get(path))
        value = parse_duration_text(text)
        if value.total_seconds() <= 0:
            self.error("CR405", f"duration {text!r} must be positive", path)
        if text[-1] in "dw":
            return M.Window(calendar_days=int(value.total_seconds() // 86400), text=text)
        return M.Window(sliding=value, text=text)

    # ---- sections ------------------------------------------------------------------------------------

    def fields(self) -> dict[str, M.FieldSpec]:
        result: dict[str, M.FieldSpec] = {}
        for name, spec in (self.data.get("fields") or {}).items():
            path = ("fields", name)
            if name in KEYWORDS:
                self.error("CR409", f"{name!r} is a word of the expression language and cannot name a field", path,
                           key=True, hint="rename the field (the data column name must match)")
                continue
            if isinstance(spec, str):
                spec = {"type": spec}
            field_type: T.Type | None
            if "enum" in spec:
                field_type = T.enum_of(tuple(str(v) for v in spec["enum"]))
            else:
                field_type = T.parse_type_name(spec["type"])
            if field_type is None:
                self.error("CR206", f"unknown type {spec.get('type')!r}", path)
                continue
            default = spec.get("default")
            if default is not None:
                default = self._field_default(field_type, default, (*path, "default"))
            result[name] = M.FieldSpec(name, field_type, bool(spec.get("optional", False)), default,
                                       spec.get("description"), self.loc(path))
        return result

    def _field_default(self, field_type: T.Type, value: Any, path: Path_) -> Any:
        from ..io.values import ValueKind, parse_value

        kind = ValueKind(field_type.kind)
        try:
            return parse_value(value, kind, enum_values=field_type.enum_values,
                               item_kind=ValueKind(field_type.item.kind) if field_type.item else None)
        except ValueError as exc:
            self.error("CR408", f"default does not fit the field's type {field_type}: {exc}", path)
            return None

    def derive(self, fields: dict[str, M.FieldSpec]) -> tuple[M.Derived, ...]:
        raw = self.data.get("derive") or {}
        trees: dict[str, ast.Expr] = {}
        paths: dict[str, Path_] = {}
        descriptions: dict[str, str | None] = {}
        for name, spec in raw.items():
            path: Path_ = ("derive", name) if isinstance(spec, str) else ("derive", name, "expr")
            descriptions[name] = None if isinstance(spec, str) else spec.get("description")
            if name in KEYWORDS:
                self.error("CR409", f"{name!r} is a word of the expression language and cannot be a name",
                           ("derive", name), key=True)
                continue
            if name in fields:
                self.error("CR401", f"{name!r} is both a field and a derived name", ("derive", name), key=True,
                           hint="rename one of them")
                continue
            tree = self.parse_at(path)
            if tree is not None:
                trees[name] = tree
                paths[name] = path
        order = self._derive_order(trees, paths)
        names: dict[str, T.Type] = {n: f.type for n, f in fields.items()}
        self.scope.names = names
        result = []
        for name in order:
            expression = self.expression(paths[name], expect=None, what="derived value", tree=trees[name])
            if expression is not None:
                names[name] = expression.typed.type
                result.append(M.Derived(name, expression, descriptions[name], self.loc(("derive", name))))
        # names whose expression failed still exist, so that later expressions do not report them as unknown
        for name in raw:
            names.setdefault(name, T.ANY)
        return tuple(result)

    def _derive_order(self, trees: dict[str, ast.Expr], paths: dict[str, Path_]) -> list[str]:
        deps = {name: [n for n in ast.referenced_names(tree) if n.name in trees] for name, tree in trees.items()}
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = visiting, 2 = done
        reported: set[str] = set()
        for root in trees:
            if state.get(root):
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            trail: list[str] = []
            state[root] = 1
            trail.append(root)
            while stack:
                name, index = stack.pop()
                if index < len(deps[name]):
                    stack.append((name, index + 1))
                    dep = deps[name][index]
                    if state.get(dep.name) == 1:
                        cycle = trail[trail.index(dep.name):] + [dep.name]
                        if not reported & set(cycle):
                            reported.update(cycle)
                            location_path = paths[name]
                            where = self.doc.scalar_offset_location(location_path, dep.span.start,
                                                                    dep.span.end - dep.span.start)
                            self.diagnostics.append(Diagnostic(
                                "CR403", "derived names depend on each other in a cycle: " + " → ".join(cycle),
                                where,
                                "a derived name cannot use itself, directly or through others",
                                source_line=self.doc.line_text(where.line)))
                    elif not state.get(dep.name):
                        state[dep.name] = 1
                        trail.append(dep.name)
                        stack.append((dep.name, 0))
                else:
                    state[name] = 2
                    trail.pop()
                    if name not in reported:
                        order.append(name)
        return order

    def scores(self) -> tuple[M.ScoreSpec, ...]:
        result = []
        for name, spec in (self.data.get("scores") or {}).items():
            path = ("scores", name)
            plugin = spec["plugin"]
            if plugin not in self.registry.scorers:
                hint = _suggest(plugin, self.registry.scorers) or \
                    f"available scorers: {', '.join(sorted(self.registry.scorers))}"
                self.error("CR402", f"unknown scorer {plugin!r}", (*path, "plugin"), hint=hint)
                continue
            result.append(M.ScoreSpec(name, plugin, spec.get("params") or {}, spec.get("description"),
                                      self.loc(path)))
        self.scope.scores = frozenset(s.name for s in result) | frozenset((self.data.get("scores") or {}))
        return tuple(result)

    def check_score_params(self, scores: tuple[M.ScoreSpec, ...]) -> None:
        """Validate each score's params against its scorer's schema fragment and compile its expressions."""
        import jsonschema

        from .schema import validate_part

        for spec in scores:
            scorer = self.registry.scorers[spec.plugin]
            base: Path_ = ("scores", spec.name, "params")
            validator = jsonschema.Draft202012Validator(scorer.params_schema)
            problems = validate_part(self.doc, validator, spec.params, base)
            self.diagnostics.extend(problems)
            if problems:
                continue

            def compile_param(text: str, rel: Path_, *, condition: bool = False, numeric: bool = False,
                              _base: Path_ = base) -> Any:
                expression = self.expression((*_base, *rel), expect=T.BOOL if condition else None)
                if expression is not None and numeric and not expression.typed.type.is_numeric:
                    self.error("CR352", f"a score term must be a number, but this is a {expression.typed.type}",
                               (*_base, *rel))
                return expression

            scorer.prepare(spec.params, compile_param)

    def templates(self) -> dict[str, M.Template]:
        """Templates, each compiled in the sandbox: syntax errors (CR420) and unknown names (CR421) are
        located at the line and column of the policy where they stand."""
        result = {}
        known = set(self.scope.names) | set(TEMPLATE_STANDARD_NAMES)
        for ident, spec in (self.data.get("templates") or {}).items():
            path = ("templates", ident)
            channel = spec.get("channel")
            if channel is not None:
                self.channel_ref(channel, (*path, "channel"))
            lines: dict[str, tuple[Location, ...]] = {}
            for part in ("subject", "body"):
                text = spec.get(part)
                if not isinstance(text, str):
                    continue
                part_path = (*path, part)
                for problem in check_template_source(text, known):
                    location = self.doc.scalar_offset_location(part_path, problem.offset, problem.length)
                    self.diagnostics.append(Diagnostic(
                        problem.code, f"template {ident!r} {part}: {problem.message}", location, problem.hint,
                        source_line=self.doc.line_text(location.line)))
                lines[part] = tuple(self.doc.scalar_offset_location(part_path, offset)
                                    for offset in line_starts(text))
            result[ident] = M.Template(ident, channel, spec.get("subject"), spec["body"], self.loc(path),
                                       (*path, "body"), lines.get("body", ()), lines.get("subject", ()))
        return result

    def channel_config(self) -> dict[str, M.ChannelConfig]:
        """``channels:``: each names a registered channel and a registered transport with valid params."""
        import jsonschema

        from .schema import validate_part

        result: dict[str, M.ChannelConfig] = {}
        for name, spec in (self.data.get("channels") or {}).items():
            path: Path_ = ("channels", name)
            known_channel = name in self.registry.channels
            if not known_channel:
                hint = _suggest(name, self.registry.channels) or \
                    f"known channels: {', '.join(sorted(self.registry.channels))}"
                self.error("CR402", f"unknown channel {name!r}", path, key=True, hint=hint)
            transport_name = spec["transport"]
            transport = self.registry.transports.get(transport_name)
            if transport is None:
                hint = _suggest(transport_name, self.registry.transports) or \
                    f"available transports: {', '.join(sorted(self.registry.transports)) or 'none'}"
                self.error("CR402", f"unknown transport {transport_name!r}", (*path, "transport"), hint=hint)
                continue
            params = spec.get("params") or {}
            validator = jsonschema.Draft202012Validator(transport.params_schema)
            problems = validate_part(self.doc, validator, params, (*path, "params"))
            self.diagnostics.extend(problems)
            if problems or not known_channel:
                continue
            result[name] = M.ChannelConfig(name, transport_name, params, spec.get("from"),
                                           spec.get("description"), self.loc(path))
        return result

    def segments(self) -> M.SegmentTable:
        spec = self.data["segments"]
        rules = []
        self.duplicate_ids([(r["id"], ("segments", "rules", i, "id")) for i, r in enumerate(spec["rules"])],
                           "segment rule")
        for index, rule in enumerate(spec["rules"]):
            path = ("segments", "rules", index)
            when = self.expression((*path, "when"))
            if when is not None:
                rules.append(M.SegmentRule(rule["id"], when, rule.get("description"), self.loc(path)))
        return M.SegmentTable(spec.get("hit_policy", "first"), tuple(rules), spec.get("default"),
                              self.loc(("segments",)))

    def escalation(self, segments: M.SegmentTable, templates: dict[str, M.Template]) -> M.Escalation:
        spec = self.data.get("escalation") or {}
        cure_when = self.expression(("escalation", "cure_when")) if "cure_when" in spec else None
        known_segments = set(r["id"] for r in self.data["segments"]["rules"])
        if segments.default:
            known_segments.add(segments.default)
        owner: dict[str, str] = {}
        ladders = []
        for ladder_id, ladder in (spec.get("ladders") or {}).items():
            path: Path_ = ("escalation", "ladders", ladder_id)
            for s_index, segment in enumerate(ladder["segments"]):
                seg_path = (*path, "segments", s_index)
                if segment not in known_segments:
                    hint = _suggest(segment, known_segments) or f"segments: {', '.join(sorted(known_segments))}"
                    self.error("CR402", f"ladder {ladder_id!r} names unknown segment {segment!r}", seg_path,
                               hint=hint)
                elif segment in owner:
                    self.error("CR407", f"segment {segment!r} is already on ladder {owner[segment]!r}", seg_path,
                               hint="each segment follows one ladder")
                else:
                    owner[segment] = ladder_id
            self.duplicate_ids([(s["id"], (*path, "stages", i, "id")) for i, s in enumerate(ladder["stages"])],
                               "stage")
            stages = []
            for index, stage in enumerate(ladder["stages"]):
                stage_path = (*path, "stages", index)
                enter = self.expression((*stage_path, "enter"))
                actions = tuple(self._action(a, (*stage_path, "actions", i), templates)
                                for i, a in enumerate(stage.get("actions") or []))
                if enter is not None:
                    stages.append(M.Stage(stage["id"], enter, int(stage.get("min_days_in_stage", 0)), actions,
                                          stage.get("description"), self.loc(stage_path)))
            self._check_threshold_order(stages, path)
            ladders.append(M.Ladder(ladder_id, tuple(ladder["segments"]), tuple(stages), ladder.get("description"),
                                    self.loc(path)))
        return M.Escalation(tuple(ladders), cure_when)

    def _check_threshold_order(self, stages: list[M.Stage], ladder_path: Path_) -> None:
        """Stages go from mild to severe: a later stage's lower bound on a field must not be lower."""
        last: dict[str, tuple[Decimal, str]] = {}
        for stage in stages:
            for name, bound in _lower_bounds(stage.enter.typed.expr).items():
                previous = last.get(name)
                if previous is not None and bound < previous[0]:
                    self.error("CR404", f"stage {stage.id!r} enters at {name} >= {bound}, below the earlier stage "
                                        f"{previous[1]!r} ({name} >= {previous[0]})", stage.enter.path,
                               hint="order stages from mildest to most severe")
                last[name] = (bound, stage.id)

    def _action(self, spec: dict[str, Any], path: Path_, templates: dict[str, M.Template]) -> M.Action:
        channel = spec["channel"]
        self.channel_ref(channel, (*path, "channel"))
        template = spec.get("template")
        if template is not None and ("templates" in self.data or templates) and template not in templates:
            hint = _suggest(template, templates) or "declare it under 'templates'"
            self.error("CR402", f"unknown template {template!r}", (*path, "template"), hint=hint)
        elif template is not None and template in templates:
            declared = templates[template].channel
            if declared is not None and declared != channel:
                self.error("CR402", f"template {template!r} is for channel {declared!r}, not {channel!r}",
                           (*path, "template"))
        if "every" in spec:
            cadence = M.Cadence("every", every=parse_duration_text(spec["every"]))
        elif "on_days" in spec:
            cadence = M.Cadence("on_days", days=tuple(sorted(int(d) for d in spec["on_days"])))
        else:
            cadence = M.Cadence("once")
        return M.Action(channel, template, int(spec.get("priority", 5)), spec.get("subject", "debtor"), cadence,
                        self.loc(path))

    def restrictions(self, templates: dict[str, M.Template]) -> list[tuple[M.Restriction, Path_]]:
        """The document's own restrictions, each with its path."""
        items = (self.data.get("contact") or {}).get("restrictions") or []
        self.duplicate_ids([(r["id"], ("contact", "restrictions", i, "id")) for i, r in enumerate(items)],
                           "restriction")
        result = []
        for index, spec in enumerate(items):
            path: Path_ = ("contact", "restrictions", index)
            built = self._restriction(spec, path, templates)
            if built is not None:
                result.append((built, path))
        return result

    def _channels(self, value: Any, path: Path_) -> frozenset[str] | None:
        if value is None:
            return None
        names = [value] if isinstance(value, str) else list(value)
        for index, name in enumerate(names):
            self.channel_ref(name, path if isinstance(value, str) else (*path, index))
        return frozenset(names)

    def _outcomes(self, value: Any, path: Path_) -> frozenset[str] | None:
        if value is None:
            return None
        names = [value] if isinstance(value, str) else list(value)
        for index, name in enumerate(names):
            if name not in KNOWN_OUTCOMES:
                self.warn("CR412", f"{name!r} is not a standard contact outcome", path if isinstance(value, str)
                          else (*path, index), hint=_suggest(name, KNOWN_OUTCOMES) or
                          "it only matches history rows with exactly this outcome")
        return frozenset(names)

    def _filter(self, spec: dict[str, Any] | None, path: Path_) -> M.EventFilter:
        spec = spec or {}
        return M.EventFilter(
            channels=self._channels(spec.get("channels"), (*path, "channels")),
            outcomes=self._outcomes(spec.get("outcomes"), (*path, "outcomes")),
            exclude_outcomes=self._outcomes(spec.get("exclude_outcomes"), (*path, "exclude_outcomes")) or frozenset(),
            direction=spec.get("direction", "outbound"),
            exclude_consented=bool(spec.get("exclude_consented", False)),
        )

    def _restriction(self, spec: dict[str, Any], path: Path_,
                     templates: dict[str, M.Template]) -> M.Restriction | None:
        from ..engine.timecalc import HolidayCalendar, WeeklySchedule

        subjects = spec.get("subjects")
        if isinstance(subjects, str):
            subjects = [subjects]
        common: dict[str, Any] = dict(
            id=spec["id"], channels=self._channels(spec.get("channels"), (*path, "channels")),
            subjects=None if subjects is None else frozenset(subjects),
            description=spec.get("description"), source=spec.get("source"), explain=spec.get("explain"),
            location=self.loc(path), override_reason=(spec.get("override") or {}).get("reason"),
        )
        calendar = spec.get("calendar")
        if calendar is not None:
            try:
                HolidayCalendar(calendar)
            except ValueError as exc:
                self.error("CR411", str(exc), (*path, "calendar"),
                           hint="use an ISO country code such as US, GB, CN, or DE-BY for a subdivision")
                return None
        if "allowed_hours" in spec:
            try:
                schedule = WeeklySchedule.parse(spec["allowed_hours"])
            except ValueError as exc:
                self.error("CR406", f"invalid allowed_hours: {exc}", (*path, "allowed_hours"))
                return None
            zone = spec.get("timezone", "debtor")
            if zone != "debtor":
                try:
                    zoneinfo.ZoneInfo(zone)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    self.error("CR410", f"unknown time zone {zone!r}", (*path, "timezone"),
                               hint=_suggest(zone, zoneinfo.available_timezones()) or
                               "use an IANA name such as America/New_York, or 'debtor'")
                    return None
            text = spec["allowed_hours"] if isinstance(spec["allowed_hours"], str) else "per weekday"
            return M.Restriction(kind="window", schedule=schedule, schedule_text=text, timezone=zone,
                                 calendar=calendar, **common)
        if "max_attempts" in spec:
            key = spec.get("key", "person")
            return M.Restriction(kind="cap", max_attempts=int(spec["max_attempts"]),
                                 per=self.duration((*path, "per")), key=key,
                                 count=self._filter(spec.get("count"), (*path, "count")), **common)
        if "block_for" in spec:
            return M.Restriction(kind="cooldown", block_for=self.duration((*path, "block_for")),
                                 after=self._filter({"direction": "any", **spec["after"]}, (*path, "after")),
                                 key=spec.get("key", "debt"), **common)
        if "min_gap" in spec:
            return M.Restriction(kind="gap", min_gap=parse_duration_text(spec["min_gap"]), **common)
        if "holds" in spec:
            exceptions = []
            for index, exc in enumerate(spec.get("except") or []):
                self.channel_ref(exc["channel"], (*path, "except", index, "channel"))
                template = exc.get("template")
                if template is not None and templates and template not in templates:
                    self.error("CR402", f"unknown template {template!r}", (*path, "except", index, "template"),
                               hint=_suggest(template, templates))
                exceptions.append(M.HoldException(exc["channel"], template))
            holds = spec["holds"]
            return M.Restriction(kind="hold", holds=frozenset([holds] if isinstance(holds, str) else holds),
                                 exceptions=tuple(exceptions), **common)
        if "block_when" in spec:
            expression = self.expression((*path, "block_when"))
            if expression is None:
                return None
            return M.Restriction(kind="expression", block_when=expression, **common)
        if calendar is not None:
            return M.Restriction(kind="calendar", calendar=calendar, **common)
        self.error("CR206", "a restriction needs one kind: allowed_hours, calendar, max_attempts, block_for, "
                            "min_gap, holds or block_when", path)
        return None

    def kpis(self) -> tuple[M.Kpi, ...]:
        """KPI targets. ``where`` may also use the outcome data's names (:func:`model.kpi_names`), a metric's
        ``params`` must fit the metric's schema, and a metric not measured per account limits ``where``."""
        items = self.data.get("kpis") or []
        self.duplicate_ids([(k["id"], ("kpis", i, "id")) for i, k in enumerate(items)], "KPI")
        segment_spec = self.data["segments"]
        segment_ids = [r["id"] for r in segment_spec["rules"]] + \
            ([segment_spec["default"]] if segment_spec.get("default") else [])
        policy_scope = self.scope
        self.scope = Scope(names={**M.kpi_names(segment_ids), **policy_scope.names},
                           functions=policy_scope.functions, scores=policy_scope.scores,
                           literal_checks=policy_scope.literal_checks)
        try:
            result = [kpi for index, spec in enumerate(items) if (kpi := self._kpi(spec, ("kpis", index)))]
        finally:
            self.scope = policy_scope
        return tuple(result)

    def _kpi(self, spec: dict[str, Any], path: Path_) -> M.Kpi | None:
        import jsonschema

        from .schema import validate_part

        metric_name = spec["metric"]
        metric = self.registry.metrics.get(metric_name)
        if metric is None:
            hint = _suggest(metric_name, self.registry.metrics) or \
                f"known metrics: {', '.join(sorted(self.registry.metrics))}"
            self.error("CR402", f"unknown metric {metric_name!r}", (*path, "metric"), hint=hint)
        where = self.expression((*path, "where")) if "where" in spec else None
        params = spec.get("params") or {}
        if metric is not None and metric.params_schema is not None:
            validator = jsonschema.Draft202012Validator(metric.params_schema)
            self.diagnostics.extend(validate_part(self.doc, validator, params, (*path, "params")))
        if metric is not None and where is not None and metric.filter_names is not None:
            self._kpi_filter_names(metric_name, metric.filter_names, where, (*path, "where"))
        relative = _RELATIVE_TARGET.match(spec["target"])
        match = _TARGET.match(spec["target"])
        if match is None and relative is None:
            self.error("CR409", f"invalid target {spec['target']!r}", (*path, "target"),
                       hint="write a comparison and a number, such as '>= 90%' or '< 45', or a comparison "
                            "with the previous period, such as '<= 0.9 * previous(quarter)'")
            return None
        common = dict(id=spec["id"], metric=metric_name, where=where, target_text=spec["target"],
                      period=spec["period"], params=params, description=spec.get("description"),
                      location=self.loc(path))
        if match is not None:
            op, number, percent = match.groups()
            return M.Kpi(op=op, threshold=_target_number(number, percent), **common)
        assert relative is not None
        op, factor, factor_percent, kind, sign, offset, offset_percent = relative.groups()
        return M.Kpi(op=op, threshold=None, relative_to=kind,
                     factor=_target_number(factor, factor_percent) if factor else Decimal(1),
                     offset=(-1 if sign == "-" else 1) * _target_number(offset, offset_percent) if offset
                     else Decimal(0), **common)

    def _kpi_filter_names(self, metric: str, allowed: frozenset[str], where: M.Expression,
                          path: Path_) -> None:
        """A metric measured on book totals (credit sales, costs) can only be filtered by the names it knows."""
        if not allowed:
            self.error("CR402", f"metric {metric!r} is measured on book totals, not per account, so it "
                                "cannot have a where filter", path, hint="remove 'where'")
            return
        for node in ast.walk(where.typed.expr):
            name = node.name if isinstance(node, ast.Name) else \
                f"{node.namespace}.{node.member}" if isinstance(node, ast.Member) else None
            if name is None or name in allowed:
                continue
            location = self.doc.scalar_offset_location(path, node.span.start, node.span.end - node.span.start)
            self.diagnostics.append(Diagnostic(
                "CR402",
                f"metric {metric!r} can only be filtered by {', '.join(sorted(allowed))}, not by {name}",
                location, "its data are not per account", source_line=self.doc.line_text(location.line)))

    def experiments(self, segments: M.SegmentTable, escalation: M.Escalation) -> tuple[M.Experiment, ...]:
        """Champion/challenger experiments: arm shares add up to 100, overrides name known segments and
        ladders, no segment is overridden by two experiments, and ``compare`` names known KPIs."""
        items = self.data.get("experiments") or []
        self.duplicate_ids([(e["id"], ("experiments", i, "id")) for i, e in enumerate(items)], "experiment")
        known_segments = segments.segment_ids()
        ladder_ids = [ladder.id for ladder in escalation.ladders]
        kpi_ids = [k["id"] for k in self.data.get("kpis") or []]
        overridden: dict[str, str] = {}
        result = []
        for index, spec in enumerate(items):
            path: Path_ = ("experiments", index)
            self.duplicate_ids([(a["id"], (*path, "arms", i, "id")) for i, a in enumerate(spec["arms"])],
                               "arm")
            arms = []
            low = 0
            total = Decimal(0)
            for a_index, arm in enumerate(spec["arms"]):
                arm_path: Path_ = (*path, "arms", a_index)
                share = Decimal(str(arm["share"]))
                if share * 100 != int(share * 100):
                    self.error("CR207", f"share {arm['share']} of arm {arm['id']!r} is finer than 0.01 "
                                        "percent", (*arm_path, "share"),
                               hint="accounts are split into 10,000 hash buckets")
                total += share
                high = low + int(share * 100)
                ladders = dict((arm.get("overrides") or {}).get("ladders") or {})
                for segment, ladder_id in ladders.items():
                    override_path: Path_ = (*arm_path, "overrides", "ladders", segment)
                    if segment not in known_segments:
                        self.error("CR402", f"arm {arm['id']!r} overrides the ladder of unknown segment "
                                            f"{segment!r}", override_path, key=True,
                                   hint=_suggest(segment, known_segments) or
                                   f"segments: {', '.join(known_segments)}")
                    elif overridden.get(segment, spec["id"]) != spec["id"]:
                        self.error("CR407", f"segment {segment!r} is already overridden by experiment "
                                            f"{overridden[segment]!r}", override_path, key=True,
                                   hint="an account can follow one experiment's ladder only")
                    else:
                        overridden[segment] = spec["id"]
                    if ladder_id not in ladder_ids:
                        self.error("CR402", f"unknown ladder {ladder_id!r}", override_path,
                                   hint=_suggest(ladder_id, ladder_ids) or
                                   "declare it under escalation.ladders (with 'segments: []' when only "
                                   "experiments use it)")
                arms.append(M.ExperimentArm(arm["id"], share, low, high, ladders, arm.get("description"),
                                            self.loc(arm_path)))
                low = high
            if total != 100:
                self.error("CR207", f"the shares of experiment {spec['id']!r} add up to {total}, not 100",
                           (*path, "arms"), hint="give every account an arm: shares are percentages")
            compare = tuple(spec.get("compare") or ())
            for c_index, kpi_id in enumerate(compare):
                if kpi_id not in kpi_ids:
                    self.error("CR402", f"experiment {spec['id']!r} compares unknown KPI {kpi_id!r}",
                               (*path, "compare", c_index),
                               hint=_suggest(kpi_id, kpi_ids) or "name a KPI id from the kpis section")
            result.append(M.Experiment(spec["id"], tuple(arms), compare, spec.get("description"),
                                       self.loc(path)))
        return tuple(result)

    def build(self) -> M.Policy:
        meta = self.data["metadata"]
        graph = resolve_imports(self.doc)
        self.diagnostics.extend(graph.diagnostics)
        packs = {unit.key: _PackBuilder(unit, self.registry, self.shared) for unit in graph.ordered}
        fields = self.merged_fields([*packs.values(), self])
        derive = self.derive(fields)
        scores = self.scores()
        self.check_score_params(scores)
        templates, template_owners = self.merged_templates([*packs.values(), self])
        channel_config = self.channel_config()
        segments = self.segments()
        if segments.default is not None and segments.default in [r.id for r in segments.rules] \
                and segments.hit_policy != "collect":
            self.warn("CR413", f"the default segment {segments.default!r} is also a rule id",
                      ("segments", "default"))
        escalation = self.escalation(segments, templates)
        memo: dict[Path, list[_Entry]] = {}
        entries = self.merged_restrictions(self, graph.direct, packs, templates, memo)
        restrictions = tuple(entry.restriction for entry in entries)
        imports = tuple(_pack_import(unit, entries) for unit in graph.ordered if unit.key in memo)
        for pack in packs.values():
            pack.check_templates(templates, template_owners, escalation)
        kpis = self.kpis()
        experiments = self.experiments(segments, escalation)
        return M.Policy(
            file=self.doc.file,
            metadata=M.Metadata(meta["name"], str(meta["version"]), meta.get("owner"), meta.get("description"),
                                meta.get("market")),
            fields=fields, derive=derive, scores=scores, templates=templates, segments=segments,
            escalation=escalation, restrictions=restrictions, kpis=kpis,
            warnings=tuple(d for d in self.diagnostics if d.severity != "error"),
            channel_config=channel_config, expressions=tuple(self.expressions), experiments=experiments,
            imports=imports,
        )

    # ---- merging the packs' contributions -------------------------------------------------------------

    def merged_fields(self, builders: list[_Builder]) -> dict[str, M.FieldSpec]:
        """Fields of the packs (in merge order) and of the policy. A name declared twice must keep its type;
        the policy's declaration of a pack field stands (it may add a default or a description)."""
        merged: dict[str, tuple[M.FieldSpec, _Builder]] = {}
        for builder in builders:
            for name, spec in builder.fields().items():
                first = merged.get(name)
                if first is not None and first[0].type != spec.type:
                    where = first[0].location
                    builder.error("CR432", f"field {name!r} is {spec.type} here but {first[0].type} in "
                                           f"{first[1].label} ({where.file}:{where.line})", ("fields", name),
                                  key=True, hint="a field shared with a pack keeps the pack's type; rename "
                                                 "one of them or declare the same type")
                    continue
                if first is None or builder is self:
                    merged[name] = (spec, builder)
        return {name: spec for name, (spec, _) in merged.items()}

    def merged_templates(self, builders: list[_Builder]) -> tuple[dict[str, M.Template], dict[str, _Builder]]:
        """Templates of the packs and of the policy, with the builder of the document that declares each.

        Two packs must agree on a template they both declare; the policy may replace a pack template's
        wording with a template of the same id for the same channel.
        """
        merged: dict[str, M.Template] = {}
        owners: dict[str, _Builder] = {}
        for builder in builders:
            for ident, template in builder.templates().items():
                first = merged.get(ident)
                if first is not None:
                    where = f"{owners[ident].label} ({first.location.file}:{first.location.line})"
                    if first.channel != template.channel:
                        builder.error("CR432", f"template {ident!r} is for channel "
                                               f"{template.channel or 'any'} here but for "
                                               f"{first.channel or 'any'} in {where}",
                                      ("templates", ident), key=True,
                                      hint="a template replacing a pack's must be for the same channel")
                        continue
                    same_text = (first.subject, first.body) == (template.subject, template.body)
                    if builder is not self and not same_text:
                        builder.error("CR432", f"template {ident!r} differs from the one in {where}",
                                      ("templates", ident), key=True,
                                      hint="two packs cannot declare one template id with different texts")
                        continue
                    if builder is not self:
                        continue
                merged[ident] = template
                owners[ident] = builder
        return merged, owners

    def merged_restrictions(self, owner: _Builder, children: list[PackUnit], packs: dict[Path, _PackBuilder],
                            templates: dict[str, M.Template], memo: dict[Path, list[_Entry]]) -> list[_Entry]:
        """The restrictions of ``owner``'s imports, in order, then ``owner``'s own.

        An own restriction with the id of an imported one replaces it where the imported one stood; it must
        only tighten it (:func:`~.tighten.loosenings`) unless it says ``override``, which is reported.
        """
        entries: dict[str, _Entry] = {}
        for child in children:
            if child.key not in memo:
                memo[child.key] = self.merged_restrictions(packs[child.key], child.children, packs, templates,
                                                           memo)
            for entry in memo[child.key]:
                ident = entry.restriction.id
                existing = entries.get(ident)
                if existing is None or existing is entry:
                    entries[ident] = entry
                elif existing.origin is entry.origin and entry.status == "pack":
                    continue  # the same pack rule reached twice, once as written and maybe once changed
                elif existing.origin is entry.origin and existing.status == "pack":
                    entries[ident] = entry
                else:
                    first, second = existing.restriction.location, entry.restriction.location
                    owner.error("CR432", f"restriction {ident!r} comes both from {first.file}:{first.line} "
                                         f"and from {second.file}:{second.line}", ("imports",),
                                hint="imported packs must not define the same restriction id differently")
        for restriction, path in owner.own_restrictions(templates):
            ident = restriction.id
            existing = entries.get(ident)
            origin = owner.unit if isinstance(owner, _PackBuilder) else None
            if existing is None or existing.origin is None:
                if restriction.override_reason is not None:
                    owner.error("CR402", f"restriction {ident!r} has an override, but no imported pack has a "
                                         f"restriction {ident!r}", (*path, "override"), key=True,
                                hint="override replaces the pack restriction with the same id; remove it "
                                     "here")
                entries[ident] = _Entry(restriction, origin, "pack" if origin is not None else "own")
                continue
            replaced = owner.replace(existing, restriction, path)
            if replaced is not None:
                entries[ident] = replaced
        return list(entries.values())

    def own_restrictions(self, templates: dict[str, M.Template]) -> list[tuple[M.Restriction, Path_]]:
        return self.restrictions(templates)

    def replace(self, existing: _Entry, restriction: M.Restriction, path: Path_) -> _Entry | None:
        """``restriction`` of this document in place of the imported ``existing`` one, or None (an error)."""
        original = existing.restriction
        assert existing.origin is not None
        pack = existing.origin.name
        cite = f" ({original.source})" if original.source else ""
        looser = loosenings(original, restriction)
        if looser and restriction.override_reason is None:
            where = f"{original.location.file}:{original.location.line}"
            self.error("CR433", f"restriction {restriction.id!r} would loosen the rule of pack {pack!r}"
                                f"{cite} it replaces: {'; '.join(looser)}", (*path, "id"),
                       hint=f"the pack's rule is at {where}; with a pack rule's id a restriction may only "
                            "tighten it. Give a new rule its own id, or add override: {reason: ...} to "
                            "loosen this one deliberately")
            return None
        if restriction.override_reason is not None:
            effect = f": {'; '.join(looser)}" if looser \
                else " (it only tightens the rule; no override is needed)"
            self.warn("CR434", f"restriction {restriction.id!r} overrides the rule of pack {pack!r}{cite}"
                               f"{effect}; reason given: {restriction.override_reason}", (*path, "override"),
                      key=True)
        # the replacement implements the pack's rule: it keeps its citation and explanation unless it has
        # its own
        merged = dataclasses.replace(restriction, pack=pack, source=restriction.source or original.source,
                                     explain=restriction.explain or original.explain)
        return _Entry(merged, existing.origin, "overridden" if restriction.override_reason else "tightened")


class _PackBuilder(_Builder):
    """Builds what one imported pack contributes, over its document with the parameters filled in."""

    def __init__(self, unit: PackUnit, registry: Registry, shared: _Shared) -> None:
        super().__init__(parameterised_view(unit, diagnostics=shared.diagnostics), registry, shared)
        self.unit = unit
        self.label = f"pack {unit.name!r}"

    def own_restrictions(self, templates: dict[str, M.Template]) -> list[tuple[M.Restriction, Path_]]:
        """The pack's restrictions; each is checked against the policy format once its parameters are in."""
        items = (self.data.get("contact") or {}).get("restrictions") or []
        self.duplicate_ids([(r["id"], ("contact", "restrictions", i, "id")) for i, r in enumerate(items)],
                           "restriction")
        built: list[tuple[M.Restriction, Path_]] = []
        for index, spec in enumerate(items):
            path: Path_ = ("contact", "restrictions", index)
            problems = restriction_schema_problems(self.doc, index)
            if problems:
                self.diagnostics.extend(problems)
                continue
            restriction = self._restriction(spec, path, templates)
            if restriction is not None:
                built.append((dataclasses.replace(restriction, pack=self.unit.name), path))
        self._check_parameter_values(built, templates)
        return built

    def _check_parameter_values(self, built: list[tuple[M.Restriction, Path_]],
                                templates: dict[str, M.Template]) -> None:
        """Parameters set by an importer may only tighten: compare each rule with the one of the defaults."""
        unit = self.unit
        for name in sorted(unit.set_at):
            parameter = unit.parameters[name]
            if parameter.loosens(unit.values[name]):
                doc, at = unit.set_at[name]
                stricter = "larger" if parameter.tightens == "up" else "smaller"
                self.diagnostics.append(doc.diagnostic(
                    "CR433", f"parameter {name!r} = {unit.values[name]!r} would loosen the rules of pack "
                             f"{unit.name!r}: only a value {stricter} than its {parameter.default!r} "
                             "tightens them", at,
                    hint="to loosen a rule deliberately, restate it in the policy with "
                         "override: {reason: ...}"))
        # parameters with a declared direction were checked above; the others by comparing whole rules
        undirected = {name for name in unit.set_at if unit.parameters[name].tightens is None}
        if not undirected:
            return
        baseline = {name: unit.parameters[name].default if name in undirected else value
                    for name, value in unit.values.items()}
        view = parameterised_view(unit, baseline)
        # a scratch builder: whatever it finds was already reported for the pack itself
        scratch = _Builder(view, self.registry, _Shared(self.scope, [], []))
        for restriction, path in built:
            changed = sorted(name for name in unit.uses.get(int(path[2]), ()) if name in undirected)
            if not changed:
                continue
            original = scratch._restriction(view.data["contact"]["restrictions"][path[2]], path, templates)
            looser = loosenings(original, restriction) if original is not None else []
            if not looser:
                continue
            cite = f" ({restriction.source})" if restriction.source else ""
            for name in changed:
                doc, at = unit.set_at[name]
                self.diagnostics.append(doc.diagnostic(
                    "CR433", f"parameter {name!r} = {unit.values[name]!r} would loosen rule "
                             f"{restriction.id!r} of pack {unit.name!r}{cite}: {'; '.join(looser)}", at,
                    hint=f"parameters may only tighten a pack's rules (the pack's value is "
                         f"{unit.parameters[name].default!r}); to loosen the rule deliberately, restate it "
                         "in the policy with override: {reason: ...}"))

    def check_templates(self, templates: dict[str, M.Template], owners: dict[str, _Builder],
                        escalation: M.Escalation) -> None:
        """The pack's template checks, over every template of the policy on the channels they name."""
        checks = self.data.get("template_checks") or []
        if not checks:
            return
        sent_on: dict[str, set[str]] = {}
        for ladder in escalation.ladders:
            for stage in ladder.stages:
                for action in stage.actions:
                    if action.template is not None:
                        sent_on.setdefault(action.template, set()).add(action.channel)
        for index, rule in enumerate(checks):
            channels = self._channels(rule["channels"], ("template_checks", index, "channels")) or frozenset()
            phrases = [phrase.casefold() for phrase in rule["contains_any"]]
            for ident, template in templates.items():
                used = {template.channel} if template.channel else sent_on.get(ident, set())
                hit = used & channels
                text = f"{template.subject or ''}\n{template.body}".casefold()
                if not hit or any(phrase in text for phrase in phrases):
                    continue
                owners[ident].warn(
                    "CR436", f"template {ident!r} ({', '.join(sorted(hit))}) does not meet rule "
                             f"{rule['id']!r} of pack {self.unit.name!r} ({rule['source']}): "
                             f"{rule['explain']}",
                    ("templates", ident, "body"),
                    hint="include one of: " + ", ".join(repr(p) for p in rule["contains_any"]))


def _pack_import(unit: PackUnit, entries: list[_Entry]) -> M.PackImport:
    """What the policy made of one pack's rules."""
    mine = [entry for entry in entries if entry.origin is unit]

    def ids(status: str) -> tuple[str, ...]:
        return tuple(entry.restriction.id for entry in mine if entry.status == status)

    meta = unit.meta
    return M.PackImport(unit.name, str(meta["version"]), str(meta["jurisdiction"]), meta.get("description"),
                        unit.doc.file, unit.import_location, dict(unit.values), ids("pack"), ids("tightened"),
                        ids("overridden"))


def _check_calendar_literal(code: str) -> str | None:
    from ..engine.timecalc import HolidayCalendar

    try:
        HolidayCalendar(code)
    except ValueError as exc:
        return str(exc)
    return None


def _lower_bounds(expr: ast.Expr) -> dict[str, Decimal]:
    """``dpd >= 31 and …`` → {"dpd": 31}; only top-level conjunctions of ``name >= / > number``."""
    bounds: dict[str, Decimal] = {}
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp) and node.op == "and":
            stack.extend((node.left, node.right))
        elif isinstance(node, ast.BinOp) and node.op in (">=", ">") and isinstance(node.left, ast.Name) \
                and isinstance(node.right, ast.Literal) and node.right.kind in ("int", "decimal"):
            bounds[node.left.name] = Decimal(node.right.value)  # type: ignore[arg-type]
        elif isinstance(node, ast.Between) and isinstance(node.value, ast.Name) \
                and isinstance(node.low, ast.Literal) and node.low.kind in ("int", "decimal"):
            bounds[node.value.name] = Decimal(node.low.value)  # type: ignore[arg-type]
    return bounds


def build_policy(doc: SourceDoc, registry: Registry) -> tuple[M.Policy | None, list[Diagnostic]]:
    """Build the model from a schema-valid document; returns the policy (None on errors) and all findings."""
    builder = _Builder(doc, registry)
    policy = builder.build()
    errors = [d for d in builder.diagnostics if d.severity == "error"]

    def position(d: Diagnostic) -> tuple[bool, str, int, int]:
        # the policy's own findings first, then each pack's, each file in line order
        if d.location is None:
            return (False, "", 0, 0)
        return (d.location.file != doc.file, d.location.file, d.location.line, d.location.column)

    builder.diagnostics.sort(key=position)
    return (None if errors else policy), builder.diagnostics

